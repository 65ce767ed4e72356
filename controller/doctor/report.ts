// What `knockgate doctor` prints: one line per check, "OK", "WARN" or "FAIL", the check's name and
// why, so that a line pasted into an issue says everything. FAIL means knockgate cannot protect or
// open this node as configured; WARN means it can, but something deserves a look.

export type Verdict = 'OK' | 'WARN' | 'FAIL';

export interface CheckResult {
  /** Short and stable: netfilter, ebpf, kube-proxy, capture, config, firewall, aws-sg, aws-tags. */
  name: string;
  verdict: Verdict;
  /** One line: what was seen, and for WARN/FAIL what it means and what to do. */
  detail: string;
}

export const ok = (name: string, detail: string): CheckResult => ({ name, verdict: 'OK', detail });
export const warn = (name: string, detail: string): CheckResult => ({ name, verdict: 'WARN', detail });
export const fail = (name: string, detail: string): CheckResult => ({ name, verdict: 'FAIL', detail });

/** "OK   netfilter   iptables is iptables-nft ...": columns aligned, one line per check. */
export function formatReport(results: readonly CheckResult[]): string {
  const width = Math.max(0, ...results.map((r) => r.name.length));
  return results
    .map((r) => `${r.verdict.padEnd(4)} ${r.name.padEnd(width)}  ${r.detail.replace(/\s*\n\s*/g, ' ')}\n`)
    .join('');
}

/** 1 when any check failed, else 0. */
export function exitStatus(results: readonly CheckResult[]): number {
  return results.some((r) => r.verdict === 'FAIL') ? 1 : 0;
}
