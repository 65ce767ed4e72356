// Whether an eBPF dataplane bypasses netfilter. Cilium and Calico in eBPF mode attach programs at
// XDP and at tc ingress of the node's interfaces and, as kube-proxy replacements, answer service
// and NodePort traffic there: such packets never reach netfilter's prerouting hook, where knockgate
// drops. The signs, all read-only: `ip -d link` (an xdp program on an interface), `tc filter show
// dev IF ingress` (a bpf classifier), pins under /sys/fs/bpf named after the dataplane, and no
// kube-proxy (kube-proxy.ts).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Commands } from '../firewall/command.js';
import { fail, ok, warn, type CheckResult } from './report.js';
import { tryRun } from './run.js';

export interface EbpfFacts {
  /** Interfaces with an XDP program, "eth0 (xdpgeneric, prog 42)". */
  xdp: string[];
  /** Interfaces with a bpf classifier at tc ingress, "eth0 (cil_from_netdev)". */
  tcIngress: string[];
  /** Which dataplanes' pins /sys/fs/bpf holds: "cilium", "calico". */
  pinnedBy: string[];
}

const DATAPLANE_PINS: { dataplane: string; pattern: RegExp }[] = [
  { dataplane: 'cilium', pattern: /cilium/i },
  { dataplane: 'calico', pattern: /^cali|calico/i },
];

/** Names under `dir`, at most `depth` levels and `max` entries (a bpffs can hold thousands of maps). */
function listNames(dir: string, depth: number, max = 2000): string[] {
  const out: string[] = [];
  const walk = (d: string, left: number) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return; // not mounted, or not readable
    }
    for (const e of entries) {
      if (out.length >= max) return;
      out.push(e.name);
      if (e.isDirectory() && left > 1) walk(join(d, e.name), left - 1);
    }
  };
  walk(dir, depth);
  return out;
}

interface IpLink {
  ifname?: string;
  xdp?: { mode?: number | string; prog?: { id?: number; name?: string }; attached?: unknown[] };
}

interface TcFilter {
  kind?: string;
  options?: { bpf_name?: string; prog?: { name?: string; id?: number } };
}

function parseJson<T>(text: string): T[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? (v as T[]) : [];
  } catch {
    return [];
  }
}

export async function ebpfFacts(
  commands: Commands,
  interfaces: readonly string[],
  bpffs = '/sys/fs/bpf',
): Promise<EbpfFacts> {
  const links = parseJson<IpLink>((await tryRun(commands, 'ip', ['-j', '-d', 'link', 'show'])).stdout);
  const xdp = links
    .filter((l) => l.xdp !== undefined)
    .map((l) => {
      const prog =
        l.xdp!.prog?.name ?? (l.xdp!.prog?.id !== undefined ? `prog ${l.xdp!.prog.id}` : 'a program');
      return `${l.ifname ?? '?'} (${prog})`;
    });
  const tcIngress: string[] = [];
  const names = interfaces.length > 0 ? interfaces : links.map((l) => l.ifname ?? '').filter((n) => n !== '');
  for (const iface of names) {
    const r = await tryRun(commands, 'tc', ['-j', 'filter', 'show', 'dev', iface, 'ingress']);
    const bpf = parseJson<TcFilter>(r.stdout).filter((f) => f.kind === 'bpf');
    if (bpf.length === 0) continue;
    const progs = [
      ...new Set(bpf.map((f) => f.options?.prog?.name ?? f.options?.bpf_name).filter((n) => n !== undefined)),
    ];
    tcIngress.push(`${iface}${progs.length > 0 ? ` (${progs.join(', ')})` : ''}`);
  }
  const pins = listNames(bpffs, 3);
  const pinnedBy = DATAPLANE_PINS.filter((d) => pins.some((n) => d.pattern.test(n))).map((d) => d.dataplane);
  return { xdp, tcIngress, pinnedBy };
}

export function ebpfCheck(f: EbpfFacts, kubeProxyFound: boolean): CheckResult {
  const name = 'ebpf';
  const seen = [
    f.xdp.length > 0 ? `xdp on ${f.xdp.join(', ')}` : 'no xdp program',
    f.tcIngress.length > 0 ? `bpf at tc ingress of ${f.tcIngress.join(', ')}` : 'no bpf at tc ingress',
    f.pinnedBy.length > 0
      ? `${f.pinnedBy.join(' and ')} pins in /sys/fs/bpf`
      : 'no dataplane pins in /sys/fs/bpf',
  ].join('; ');
  if (f.pinnedBy.length > 0 && !kubeProxyFound)
    return fail(
      name,
      `${seen}; no kube-proxy: an eBPF kube-proxy replacement (${f.pinnedBy.join(', ')}) answers service and ` +
        "NodePort traffic before netfilter, so knockgate's drops do not apply to it — keep kube-proxy, or " +
        "exclude the protected ports from the replacement's handling",
    );
  if (f.xdp.length > 0 || f.tcIngress.length > 0 || f.pinnedBy.length > 0)
    return warn(
      name,
      `${seen}: an eBPF program sees packets before netfilter; what it redirects or drops skips knockgate's ` +
        'rules (and an xdp drop hides it from the capture too)',
    );
  return ok(name, `${seen}: nothing bypasses netfilter`);
}
