// Prometheus metrics of `knockgate standalone` (prom-client), served on 127.0.0.1 only unless told
// otherwise: /metrics and /healthz.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { createCaptureDropsMetric, type CaptureDropsSource } from '../capture-drops-metric.js';
import { createLatencyHistograms, type LatencyHistograms } from '../latency-metrics.js';
import { createPacketsMetric, type PacketsMetric } from '../packets-metric.js';
import { createSpaGateMetric, type SpaGateMetric } from '../spa-gate-metric.js';

export interface StandaloneMetrics extends LatencyHistograms {
  registry: Registry;
  opened: Counter<'policy' | 'method' | 'extended'>;
  refusals: Counter<'policy' | 'reason'>;
  failed: Counter<'policy'>;
  maxGrantsRefused: Counter;
  activeGrants: Gauge;
  /** knockgate_capture_dropped_packets{interface}, read from the open capture at each scrape. */
  setCaptureDropsSource: (source: CaptureDropsSource) => void;
  /** knockgate_spa_gate_refused_total{reason}: refused in the capture addon (native HMAC gate). */
  spaGateRefused: SpaGateMetric;
  /**
   * knockgate_grants_active{target}: Active grants opening this host ("node", the label the
   * controller uses), security groups, or neither ("none"); read from the grant store at each scrape.
   */
  setActiveGrantsSource: (source: () => Promise<Record<string, number>>) => void;
  /** knockgate_packets_total{result}: packets to a policy port by what became of them. */
  packets: PacketsMetric;
}

export function createStandaloneMetrics(): StandaloneMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'knockgate_' });
  let activeSource: (() => Promise<Record<string, number>>) | undefined;
  new Gauge({
    name: 'knockgate_grants_active',
    help: 'Active grants by target kind (node: this host, securityGroup, none), at the scrape',
    labelNames: ['target'],
    registers: [registry],
    async collect() {
      if (!activeSource) return;
      for (const [target, n] of Object.entries(await activeSource())) this.set({ target }, n);
    },
  });
  return {
    ...createLatencyHistograms(registry, "the packet's capture"),
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
    setCaptureDropsSource: createCaptureDropsMetric(registry),
    spaGateRefused: createSpaGateMetric('knockgate_spa_gate_refused_total', registry),
    setActiveGrantsSource: (source) => (activeSource = source),
    packets: createPacketsMetric('knockgate_packets_total', registry),
  };
}

// The HTTP server is shared by every role (controller/metrics-server.ts).
export { MetricsAddressError, parseListenAddress, serveMetrics } from '../metrics-server.js';
