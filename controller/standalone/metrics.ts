// Prometheus metrics of `knockgate standalone` (prom-client), served on 127.0.0.1 only unless told
// otherwise: /metrics and /healthz.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { createSpaGateMetric, type SpaGateMetric } from '../spa-gate-metric.js';

export interface StandaloneMetrics {
  registry: Registry;
  opened: Counter<'policy' | 'method' | 'extended'>;
  refusals: Counter<'policy' | 'reason'>;
  failed: Counter<'policy'>;
  maxGrantsRefused: Counter;
  activeGrants: Gauge;
  captureDrops: Gauge<'interface'>;
  /** knockgate_spa_gate_refused_total{reason}: refused in the capture addon (native HMAC gate). */
  spaGateRefused: SpaGateMetric;
}

export function createStandaloneMetrics(): StandaloneMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'knockgate_' });
  return {
    registry,
    opened: new Counter({
      name: 'knockgate_grants_opened_total',
      help: 'Grants opened or extended, by policy and method',
      labelNames: ['policy', 'method', 'extended'],
      registers: [registry],
    }),
    refusals: new Counter({
      name: 'knockgate_refusals_total',
      help: 'Knocks and SPA packets refused, by policy and reason',
      labelNames: ['policy', 'reason'],
      registers: [registry],
    }),
    failed: new Counter({
      name: 'knockgate_grants_failed_total',
      help: 'Grants that could not be applied (firewall or start command failed)',
      labelNames: ['policy'],
      registers: [registry],
    }),
    maxGrantsRefused: new Counter({
      name: 'knockgate_max_grants_refused_total',
      help: 'Grants refused because --max-grants were open',
      registers: [registry],
    }),
    activeGrants: new Gauge({
      name: 'knockgate_active_grants',
      help: 'Live grants at the last firewall resync',
      registers: [registry],
    }),
    captureDrops: new Gauge({
      name: 'knockgate_capture_dropped_packets',
      help: 'Packets the capture lost since it started: libpcap pcap_stats ps_drop (ring full) + ps_ifdrop (interface)',
      labelNames: ['interface'],
      registers: [registry],
    }),
    spaGateRefused: createSpaGateMetric('knockgate_spa_gate_refused_total', registry),
  };
}

// The HTTP server is shared by every role (controller/metrics-server.ts).
export { MetricsAddressError, parseListenAddress, serveMetrics } from '../metrics-server.js';
