// knockgate_capture_dropped_packets{interface}, the same in the sniffer and standalone: read from
// libpcap (pcap_stats) at each scrape, from the source the role sets once its capture is open, so
// the value is never older than the scrape.

import { Gauge, type Registry } from 'prom-client';
import type { CaptureDrops } from '../sniffer/capture/drops.js';

export type CaptureDropsSource = () => readonly CaptureDrops[];

/** Registers the gauge; returns the setter of its source (nothing open: no sample). */
export function createCaptureDropsMetric(registry: Registry): (source: CaptureDropsSource) => void {
  let source: CaptureDropsSource = () => [];
  new Gauge({
    name: 'knockgate_capture_dropped_packets',
    help: 'Packets the capture lost since it opened: libpcap pcap_stats ps_drop (ring full) + ps_ifdrop (interface)',
    labelNames: ['interface'],
    registers: [registry],
    collect() {
      this.reset();
      for (const d of source())
        if (d.dropped !== undefined)
          this.set({ interface: d.interface }, d.dropped + (d.interfaceDropped ?? 0));
    },
  });
  return (s) => (source = s);
}
