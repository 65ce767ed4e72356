// Reconcile one AccessGrant (controller-runtime style: level-based, idempotent, one object at a
// time per name; the work queue retries failures with backoff and runs RequeueAfter timers).
//
//   being deleted (deletionTimestamp) → finalize: a live grant is marked Revoked (Event), then the
//       finalizer knockgate.io/revoke stays until every target reports Removed, or revokeTimeout
//       after the deletion, whichever comes first; terminal grants let go at once.
//   terminal (Expired/Failed/Revoked) → Event once; deleted when its retention ends.
//   live → finalizer added; Expired at expiresAt; Failed (Refused) when it exceeds its policy or
//       the manual bounds; Failed when a node reports Failed; Active when every target reports
//       Applied (Event Opened); Pending otherwise — with reason SecurityGroupFailed while a security
//       group is Failed (controller/aws/sg-reconciler.ts retries it). Requeued at expiresAt.
//
// The retention count bound is its own key (RETENTION_KEY): beyond maxGrants history entries, and
// beyond HISTORY_PER_NAME of one name's generations, the oldest are deleted first. Every write passes the guard (only the leader writes) and carries the
// cached object's resourceVersion or uid, so a stale view never overwrites a newer one (409 → the
// informer brings the new state and the key is reconciled again).

import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { AccessGrant, KnockPolicy } from '../../api/types.js';
import { auditGrant } from '../grants/audit.js';
import { isTerminal } from '../grants/phase.js';
import type { KubeInformer, CachedObject } from '../kube/informer.js';
import { KubeApiError } from '../kube/errors.js';
import { baseName, HISTORY_PER_NAME } from '../kube/generations.js';
import type { ResourceClient } from '../kube/resource-client.js';
import { checkBoundsWithNodes, type Refusal } from './bounds.js';
import type { ControllerConfig } from './config.js';
import type { EventRecorder, GrantEventReason } from './events.js';
import type { ControllerMetrics } from './metrics.js';
import type { ReconcileResult } from './queue.js';
import { differs, phaseSince, reportTargets, retainUntil, statusFor, type DesiredStatus } from './status.js';

export const FINALIZER = 'knockgate.io/revoke';
/** The key of the retention count check (not a valid object name, so it never collides). */
export const RETENTION_KEY = '#retention';

type Grant = AccessGrant & CachedObject;
type Policy = KnockPolicy & CachedObject;

export interface NodeLike {
  metadata: { name: string; labels?: Record<string, string> };
}

export interface GrantReconcilerOptions {
  grants: KubeInformer<Grant>;
  policies: KubeInformer<Policy>;
  /** Node labels for Selector policies; undefined when node targets are not checked by label. */
  nodes?: KubeInformer<NodeLike & CachedObject>;
  client: ResourceClient<AccessGrant>;
  events: EventRecorder;
  config: ControllerConfig;
  clock: Clock;
  logger?: Logger;
  /** Throws unless this instance may write (is the leader). */
  guard: () => void;
  metrics?: ControllerMetrics;
}

export class GrantReconciler {
  constructor(private readonly opts: GrantReconcilerOptions) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    if (key === RETENTION_KEY) return this.trimHistory();
    const cached = this.opts.grants.get(key);
    if (!cached) return;
    const grant = structuredClone(cached);
    try {
      if (grant.metadata.deletionTimestamp) return await this.finalize(grant);
      if (isTerminal(grant)) return await this.history(grant);
      return await this.live(grant);
    } catch (err) {
      // Our view was stale: the change that made it stale reaches the informer and reconciles this
      // key again (queued now, or marked dirty if it already came while this ran).
      if (err instanceof KubeApiError && err.status === 409) return;
      throw err;
    }
  }

  // --- live grants -------------------------------------------------------------------------------

  private async live(grant: AccessGrant): Promise<ReconcileResult | void> {
    const now = this.opts.clock.now();
    if (!grant.metadata.finalizers?.includes(FINALIZER)) {
      grant = await this.write(() =>
        this.opts.client.mergePatch(grant.metadata.name, {
          metadata: {
            resourceVersion: grant.metadata.resourceVersion,
            finalizers: [...(grant.metadata.finalizers ?? []), FINALIZER],
          },
        }),
      );
    }
    const end = Date.parse(grant.spec.expiresAt);
    if (!(end > now)) {
      await this.setStatus(grant, statusFor(grant, 'Expired', 'Expired', 'expiresAt passed', now));
      return;
    }
    const refusal = this.refusal(grant, now);
    if (refusal === 'wait') {
      const waiting = `waiting for policy "${grant.spec.policyRef?.name ?? ''}" to appear`;
      await this.setStatus(grant, statusFor(grant, 'Pending', 'WaitingForPolicy', waiting, now));
      const created = Date.parse(grant.metadata.creationTimestamp ?? '') || now;
      return { requeueAfterMs: Math.max(1000, created + this.opts.config.policyGraceSeconds * 1000 - now) };
    }
    if (refusal) {
      await this.setStatus(grant, statusFor(grant, 'Failed', refusal.reason, refusal.message, now));
      return;
    }
    const report = reportTargets(grant);
    let desired: DesiredStatus;
    if (report.failed) desired = statusFor(grant, 'Failed', 'TargetFailed', report.failed, now);
    else if (report.waiting.length === 0)
      desired = statusFor(grant, 'Active', 'Applied', 'every target reports Applied', now);
    else if (report.groupFailed)
      desired = statusFor(grant, 'Pending', 'SecurityGroupFailed', report.groupFailed, now);
    else
      desired = statusFor(
        grant,
        'Pending',
        'WaitingForTargets',
        `waiting for ${report.waiting.slice(0, 5).join(', ')}${report.waiting.length > 5 ? ', …' : ''}`,
        now,
      );
    const written = await this.setStatus(grant, desired);
    if (written.status?.phase === 'Active')
      await this.opts.events.record(
        written,
        'Opened',
        `${written.spec.source} may reach ${written.spec.ports.join(',')} until ${written.spec.expiresAt}`,
        phaseSince(written),
      );
    return { requeueAfterMs: end - now };
  }

  /** Why the grant must not be opened; 'wait' while its policy may just not have reached our cache. */
  private refusal(grant: AccessGrant, now: number): Refusal | undefined | 'wait' {
    const policyName = grant.spec.policyRef?.name;
    const policy = policyName === undefined ? undefined : this.opts.policies.get(policyName);
    if (grant.spec.method !== 'manual' && !policy) {
      const created = Date.parse(grant.metadata.creationTimestamp ?? '');
      if (Number.isFinite(created) && now < created + this.opts.config.policyGraceSeconds * 1000)
        return 'wait';
    }
    const bySelector = policy?.spec.grant.targets?.node?.mode === 'Selector';
    // Never refuse for want of a cache: wait (retry with backoff) until the nodes are listed.
    if (bySelector && this.opts.nodes && !this.opts.nodes.isSynced)
      throw new Error(`accessgrant ${grant.metadata.name}: the node list is not loaded yet`);
    try {
      return checkBoundsWithNodes(grant, { now, config: this.opts.config, policy }, this.opts.nodes);
    } catch (err) {
      // A field the checks cannot even read (the CRD schema should have stopped it): fail closed.
      return { reason: 'PolicyMismatch', message: `unreadable grant: ${(err as Error).message}` };
    }
  }

  // --- terminal grants ---------------------------------------------------------------------------

  private async history(grant: AccessGrant): Promise<ReconcileResult | void> {
    const now = this.opts.clock.now();
    const since = phaseSince(grant);
    const phase = grant.status!.phase!;
    const failedByTarget = grant.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True');
    const reason: GrantEventReason =
      phase === 'Expired'
        ? 'Expired'
        : phase === 'Revoked'
          ? 'Revoked'
          : failedByTarget
            ? 'Failed'
            : 'Refused';
    await this.opts.events.record(grant, reason, grant.status?.message ?? phase, since);
    const until = retainUntil(grant, this.opts.config.retention.seconds * 1000, now);
    if (now < until) return { requeueAfterMs: until - now };
    await this.deleteHistory(grant, 'retention', 'retention ended');
  }

  private async deleteHistory(grant: AccessGrant, bound: 'retention' | 'count', why: string): Promise<void> {
    try {
      await this.write(() => this.opts.client.delete(grant.metadata.name, { uid: grant.metadata.uid }));
      this.opts.metrics?.deleted.inc({ kind: 'accessgrant', reason: bound });
      this.opts.logger?.info(
        { event: 'grant-deleted', grant: grant.metadata.name, phase: grant.status?.phase, reason: why },
        `deleted ${grant.status?.phase ?? ''} grant ${grant.metadata.name}: ${why}`,
      );
    } catch (err) {
      // Gone already, or replaced by a new grant of that name (uid precondition): nothing to do.
      if (!(err instanceof KubeApiError && (err.status === 404 || err.status === 409))) throw err;
    }
  }

  /**
   * Beyond maxGrants history entries, the oldest go first; and beyond HISTORY_PER_NAME of one
   * name's generations (kube/generations.ts), that name's oldest: the sniffer, which may not
   * delete, walks a name's generations to a free one, so a client knocking again and again must
   * not fill them all with history and be locked out until the retention ends.
   */
  private async trimHistory(): Promise<void> {
    const { seconds, maxGrants } = this.opts.config.retention;
    const now = this.opts.clock.now();
    const history = this.opts.grants
      .list()
      .filter((g) => isTerminal(g) && !g.metadata.deletionTimestamp)
      .map((g) => ({ g, until: retainUntil(g, seconds * 1000, now) }));
    history.sort((a, b) => a.until - b.until || a.g.metadata.name.localeCompare(b.g.metadata.name));
    const doomed = new Map<AccessGrant, string>();
    for (const { g } of history.slice(0, Math.max(0, history.length - maxGrants)))
      doomed.set(g, `more than ${maxGrants} expired grants kept`);
    const byName = new Map<string, AccessGrant[]>();
    for (const { g } of history) {
      const base = baseName(g.metadata.name);
      const entries = byName.get(base);
      if (entries) entries.push(g);
      else byName.set(base, [g]);
    }
    for (const [base, entries] of byName)
      for (const g of entries.slice(0, Math.max(0, entries.length - HISTORY_PER_NAME)))
        if (!doomed.has(g))
          doomed.set(g, `more than ${HISTORY_PER_NAME} expired grants of ${base} kept (its generations)`);
    for (const [g, why] of doomed) await this.deleteHistory(g, 'count', why);
  }

  // --- deletion ----------------------------------------------------------------------------------

  private async finalize(grant: AccessGrant): Promise<ReconcileResult | void> {
    if (!grant.metadata.finalizers?.includes(FINALIZER)) return;
    const now = this.opts.clock.now();
    if (!isTerminal(grant)) {
      grant = await this.setStatus(
        grant,
        statusFor(grant, 'Revoked', 'Deleted', 'deleted: closing on every target', now),
      );
    }
    if (grant.status?.phase === 'Revoked') {
      await this.opts.events.record(grant, 'Revoked', grant.status.message ?? 'revoked', phaseSince(grant));
      const report = reportTargets(grant);
      const deadline =
        (Date.parse(grant.metadata.deletionTimestamp ?? '') || now) +
        this.opts.config.revokeTimeoutSeconds * 1000;
      if (report.notRemoved.length > 0 && now < deadline) return { requeueAfterMs: deadline - now };
      if (report.notRemoved.length > 0)
        this.opts.logger?.warn(
          { event: 'revoke-timeout', grant: grant.metadata.name, waiting: report.notRemoved },
          `revoke ${grant.metadata.name}: no Removed from ${report.notRemoved.join(', ')} after ${this.opts.config.revokeTimeoutSeconds} s; letting the object go (kernel entries expire on their own)`,
        );
    }
    await this.write(() =>
      this.opts.client.mergePatch(grant.metadata.name, {
        metadata: {
          resourceVersion: grant.metadata.resourceVersion,
          finalizers: (grant.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
        },
      }),
    );
  }

  // --- writes ------------------------------------------------------------------------------------

  /** Write `desired` if it differs (with the read resourceVersion); returns the grant as it now is. */
  private async setStatus(grant: AccessGrant, desired: DesiredStatus): Promise<AccessGrant> {
    if (!differs(grant, desired)) return grant;
    const written = await this.write(() =>
      this.opts.client.mergePatchStatus(grant.metadata.name, {
        metadata: { resourceVersion: grant.metadata.resourceVersion },
        status: { phase: desired.phase, message: desired.message, conditions: desired.conditions },
      }),
    );
    const before = grant.status?.phase;
    if (before !== desired.phase) this.opts.metrics?.transitions.inc({ phase: desired.phase });
    if (before !== desired.phase && this.opts.logger) {
      if (desired.phase === 'Expired') auditGrant(this.opts.logger, 'expire', written);
      else if (desired.phase === 'Revoked') auditGrant(this.opts.logger, 'revoke', written);
      else if (desired.phase === 'Failed') auditGrant(this.opts.logger, 'refuse', written, desired.message);
    }
    return written;
  }

  private async write<T>(send: () => Promise<T>): Promise<T> {
    this.opts.guard();
    return send();
  }
}
