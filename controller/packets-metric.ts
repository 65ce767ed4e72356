// Packets by result, as one Prometheus counter (sniffer and standalone): what became of every
// packet that reached a policy's port. Three sources, summed at each scrape:
//   - the engine's count of knock packets that did not complete a sequence (knock-step);
//   - the native SPA gate's refusals in the capture addon, before any JavaScript (spa-gate-refused);
//   - what each decided packet came to: knock-complete / spa-accepted when its grant was written
//     (opened or extended), knock-refused / spa-refused when it was refused anywhere — by the SPA
//     verifier, a cap, the replay claim, the API (the reason is the refusals counter's label).

import { Counter, type Registry } from 'prom-client';
import { SPA_GATE_REASONS, type SpaGateCounts } from '../sniffer/capture/spa-gate.js';

export const PACKET_RESULTS = [
  'knock-step',
  'knock-complete',
  'knock-refused',
  'spa-accepted',
  'spa-refused',
  'spa-gate-refused',
] as const;
export type PacketResult = (typeof PACKET_RESULTS)[number];

export interface PacketSources {
  knockSteps?: () => number;
  gateCounts?: () => SpaGateCounts | undefined;
}

export interface PacketsMetric {
  counter: Counter<'result'>;
  /** Count one decided packet: a knock or SPA packet, opened (a grant written) or refused. */
  decided(method: 'knock' | 'spa', opened: boolean): void;
  setSources(sources: PacketSources): void;
}

export function createPacketsMetric(name: string, registry: Registry): PacketsMetric {
  const counted = new Map<PacketResult, number>(PACKET_RESULTS.map((r) => [r, 0]));
  let sources: PacketSources = {};
  const counter = new Counter({
    name,
    help: 'Packets to a policy port by result (knock-step, knock-complete, spa-accepted, spa-refused, spa-gate-refused, ...)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const totals = new Map(counted);
      totals.set('knock-step', sources.knockSteps?.() ?? 0);
      const gate = sources.gateCounts?.();
      if (gate)
        totals.set(
          'spa-gate-refused',
          SPA_GATE_REASONS.reduce((sum, r) => sum + gate[r], 0),
        );
      // Every source is cumulative: the counter is set to the totals at each scrape.
      this.reset();
      for (const [result, n] of totals) this.inc({ result }, n);
    },
  });
  return {
    counter,
    decided(method, opened) {
      const result: PacketResult =
        method === 'spa'
          ? opened
            ? 'spa-accepted'
            : 'spa-refused'
          : opened
            ? 'knock-complete'
            : 'knock-refused';
      counted.set(result, counted.get(result)! + 1);
    },
    setSources: (s) => (sources = s),
  };
}
