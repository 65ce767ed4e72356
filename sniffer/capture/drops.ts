// Capture drop counts - an ESTIMATE. cap 0.2.1 exposes no pcap_stats(), so packets libpcap's ring
// buffer had to drop cannot be counted directly. What can be read is the interface's own receive-drop
// counters (/sys/class/net/IF/statistics: rx_dropped, rx_missed_errors, rx_fifo_errors): packets the
// NIC or kernel dropped before any socket saw them. Their increase since the capture opened is
// reported, labelled as an estimate; it does not include drops inside libpcap's buffer. The `any`
// pseudo-device has no counters: its estimate is unavailable.

import { readFileSync } from 'node:fs';

const COUNTERS = ['rx_dropped', 'rx_missed_errors', 'rx_fifo_errors'];

export interface DropEstimate {
  interface: string;
  /** Interface receive drops since the capture opened; undefined when the counters are unreadable. */
  estimatedDrops: number | undefined;
  /** Always true: this is not pcap_stats. */
  estimate: true;
  basis: string;
}

export const DROP_ESTIMATE_BASIS =
  'interface receive-drop counters (rx_dropped + rx_missed_errors + rx_fifo_errors) since the capture opened; excludes drops inside the capture buffer';

/** Sum of the interface's receive-drop counters, or undefined when unreadable. */
export function readInterfaceDrops(iface: string): number | undefined {
  if (!/^[\w.:@-]{1,15}$/.test(iface)) return undefined;
  let total = 0;
  for (const c of COUNTERS) {
    try {
      total += Number(readFileSync(`/sys/class/net/${iface}/statistics/${c}`, 'utf8').trim()) || 0;
    } catch {
      if (c === 'rx_dropped') return undefined; // the interface has no statistics at all
    }
  }
  return total;
}

export function dropEstimate(iface: string, baseline: number | undefined): DropEstimate {
  const now = readInterfaceDrops(iface);
  return {
    interface: iface,
    estimatedDrops: now === undefined || baseline === undefined ? undefined : Math.max(0, now - baseline),
    estimate: true,
    basis: DROP_ESTIMATE_BASIS,
  };
}
