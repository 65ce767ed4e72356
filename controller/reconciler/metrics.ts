// Prometheus metrics of `knockgate controller` (prom-client), served by cmd/controller.ts on
// 127.0.0.1 unless told otherwise, with /healthz (controller/standalone/metrics.ts serveMetrics).

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AccessGrant } from '../../api/types.js';

export interface ControllerMetrics {
  registry: Registry;
  /** Phase changes this controller wrote, by the new phase. */
  transitions: Counter<'phase'>;
  /** Events recorded, by reason. */
  events: Counter<'reason'>;
  /** Objects deleted: grants at the end of retention or beyond the count bound, expired claims. */
  deleted: Counter<'kind' | 'reason'>;
  /** Reconciles that failed (and were requeued with backoff), by queue. */
  reconcileErrors: Counter<'queue'>;
}

export interface ControllerGauges {
  isLeader(): boolean;
  grants(): AccessGrant[];
}

export function createControllerMetrics(registry = new Registry(), defaults = true): ControllerMetrics {
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'knockgate_' });
  const registers = [registry];
  return {
    registry,
    transitions: new Counter({
      name: 'knockgate_controller_phase_transitions_total',
      help: 'AccessGrant phase changes written by this controller, by new phase',
      labelNames: ['phase'],
      registers,
    }),
    events: new Counter({
      name: 'knockgate_controller_events_total',
      help: 'Kubernetes Events recorded for AccessGrants, by reason',
      labelNames: ['reason'],
      registers,
    }),
    deleted: new Counter({
      name: 'knockgate_controller_deleted_total',
      help: 'AccessGrants (retention) and ReplayClaims (expiry) deleted, by kind and reason',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'knockgate_controller_reconcile_errors_total',
      help: 'Reconciles that failed and were requeued with backoff, by queue',
      labelNames: ['queue'],
      registers,
    }),
  };
}

/** Gauges read at scrape time: leadership, and grants in the cache by phase. */
export function registerControllerGauges(metrics: ControllerMetrics, source: ControllerGauges): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'knockgate_controller_leader',
    help: '1 while this replica holds the Lease and acts, else 0',
    registers,
    collect() {
      this.set(source.isLeader() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'knockgate_controller_grants',
    help: 'AccessGrants in the controller cache, by phase ("None" before the first status)',
    labelNames: ['phase'],
    registers,
    collect() {
      const counts = new Map<string, number>(
        ['None', 'Pending', 'Active', 'Expired', 'Failed', 'Revoked'].map((p) => [p, 0]),
      );
      for (const g of source.grants()) {
        const p = g.status?.phase ?? 'None';
        counts.set(p, (counts.get(p) ?? 0) + 1);
      }
      for (const [phase, n] of counts) this.set({ phase }, n);
    },
  });
  new Gauge({
    name: 'knockgate_controller_grants_active',
    help: 'Active AccessGrants in the controller cache, by target kind (node, securityGroup, none)',
    labelNames: ['target'],
    registers,
    collect() {
      const counts = activeGrantsByTarget(source.grants());
      for (const [target, n] of Object.entries(counts)) this.set({ target }, n);
    },
  });
}

/**
 * Active grants by what they open: a grant with nodes and security groups counts for both; one
 * that targets neither (targets.node.mode None, no group) is "none".
 */
export function activeGrantsByTarget(
  grants: readonly AccessGrant[],
): Record<'node' | 'securityGroup' | 'none', number> {
  const counts = { node: 0, securityGroup: 0, none: 0 };
  for (const g of grants) {
    if (g.status?.phase !== 'Active') continue;
    const nodes = (g.spec.targets?.nodes?.length ?? 0) > 0;
    const groups = (g.spec.targets?.awsSecurityGroups?.length ?? 0) > 0;
    if (nodes) counts.node++;
    if (groups) counts.securityGroup++;
    if (!nodes && !groups) counts.none++;
  }
  return counts;
}
