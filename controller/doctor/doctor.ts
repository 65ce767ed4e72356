// `knockgate doctor`: check this node (or standalone host) and explain, one line per check
// (report.ts). The checks, in order: netfilter mode, eBPF dataplane, kube-proxy mode, the config's
// protected ports and alwaysAllow, the firewall rules in force against them, what the capture sees
// on the knock/SPA ports, and with AWS access the node's security groups.

import { loadConfig } from '../../api/config/load.js';
import { formatPort, parsePort, type PortRef } from '../../api/ports.js';
import { loadAgentConfig } from '../agent/config.js';
import { defaultRouteInterfaces } from '../../sniffer/capture/routes.js';
import type { Ec2Clients } from '../aws/client.js';
import { awsChecks } from './aws.js';
import { captureCheck, watchCapture } from './capture.js';
import { ebpfCheck, ebpfFacts } from './ebpf.js';
import { firewallCheck, rulesInForce, type Expected } from './firewall.js';
import { kubeProxyCheck, kubeProxyFacts } from './kube-proxy.js';
import { netfilterCheck, netfilterFacts } from './netfilter.js';
import { fail, ok, warn, type CheckResult } from './report.js';
import { doctorCommands } from './run.js';

export const DOCTOR_CHECKS = [
  'netfilter',
  'ebpf',
  'kube-proxy',
  'config',
  'firewall',
  'capture',
  'aws',
] as const;
export type DoctorCheck = (typeof DOCTOR_CHECKS)[number];

export interface DoctorOptions {
  /** A standalone config (knockd.conf, access.conf, knockgate YAML). */
  config?: string;
  fwknopdConf?: string;
  /** An AgentConfig (the agent DaemonSet's). */
  agentConfig?: string;
  interfaces?: string[];
  /** Knock/SPA ports to watch beside the config's, "62201/udp". */
  ports?: string[];
  captureSeconds: number;
  kubeProxyUrl?: string;
  aws?: { clients: Ec2Clients; region: string; securityGroups: string[]; clusterId?: string };
  only?: DoctorCheck[];
}

interface ConfigView {
  expected?: Expected;
  /** Knock and SPA ports (what the capture listens for). */
  listenPorts: PortRef[];
  spaPorts: PortRef[];
  interfaces: string[];
  result?: CheckResult;
}

function readConfig(o: DoctorOptions): ConfigView {
  const extra = (o.ports ?? []).map((p) => parsePort(p, 'udp'));
  const view: ConfigView = {
    listenPorts: extra,
    spaPorts: extra.filter((p) => p.proto === 'udp'),
    interfaces: [],
  };
  try {
    if (o.config !== undefined) {
      const c = loadConfig(o.config, o.fwknopdConf !== undefined ? { fwknopdConf: o.fwknopdConf } : {});
      const spa = c.policies.flatMap((p) => (p.spec.spa ? [parsePort(p.spec.spa.port, 'udp')] : []));
      const knock = c.policies.flatMap((p) => (p.spec.knock?.sequence ?? []).map((s) => parsePort(s)));
      view.spaPorts.push(...spa);
      view.listenPorts.push(...spa, ...knock);
      view.interfaces = c.settings.interfaces;
      view.expected = {
        file: o.config,
        protectedPorts: c.settings.protectedPorts.map((p) => formatPort(parsePort(p))).sort(),
        alwaysAllow: c.settings.alwaysAllow,
        mode: c.settings.mode,
        backend: c.settings.backend,
      };
    } else if (o.agentConfig !== undefined) {
      const a = loadAgentConfig(o.agentConfig, { NODE_NAME: 'doctor', ...process.env });
      view.listenPorts.push(...a.knockPorts);
      view.spaPorts.push(...a.knockPorts.filter((p) => p.proto === 'udp'));
      view.expected = {
        file: o.agentConfig,
        protectedPorts: a.protectedPorts.map(formatPort).sort(),
        alwaysAllow: a.alwaysAllow,
        mode: a.mode,
        backend: a.backend,
      };
    }
  } catch (err) {
    view.result = fail('config', (err as Error).message);
    return view;
  }
  const dedupe = (ps: PortRef[]) => [...new Map(ps.map((p) => [formatPort(p), p])).values()];
  view.listenPorts = dedupe(view.listenPorts);
  view.spaPorts = dedupe(view.spaPorts);
  const e = view.expected;
  view.result = e
    ? ok(
        'config',
        `${e.file}: protects ${e.protectedPorts.join(', ') || 'nothing'}, alwaysAllow ${e.alwaysAllow.join(', ') || 'none'}, ` +
          `mode ${e.mode}, backend ${e.backend}, knock/SPA ports ${view.listenPorts.map(formatPort).join(', ') || 'none'}`,
      )
    : warn('config', 'no --config or --agent-config: the rules in force are compared with nothing');
  if (e && e.mode === 'Audit' && view.result.verdict === 'OK')
    view.result = warn('config', `${view.result.detail}: Audit mode drops nothing`);
  return view;
}

export async function runDoctor(o: DoctorOptions): Promise<CheckResult[]> {
  const want = (c: DoctorCheck) => !o.only || o.only.includes(c);
  const commands = doctorCommands();
  const out: CheckResult[] = [];
  const cfg = readConfig(o);
  const interfaces = o.interfaces?.length
    ? o.interfaces
    : cfg.interfaces.length
      ? cfg.interfaces
      : defaultRouteInterfaces();
  if (want('netfilter')) out.push(netfilterCheck(await netfilterFacts(commands), cfg.expected?.backend));
  const kubeProxy = want('kube-proxy') || want('ebpf') ? await kubeProxyFacts(commands, o.kubeProxyUrl) : {};
  if (want('ebpf')) out.push(ebpfCheck(await ebpfFacts(commands, interfaces), kubeProxy.mode !== undefined));
  if (want('kube-proxy')) out.push(kubeProxyCheck(kubeProxy, o.agentConfig !== undefined));
  if (want('config') && cfg.result) out.push(cfg.result);
  if (want('firewall')) out.push(firewallCheck(await rulesInForce(commands), cfg.expected));
  if (want('capture')) {
    if (interfaces.length === 0)
      out.push(fail('capture', 'no default-route interface: name one with --interface'));
    else if (cfg.listenPorts.length === 0)
      out.push(
        warn('capture', 'no knock or SPA port (give --config, --agent-config or --port): nothing to watch'),
      );
    else if (o.captureSeconds <= 0) out.push(warn('capture', 'skipped (--capture-seconds 0)'));
    else {
      const seen = await watchCapture(interfaces, cfg.listenPorts, o.captureSeconds);
      out.push('verdict' in seen ? seen : captureCheck(seen));
    }
  }
  if (want('aws') && o.aws) out.push(...(await awsChecks({ ...o.aws, spaPorts: cfg.spaPorts })));
  return out;
}
