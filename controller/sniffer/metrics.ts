// Prometheus metrics of `knockgate sniffer` (prom-client). Served by cmd/sniffer.ts on 127.0.0.1
// unless told otherwise (the pod runs on the host network).

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CaptureDrops } from '../../sniffer/capture/drops.js';
import { createCaptureDropsMetric } from '../capture-drops-metric.js';
import { createPacketsMetric, type PacketsMetric } from '../packets-metric.js';
import { createSpaGateMetric, type SpaGateMetric } from '../spa-gate-metric.js';

export interface SnifferMetrics {
  registry: Registry;
  /** Grants created or extended, by policy, method and whether it was an extension. */
  granted: Counter<'policy' | 'method' | 'extended'>;
  /** Knocks and packets refused, by policy and reason (replay, rate-limited, api-unavailable, ...). */
  refusals: Counter<'policy' | 'reason'>;
  /** Refusals by a cap (max-grants-per-policy, rate-limited). */
  capped: Counter<'policy' | 'cap'>;
  /** API requests of a decision that failed (the decision then opened nothing). */
  apiErrors: Counter<'operation'>;
  /** 1 while the last API request of a decision succeeded and the watches are synced, else 0. */
  apiUp: Gauge;
  /** 1 while the policy, node and Secret watches are current, 0 while one of them fails. */
  watchUp: Gauge;
  /** Policies running on this node. */
  activePolicies: Gauge;
  /** Policies that match this node but cannot run (invalid, keys missing or bad). */
  policyProblems: Gauge;
  /** SPA packets refused in the capture addon (native HMAC gate), by reason. */
  spaGateRefused: SpaGateMetric;
  /** knockgate_sniffer_packets_total{result}: packets to a policy port by what became of them. */
  packets: PacketsMetric;
  /**
   * knockgate_capture_dropped_packets{interface}, the name standalone uses: read from libpcap at
   * each scrape, from the source the role sets (its open capture).
   */
  setCaptureDropsSource(source: () => readonly CaptureDrops[]): void;
}

export function createSnifferMetrics(registry = new Registry(), defaults = true): SnifferMetrics {
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'knockgate_' });
  const registers = [registry];
  return {
    registry,
    granted: new Counter({
      name: 'knockgate_sniffer_grants_total',
      help: 'AccessGrants created or extended by this sniffer, by policy and method',
      labelNames: ['policy', 'method', 'extended'],
      registers,
    }),
    refusals: new Counter({
      name: 'knockgate_sniffer_refusals_total',
      help: 'Knocks and SPA packets refused, by policy and reason',
      labelNames: ['policy', 'reason'],
      registers,
    }),
    capped: new Counter({
      name: 'knockgate_sniffer_capped_total',
      help: 'Grants refused by a cap (live grants per policy, grant writes per second)',
      labelNames: ['policy', 'cap'],
      registers,
    }),
    apiErrors: new Counter({
      name: 'knockgate_sniffer_api_errors_total',
      help: 'Kubernetes API requests of a decision that failed (nothing was opened)',
      labelNames: ['operation'],
      registers,
    }),
    apiUp: new Gauge({
      name: 'knockgate_sniffer_api_up',
      help: '1 while the Kubernetes API answers this sniffer, 0 after a failure',
      registers,
    }),
    watchUp: new Gauge({
      name: 'knockgate_sniffer_watch_up',
      help: '1 while the KnockPolicy, Node and Secret watches are current, 0 while one fails',
      registers,
    }),
    activePolicies: new Gauge({
      name: 'knockgate_sniffer_active_policies',
      help: 'KnockPolicies this node runs',
      registers,
    }),
    policyProblems: new Gauge({
      name: 'knockgate_sniffer_policy_problems',
      help: 'KnockPolicies matching this node that cannot run (invalid spec, keys missing or bad)',
      registers,
    }),
    spaGateRefused: createSpaGateMetric('knockgate_sniffer_spa_gate_refused_total', registry),
    packets: createPacketsMetric('knockgate_sniffer_packets_total', registry),
    setCaptureDropsSource: createCaptureDropsMetric(registry),
  };
}
