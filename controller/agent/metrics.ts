// Prometheus metrics of `knockgate agent` (prom-client), served by cmd/agent.ts with /healthz and
// /readyz (controller/metrics-server.ts) on 127.0.0.1:9467 unless told otherwise (the pod runs on
// the host network). What they count, and where:
//   grants opened/extended, refused (by kind of reason), expired, revoked — the reconciler's audit
//     events (one per change of state, not per pass);
//   grants applied now, API up — read at scrape time;
//   firewall sync duration and errors by operation — a wrapper around the Firewall;
//   status writes by result — a wrapper around the NodeStatusWriter.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AccessGrant } from '../../api/types.js';
import type { AuditEvent } from '../grants/audit.js';
import { expiresAtMs } from '../grants/phase.js';
import { createLatencyHistograms } from '../latency-metrics.js';
import type { Firewall, FirewallGrant, RemoveReason } from '../firewall/types.js';
import { GrantGoneError, type NodeStatusWriter } from './sources.js';

export interface AgentMetrics {
  registry: Registry;
  /** Grants opened or extended on this node, by event (open, extend). */
  opened: Counter<'event'>;
  /** Grants refused on this node (Failed), by kind of reason (refusalKind). */
  refused: Counter<'reason'>;
  /** Grants closed at their expiry (by the local timer or a resync). */
  expired: Counter;
  /** Grants closed before their expiry (deleted, revoked, no longer targeting this node). */
  revoked: Counter;
  /** Whole-state firewall rewrites (install and periodic resync), seconds. */
  syncSeconds: Histogram;
  /** Firewall operations that failed, by operation (install, sync, add, remove). */
  firewallErrors: Counter<'op'>;
  /** status.nodes writes, by result (ok, failed, gone). */
  statusWrites: Counter<'result'>;
  /** creationTimestamp → open here, and expiresAt → removed here (controller/latency-metrics.ts). */
  openLatency: Histogram;
  expiryLag: Histogram;
}

export interface AgentGauges {
  /** Grants applied in the firewall now. */
  applied(): number;
  /** True while the grant and policy watches are current (listed, no error since). */
  apiUp(): boolean;
}

export function createAgentMetrics(registry = new Registry(), defaults = true): AgentMetrics {
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'knockgate_' });
  const registers = [registry];
  return {
    registry,
    ...createLatencyHistograms(registry, 'a grant creation (creationTimestamp, whole seconds)'),
    opened: new Counter({
      name: 'knockgate_agent_grants_opened_total',
      help: 'Grants opened or extended in this node firewall, by event',
      labelNames: ['event'],
      registers,
    }),
    refused: new Counter({
      name: 'knockgate_agent_grants_refused_total',
      help: 'Grants refused on this node (status Failed), by kind of reason',
      labelNames: ['reason'],
      registers,
    }),
    expired: new Counter({
      name: 'knockgate_agent_grants_expired_total',
      help: 'Grants closed at their expiry on this node',
      registers,
    }),
    revoked: new Counter({
      name: 'knockgate_agent_grants_revoked_total',
      help: 'Grants closed before their expiry on this node (deleted, revoked, retargeted)',
      registers,
    }),
    syncSeconds: new Histogram({
      name: 'knockgate_agent_firewall_sync_seconds',
      help: 'Duration of whole-state firewall rewrites (install, resync)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    firewallErrors: new Counter({
      name: 'knockgate_agent_firewall_errors_total',
      help: 'Firewall operations that failed, by operation',
      labelNames: ['op'],
      registers,
    }),
    statusWrites: new Counter({
      name: 'knockgate_agent_status_writes_total',
      help: 'Writes of this node status.nodes entry, by result (ok, failed, gone)',
      labelNames: ['result'],
      registers,
    }),
  };
}

/** Gauges read at scrape time. */
export function registerAgentGauges(metrics: AgentMetrics, source: AgentGauges): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'knockgate_agent_grants_applied',
    help: 'Grants applied in this node firewall now',
    registers,
    collect() {
      this.set(source.applied());
    },
  });
  new Gauge({
    name: 'knockgate_agent_api_up',
    help: '1 while the grant and policy watches are current, else 0',
    registers,
    collect() {
      this.set(source.apiUp() ? 1 : 0);
    },
  });
}

/** One audit event of the reconciler, counted. */
export function countAudit(
  metrics: AgentMetrics,
  event: AuditEvent,
  reason?: string,
  grant?: AccessGrant,
  now?: number,
): void {
  if (grant && now !== undefined) {
    const created = Date.parse(grant.metadata.creationTimestamp ?? '');
    if (event === 'open' && Number.isFinite(created))
      metrics.openLatency.observe(Math.max(0, now - created) / 1000);
    if (event === 'expire' && Number.isFinite(expiresAtMs(grant)))
      metrics.expiryLag.observe(Math.max(0, now - expiresAtMs(grant)) / 1000);
  }
  if (event === 'open' || event === 'extend') metrics.opened.inc({ event });
  else if (event === 'refuse') metrics.refused.inc({ reason: refusalKind(reason ?? '') });
  else if (event === 'expire') metrics.expired.inc();
  else if (event === 'revoke') metrics.revoked.inc();
}

/** A bounded label for a refusal reason (check.ts's messages; the firewall's own input checks). */
export function refusalKind(reason: string): string {
  const kinds: [RegExp, string][] = [
    [/^firewall:/, 'firewall-input'],
    [/^malformed grant/, 'malformed'],
    [/^spec\.ports|^port .* is not (granted|protected)/, 'ports'],
    [/^spec\.source|is not a single host$|wider than the largest manual prefix/, 'source'],
    [/is never granted on this node$/, 'never-grant'],
    [/without spec\.policyRef$|^policy "[^"]*" does not exist$/, 'policy-missing'],
    [/^policy "[^"]*" is invalid:/, 'policy-invalid'],
    [/^method \S+ does not match policy/, 'method'],
    [/^expiresAt /, 'duration'],
    [/^security group /, 'security-group'],
    [/opens only nodes labelled/, 'node-selector'],
    [/opens no node firewall|opens only the node that saw the request/, 'node-target'],
  ];
  return kinds.find(([re]) => re.test(reason))?.[1] ?? 'other';
}

/** The firewall, its whole-state rewrites timed and its failures counted. */
export function instrumentFirewall(firewall: Firewall, metrics: AgentMetrics): Firewall {
  const counted = async <T>(op: string, fn: () => Promise<T>, timed = false): Promise<T> => {
    const end = timed ? metrics.syncSeconds.startTimer() : undefined;
    try {
      return await fn();
    } catch (err) {
      metrics.firewallErrors.inc({ op });
      throw err;
    } finally {
      end?.();
    }
  };
  return {
    get backend() {
      return firewall.backend;
    },
    install: (config) => counted('install', () => firewall.install(config), true),
    sync: (grants: FirewallGrant[]) => counted('sync', () => firewall.sync(grants), true),
    add: (grant: FirewallGrant) => counted('add', () => firewall.add(grant)),
    remove: (grant: Pick<FirewallGrant, 'name'>, reason: RemoveReason) =>
      counted('remove', () => firewall.remove(grant, reason)),
    grants: () => firewall.grants(),
    stats: () => firewall.stats(),
    cleanup: () => firewall.cleanup(),
    close: () => firewall.close(),
  };
}

/** The status writer, its writes counted by result. */
export function instrumentStatusWriter(writer: NodeStatusWriter, metrics: AgentMetrics): NodeStatusWriter {
  return {
    async patch(name, node, status) {
      try {
        await writer.patch(name, node, status);
        metrics.statusWrites.inc({ result: 'ok' });
      } catch (err) {
        metrics.statusWrites.inc({ result: err instanceof GrantGoneError ? 'gone' : 'failed' });
        throw err;
      }
    },
  };
}
