// The native SPA gate's refusals as a Prometheus counter (standalone and sniffer). The counts live in
// the capture addon (sniffer/capture/spa-gate.ts) and are read when the registry is scraped; the
// packets they count never reach JavaScript, so they are not in the refusals counter.

import { Counter, type Registry } from 'prom-client';
import { SPA_GATE_REASONS, type SpaGateCounts } from '../sniffer/capture/spa-gate.js';

export interface SpaGateMetric {
  counter: Counter<'reason'>;
  /** Where the counts come from: the running sniffer (undefined while there is none). */
  setSource(source: () => SpaGateCounts | undefined): void;
}

export function createSpaGateMetric(name: string, registry: Registry): SpaGateMetric {
  let source: () => SpaGateCounts | undefined = () => undefined;
  const counter = new Counter({
    name,
    help: 'SPA packets the capture addon refused before JavaScript (native HMAC gate), by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const counts = source();
      if (!counts) return;
      // The addon's counts are cumulative: the counter is set to them at each scrape.
      this.reset();
      for (const reason of SPA_GATE_REASONS) this.inc({ reason }, counts[reason]);
    },
  });
  return { counter, setSource: (s) => (source = s) };
}
