// Capture drop counts from libpcap's pcap_stats() (the kernel's PACKET_STATISTICS of the capture
// socket, accumulated by libpcap since the capture opened): exact, not an estimate.

import type { PcapStats } from './addon.js';

export interface CaptureDrops {
  interface: string;
  /** Packets the kernel handed to the capture socket since it opened; undefined once closed. */
  received: number | undefined;
  /** Packets lost because the capture buffer was full (ps_drop); undefined once closed. */
  dropped: number | undefined;
  /** Packets the interface itself dropped (ps_ifdrop); undefined once closed. */
  interfaceDropped: number | undefined;
}

export function captureDrops(iface: string, stats: PcapStats | undefined): CaptureDrops {
  return {
    interface: iface,
    received: stats?.received,
    dropped: stats?.dropped,
    interfaceDropped: stats?.interfaceDropped,
  };
}
