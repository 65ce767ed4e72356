// Kubernetes open latency: last knock / SPA packet sent → first successful TCP connect, through the
// cluster path — `knockgate sniffer` captures and writes an AccessGrant to the API emulator, the
// `knockgate agent` of the same node sees it on its watch and opens the firewall (no controller: the
// agent opens without it). Beside it, in the same run and topology: knockgate standalone with the
// same backend and knockd, as ratios. Each trial from its own source (bench/probe.ts), so every
// trial starts closed.
//
// Where the time goes: the sniffer's and the agent's audit lines ("open", with pino's ms `time`)
// give, per grant, sniffer wrote the grant → agent opened it (watch event, reconcile, firewall);
// the rest of the trial is capture + decision + the create request, and the probe's 1 ms.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FirewallBackend } from '../../api/standalone.js';
import type { Host, Topology } from '../../test/helpers/netns.js';
import type { ProbeArgs } from '../probe.js';
import { startKnockgate, stopKnockgate } from '../lib/knockgate.js';
import {
  auditTimes,
  cleanupFirewall,
  problemLines,
  startCluster,
  startKubeAgent,
  startKubeSniffer,
  type KubeProcess,
} from '../lib/kube.js';
import { dropProtectedPort, flushIptables, startKnockd, stopPeer } from '../lib/peers.js';
import {
  KNOCK_PORTS,
  PROTECTED_PORT,
  SPA_PORT,
  newKeys,
  type Figure,
  type RunOptions,
  type Scenario,
  type ScenarioResult,
} from '../lib/setup.js';
import { fmt, markdownTable, summarize, type Summary } from '../lib/stats.js';
import { withTopology } from '../lib/topology.js';
import { loadNow } from '../lib/kube.js';
import { probe } from './open-latency.js';

const BACKENDS: FirewallBackend[] = ['nftables', 'ipset'];
/** --quick: the default backend only (the whole --quick run stays within minutes). */
const backendsFor = (opts: RunOptions): FirewallBackend[] => (opts.quick ? ['nftables'] : BACKENDS);
const NAME = 'kube-latency';
const KUBE_TARGET = 'p99 < 50 ms';

type Setup = 'kubernetes' | 'standalone' | 'knockd';
type Trigger = 'knock' | 'spa';

interface Row {
  setup: Setup;
  backend?: FirewallBackend;
  daemon: string;
  trigger: Trigger;
  latenciesMs: number[];
  summary: Summary;
  /** Kubernetes rows: per grant, the sniffer's "open" line → the agent's "open" line (ms). */
  snifferToAgentMs?: number[];
}

const LABEL: Record<Setup, (backend?: FirewallBackend) => string> = {
  kubernetes: (b) => `knockgate on Kubernetes (${b}; sniffer → emulator → agent)`,
  standalone: (b) => `knockgate standalone (${b})`,
  knockd: () => 'knockd 0.8',
};

/**
 * Per trial group, its own /24 of client sources on the veth (10.T.N.x, N from 10). The server routes
 * each /24 via the client's own address rather than holding it on-link: with ~1,800 on-link sources
 * its replies needed one neighbour entry each, past the kernel's ARP table limit (gc_thresh3, 1,024,
 * shared by every namespace), and the overflow dropped SYN-ACKs: trials that "failed" to open or took
 * a retransmit's second (dmesg: "neighbor table overflow").
 */
async function addSourceGroups(srv: Host, cli: Host, dir: string, groups: number, trials: number) {
  const target = srv.addr4['cli']!;
  const tag = target.split('.').slice(0, 2).join('.');
  const sources = Array.from({ length: groups }, (_, g) =>
    Array.from({ length: trials }, (_, i) => `${tag}.${10 + g}.${10 + i}`),
  );
  const batch = join(dir, 'kube-addresses.batch');
  writeFileSync(
    batch,
    sources
      .flat()
      .map((s) => `addr add ${s}/24 dev ${cli.ifname['srv']}\n`)
      .join(''),
  );
  await cli.run('ip', ['-batch', batch]);
  for (let g = 0; g < groups; g++)
    await srv.run('ip', ['route', 'add', `${tag}.${10 + g}.0/24`, 'via', cli.addr4['srv']!]);
  return sources;
}

async function measure(net: Topology, opts: RunOptions): Promise<Row[]> {
  const { dir } = opts;
  const srv = net.ns('srv');
  const cli = net.ns('cli');
  const iface = srv.ifname['cli']!;
  const target = srv.addr4['cli']!;
  // Per backend: standalone knock, standalone spa, kubernetes knock, kubernetes spa; then knockd.
  const backends = backendsFor(opts);
  const groups = await addSourceGroups(srv, cli, dir, backends.length * 4 + 1, opts.trials);
  let nextGroup = 0;
  srv.spawn('node', [
    '-e',
    `require('net').createServer((s) => { s.on('error', () => {}); s.end('ok\\n'); }).listen(${PROTECTED_PORT}, '0.0.0.0')`,
  ]);
  const keys = newKeys();
  const base = { target, protectedPort: PROTECTED_PORT, timeoutMs: 5000 };
  const probeArgs = (trigger: Trigger): ProbeArgs =>
    trigger === 'knock'
      ? { ...base, sources: groups[nextGroup++]!, mode: 'knock', knockPorts: KNOCK_PORTS }
      : { ...base, sources: groups[nextGroup++]!, mode: 'spa', spa: { port: SPA_PORT, ...keys } };
  const rows: Row[] = [];
  const record = async (setup: Setup, trigger: Trigger, backend?: FirewallBackend) => {
    const args = probeArgs(trigger);
    const r = await probe(cli, args);
    const daemon = LABEL[setup](backend);
    rows.push({
      setup,
      ...(backend ? { backend } : {}),
      daemon,
      trigger,
      latenciesMs: r.latenciesMs,
      summary: summarize(r.latenciesMs, r.failures),
    });
    console.error(`  ${daemon} ${trigger}: ${r.latenciesMs.length} trials, ${r.failures} failed`);
    return args.sources;
  };

  const cluster = await startCluster(srv, dir, keys);
  try {
    for (const backend of backends) {
      const kg = await startKnockgate(srv, dir, iface, backend, keys, opts.bufferBytes);
      try {
        await record('standalone', 'knock', backend);
        await record('standalone', 'spa', backend);
      } finally {
        await stopKnockgate(srv, kg);
      }
      let sniffer: KubeProcess | undefined;
      let agent: KubeProcess | undefined;
      try {
        sniffer = await startKubeSniffer(srv, cluster, iface);
        agent = await startKubeAgent(srv, cluster, dir, backend);
        const kubeRows: Row[] = [];
        for (const trigger of ['knock', 'spa'] as const) {
          await record('kubernetes', trigger, backend);
          kubeRows.push(rows.at(-1)!);
        }
        // The agent's last lines may still be in its pipe.
        await new Promise((r) => setTimeout(r, 300));
        if (kubeRows.some((r) => r.summary.failures > 0))
          for (const [what, p] of [
            ['sniffer', sniffer],
            ['agent', agent],
          ] as const)
            for (const line of problemLines(p.output())) console.error(`    ${what}: ${line}`);
        for (const row of kubeRows) {
          const wrote = auditTimes(sniffer.output(), 'open', row.trigger);
          const opened = auditTimes(agent.output(), 'open', row.trigger);
          row.snifferToAgentMs = [...opened]
            .filter(([name]) => wrote.has(name))
            .map(([name, at]) => at - wrote.get(name)!);
        }
      } finally {
        if (agent) await stopPeer(agent);
        if (sniffer) await stopPeer(sniffer);
        await cleanupFirewall(srv, backend);
      }
    }
  } finally {
    await cluster.stop();
  }

  await dropProtectedPort(srv, PROTECTED_PORT);
  const knockd = await startKnockd(srv, dir, iface, KNOCK_PORTS, PROTECTED_PORT);
  try {
    await record('knockd', 'knock');
  } finally {
    await stopPeer(knockd);
    await flushIptables(srv);
  }
  return rows;
}

// Two digits below 1 (a ratio of 0.03 is not 0.0).
const ratio = (a: number, b: number) => `${fmt(a / b, a / b < 1 ? 2 : 1)}×`;

function table(rows: Row[]): string {
  const standaloneOf = (r: Row) =>
    rows.find((s) => s.setup === 'standalone' && s.backend === r.backend && s.trigger === r.trigger);
  const knockd = rows.find((r) => r.setup === 'knockd');
  return markdownTable(
    [
      'daemon',
      'trigger',
      'trials',
      'failed',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'this ÷ standalone (p50 / p99)',
      'knockd ÷ this (p50 / p99)',
      'sniffer wrote → agent opened, p50 / p99 ms',
    ],
    rows.map((r) => {
      const s = r.setup === 'kubernetes' ? standaloneOf(r) : undefined;
      const k = r.setup !== 'knockd' && r.trigger === 'knock' ? knockd : undefined;
      const split = r.snifferToAgentMs ? summarize(r.snifferToAgentMs) : undefined;
      return [
        r.daemon,
        r.trigger,
        String(r.summary.runs + r.summary.failures),
        String(r.summary.failures),
        fmt(r.summary.p50),
        fmt(r.summary.p90),
        fmt(r.summary.p99),
        fmt(r.summary.max),
        s ? `${ratio(r.summary.p50, s.summary.p50)} / ${ratio(r.summary.p99, s.summary.p99)}` : '',
        k ? `${ratio(k.summary.p50, r.summary.p50)} / ${ratio(k.summary.p99, r.summary.p99)}` : '',
        split ? `${fmt(split.p50)} / ${fmt(split.p99)} (${split.runs} grants)` : '',
      ];
    }),
  );
}

export const kubeLatency: Scenario = {
  name: NAME,
  description:
    'knock / SPA → first SYN-ACK of the protected port through sniffer, API emulator and agent, beside standalone',
  async run(opts: RunOptions): Promise<ScenarioResult> {
    console.error(
      `${NAME}: ${opts.trials} trials per setup and trigger, backends ${backendsFor(opts).join(', ')}`,
    );
    const loadAtStart = loadNow();
    const rows = await withTopology((net) => measure(net, opts));
    const load = `load average ${loadAtStart} at the start, ${loadNow()} at the end`;
    const figures: Figure[] = rows.flatMap((r) => {
      const own: Figure = {
        scenario: NAME,
        daemon: r.daemon,
        name: `open latency (${r.trigger})`,
        unit: 'ms',
        median: r.summary.p50,
        p99: r.summary.p99,
        runs: r.summary.runs,
        values: r.latenciesMs,
        ...(r.setup === 'kubernetes' ? { target: KUBE_TARGET } : {}),
        failures: r.summary.failures,
      };
      if (!r.snifferToAgentMs) return [own];
      const split = summarize(r.snifferToAgentMs);
      return [
        own,
        {
          scenario: NAME,
          daemon: r.daemon,
          name: `sniffer wrote the grant → agent opened it (${r.trigger})`,
          unit: 'ms',
          median: split.p50,
          p99: split.p99,
          runs: split.runs,
          values: r.snifferToAgentMs,
        },
      ];
    });
    return {
      name: NAME,
      command: `npm run bench -- --only ${NAME}${opts.quick ? ' --quick' : ''}`,
      markdown: [
        `### Kubernetes open latency (last knock / SPA packet sent → first SYN-ACK of the protected port; ${opts.trials} trials per row, each from its own source; raw SYNs every 0.1 ms (bench/syn-probe.c); sniffer + agent against the API emulator, no controller; standalone and knockd in the same run; ${load})`,
        '',
        table(rows),
      ].join('\n'),
      figures,
    };
  },
};
