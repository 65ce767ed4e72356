// The two latency histograms every role that opens a firewall exports under the same names (the
// agent, standalone), so one dashboard panel and one alert fit both:
//   knockgate_open_latency_seconds   request seen (standalone: the packet's capture; agent: the
//                                    grant's creationTimestamp, whole seconds) → open in the firewall
//   knockgate_expiry_lag_seconds     the grant's expiresAt → its entries removed (the kernel's own
//                                    element timeout has usually closed the door already)

import { Histogram, type Registry } from 'prom-client';

export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

export interface LatencyHistograms {
  openLatency: Histogram;
  expiryLag: Histogram;
}

export function createLatencyHistograms(registry: Registry, openedFrom: string): LatencyHistograms {
  return {
    openLatency: new Histogram({
      name: 'knockgate_open_latency_seconds',
      help: `From ${openedFrom} to open in the firewall`,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    expiryLag: new Histogram({
      name: 'knockgate_expiry_lag_seconds',
      help: 'From a grant expiresAt to its entries removed from the firewall',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
  };
}
