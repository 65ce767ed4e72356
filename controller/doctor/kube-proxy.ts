// kube-proxy's mode, from what it answers on its metrics port (GET /proxyMode, 127.0.0.1:10249 by
// default) or, when it does not answer, from what it leaves in the kernel: `table ip kube-proxy`
// (nftables mode), the kube-ipvs0 dummy interface (ipvs), the KUBE-SERVICES chain in the nat table
// (iptables). Every mode DNATs in nat prerouting (priority -100): knockgate matches at -150 / in
// mangle, before it, so protected NodePorts are dropped by the port the client used.

import type { Commands } from '../firewall/command.js';
import { ok, warn, type CheckResult } from './report.js';
import { tryRun } from './run.js';

export const KUBE_PROXY_MODE_URL = 'http://127.0.0.1:10249/proxyMode';

export interface KubeProxyFacts {
  /** iptables | ipvs | nftables | kernelspace ..., or undefined when no kube-proxy was found. */
  mode?: string;
  /** How the mode was found. */
  from?: string;
}

async function askEndpoint(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1500) });
    if (!res.ok) return undefined;
    const text = (await res.text()).trim();
    return /^[a-z]{1,32}$/.test(text) ? text : undefined;
  } catch {
    return undefined; // nothing listening: no kube-proxy here, or its metrics bound elsewhere
  }
}

export async function kubeProxyFacts(
  commands: Commands,
  url: string = KUBE_PROXY_MODE_URL,
): Promise<KubeProxyFacts> {
  const answered = url === '' ? undefined : await askEndpoint(url);
  if (answered) return { mode: answered, from: url };
  if ((await tryRun(commands, 'nft', ['list', 'table', 'ip', 'kube-proxy'])).ok)
    return { mode: 'nftables', from: 'table ip kube-proxy' };
  if ((await tryRun(commands, 'ip', ['link', 'show', 'kube-ipvs0'])).ok)
    return { mode: 'ipvs', from: 'interface kube-ipvs0' };
  for (const save of ['iptables-nft-save', 'iptables-legacy-save']) {
    const r = await tryRun(commands, save, ['-t', 'nat']);
    if (r.ok && /^:KUBE-SERVICES /m.test(r.stdout))
      return { mode: 'iptables', from: `KUBE-SERVICES in ${save}` };
  }
  return {};
}

/** `kubernetes`: doctor was pointed at an agent config, so this is meant to be a Kubernetes node. */
export function kubeProxyCheck(f: KubeProxyFacts, kubernetes: boolean): CheckResult {
  const name = 'kube-proxy';
  if (f.mode === undefined) {
    const seen = 'not found (no answer on its metrics port, no kube-proxy table, chain or kube-ipvs0)';
    return kubernetes
      ? warn(name, `${seen}: on a Kubernetes node its absence means an eBPF replacement (see ebpf) or none`)
      : ok(name, `${seen}: a plain host`);
  }
  if (f.mode === 'kernelspace' || f.mode === 'userspace')
    return warn(
      name,
      `${f.mode} mode (from ${f.from}): not a Linux netfilter mode, knockgate's drops may not see service traffic`,
    );
  return ok(
    name,
    `${f.mode} mode (from ${f.from}): it DNATs after knockgate's prerouting match, protected NodePorts stay covered`,
  );
}
