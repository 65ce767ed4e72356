// The node agent's reconciler: AccessGrants targeting this node (and the KnockPolicies they name)
// in, firewall state and this node's status.nodes entry out. Like controller-runtime's Reconcile:
// level-based (each pass decides from the cached objects, never from the event), idempotent, one
// grant at a time, a failed pass requeued with backoff.
//
// - decide(grant): closed (gone, not targeting this node, being deleted, terminal, expired, or failing
//   the check against its live policy → Failed with the reason), or opened with the checked entries.
// - local expiry: every applied grant has a timer at its expiresAt that closes it without asking
//   the API, so doors close on time while the API server is unreachable.
// - full resync (at the first complete lists and every resyncIntervalMs): the whole desired state
//   from the caches, applied atomically (firewall.sync), then every grant's status re-checked.
// - last known state: nothing is decided before both caches have had a complete list, a failing
//   watch leaves the caches (and so the firewall) as they were, and an empty policy list does not
//   close the grants that name policies (they keep their last state until their own expiry; the
//   policy's deletion revokes them through the grants' ownerReferences). The protected ports come
//   from the agent's config alone, so no cache can remove the drops.

import type { CidrSet } from '../../api/addresses.js';
import type { Clock, TimerHandle } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { PortRef } from '../../api/ports.js';
import type { AccessGrant, KnockPolicy } from '../../api/types.js';
import { Backoff, sleep } from '../kube/backoff.js';
import { KUBE_STORE_DEFAULTS } from '../kube/limits.js';
import type { InformerEvent } from '../kube/informer.js';
import { auditGrant, type AuditEvent } from '../grants/audit.js';
import { isLive, isTerminal } from '../grants/phase.js';
import {
  FirewallInputError,
  MaxGrantsError,
  type Firewall,
  type FirewallGrant,
  type RemoveReason,
} from '../firewall/types.js';
import { checkGrant } from './check.js';
import type { NodeObject, ObjectCache } from './sources.js';
import { shows, StatusReporter, type WantedStatus } from './status.js';
import type { NodeStatusWriter } from './sources.js';

export const RECONCILE_RETRY = { initialMs: 1_000, maxMs: 60_000 } as const;

export interface ReconcilerOptions {
  node: string;
  grants: ObjectCache<AccessGrant>;
  policies: ObjectCache<KnockPolicy>;
  /** This node's own Node object (its labels decide Selector-mode grants); absent: never known. */
  nodes?: ObjectCache<NodeObject>;
  status: NodeStatusWriter;
  firewall: Firewall;
  clock: Clock;
  logger: Logger;
  neverGrant: CidrSet;
  protectedPorts: readonly PortRef[];
  largestManualPrefix: { ipv4: number; ipv6: number };
  clockSkewMs: number;
  resyncIntervalMs: number;
  random?: () => number;
  /** Told of every audit event (open, extend, expire, revoke, refuse with its reason): metrics. */
  onAudit?: (event: AuditEvent, reason?: string, grant?: AccessGrant) => void;
}

/** What one grant should be on this node. */
type Decision =
  | { kind: 'open'; entries: FirewallGrant[] }
  | { kind: 'close'; reason: RemoveReason; report?: WantedStatus }
  | { kind: 'keep' };

interface Applied {
  /** The incarnation applied: a grant replaced under the same name is a new open, not an extend. */
  uid: string | undefined;
  entries: FirewallGrant[];
  expiresAt: number;
  timer: TimerHandle;
}

/** Queue key of the full resync (not a valid grant name). */
const RESYNC = '#resync';

export class AgentReconciler {
  private readonly applied = new Map<string, Applied>();
  private readonly queue = new Set<string>();
  private readonly retries = new Map<string, { backoff: Backoff; timer?: TimerHandle }>();
  private readonly reporter: StatusReporter;
  /** Grants kept at their last state because the policy list was empty (decided again on a policy event). */
  private readonly heldForPolicies = new Set<string>();
  /** Selector-mode grants kept unapplied (Pending) until this node's labels are known. */
  private readonly heldForNode = new Set<string>();
  private readonly unsubscribe: (() => void)[] = [];
  private draining: Promise<void> | undefined;
  private resyncTimer: TimerHandle | undefined;
  private syncedOnce = false;
  private markSynced!: () => void;
  /** Resolves at the first full resync from complete lists (the whole state applied once). */
  readonly firstSync = new Promise<void>((resolve) => (this.markSynced = resolve));
  private stopped = false;
  /** Latched by uninstall(): no firewall call any more, ever (the agent removes every object). */
  private uninstalling = false;
  /** Set by reportRemoved(): the objects are gone, so grants may say Removed. */
  private removedAll = false;
  /** Passes run (tests, metrics). */
  passes = 0;
  /** Full resyncs applied (tests, metrics). */
  resyncs = 0;

  constructor(private readonly opts: ReconcilerOptions) {
    this.reporter = new StatusReporter(
      opts.node,
      opts.grants,
      opts.status,
      opts.clock,
      opts.logger,
      opts.random,
    );
  }

  /** Follow the caches. The firewall must be installed already (its drops come from the config). */
  start(): void {
    this.unsubscribe.push(
      this.opts.grants.subscribe((e) => this.onGrantEvent(e)),
      this.opts.policies.subscribe((e) => this.onPolicyEvent(e)),
    );
    if (this.opts.nodes) {
      this.unsubscribe.push(this.opts.nodes.subscribe(() => this.onNodeEvent()));
      void this.awaitNode(this.opts.nodes);
    }
    this.enqueue(RESYNC);
    this.armResync();
  }

  stop(): void {
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    this.resyncTimer?.cancel();
    for (const r of this.retries.values()) r.timer?.cancel();
    this.retries.clear();
    for (const a of this.applied.values()) a.timer.cancel();
    this.queue.clear();
    this.heldForPolicies.clear();
    this.heldForNode.clear();
    this.reporter.stop();
  }

  /** Resolves once no pass and no status write is in flight. */
  async idle(): Promise<void> {
    for (let i = 0; i < 1000 && this.draining; i++) {
      await this.draining;
      await this.reporter.idle();
    }
    await this.reporter.idle();
  }

  /** Both caches have had a complete list: decisions can be made. */
  get ready(): boolean {
    return this.opts.grants.isSynced && this.opts.policies.isSynced;
  }

  /** Names of the grants applied now (tests, metrics). */
  appliedNames(): string[] {
    return [...this.applied.keys()].sort();
  }

  get statusBacklog(): number {
    return this.reporter.backlog;
  }

  /**
   * knockgate is being uninstalled (controller/uninstall/marker.ts): stop touching the firewall for
   * good — the agent removes every object knockgate owns with firewall.cleanup() once this resolves
   * (no pass is in flight then, and none will open, close or resync anything again).
   */
  async uninstall(): Promise<void> {
    this.uninstalling = true;
    for (const name of [...this.applied.keys()]) this.untrack(name);
    await this.idle();
    // A pass that was in flight may have tracked what it opened: forget that too (its timer would
    // call the firewall later).
    for (const name of [...this.applied.keys()]) this.untrack(name);
  }

  /**
   * After the cleanup: every grant targeting this node whose entry says Applied or Pending is told
   * Removed (the controller's finalizer waits for that), now and for every later event.
   */
  reportRemoved(): void {
    this.removedAll = true;
    for (const g of this.opts.grants.list()) if (this.targetsMe(g)) this.enqueue(g.metadata.name);
  }

  /** Run a full resync now (also done on a timer). */
  resync(): void {
    this.enqueue(RESYNC);
  }

  // --- events ------------------------------------------------------------------------------------

  private onGrantEvent(e: InformerEvent<AccessGrant>): void {
    const name = e.object.metadata.name;
    if (!this.syncedOnce) return this.firstResyncWhenReady();
    if (this.targetsMe(e.object) || this.applied.has(name)) this.enqueue(name);
    if (e.type === 'DELETED') this.reporter.forget(name);
  }

  private onPolicyEvent(e: InformerEvent<KnockPolicy>): void {
    if (!this.syncedOnce) return this.firstResyncWhenReady();
    const policy = e.object.metadata.name;
    // Grants held at their last state while the policy list was empty are decided again.
    for (const name of this.heldForPolicies) this.enqueue(name);
    this.heldForPolicies.clear();
    for (const g of this.opts.grants.list())
      if (g.spec.policyRef?.name === policy && this.targetsMe(g)) this.enqueue(g.metadata.name);
    for (const name of this.applied.keys()) {
      const g = this.opts.grants.get(name);
      if (!g || g.spec.policyRef?.name === policy) this.enqueue(name);
    }
  }

  /** This node's labels changed (or arrived): the grants of Selector-mode policies are decided again. */
  private onNodeEvent(): void {
    if (!this.syncedOnce) return;
    for (const name of this.heldForNode) this.enqueue(name);
    this.heldForNode.clear();
    for (const g of this.opts.grants.list()) {
      if (!this.targetsMe(g)) continue;
      const policy = g.spec.policyRef?.name;
      const p = policy === undefined ? undefined : this.opts.policies.get(policy);
      if (p?.spec?.grant?.targets?.node?.mode === 'Selector') this.enqueue(g.metadata.name);
    }
  }

  /** The node cache's first list brings no event: wait for it (bounded waits, until stopped). */
  private async awaitNode(nodes: ObjectCache<NodeObject>): Promise<void> {
    for (let i = 0; !this.stopped && !nodes.isSynced && i < 1_000_000; i++) {
      try {
        await nodes.waitForSync(KUBE_STORE_DEFAULTS.initialSyncTimeoutMs);
      } catch (err) {
        if (this.stopped) return;
        this.opts.logger.warn(
          { event: 'node-not-synced', node: this.opts.node },
          `node ${this.opts.node} not read yet (${(err as Error).message}): Selector-mode grants stay Pending`,
        );
        // A wait that failed at once (a stopped cache) must not turn this into a busy loop.
        await sleep(this.opts.clock, RECONCILE_RETRY.initialMs);
      }
    }
    if (!this.stopped) this.onNodeEvent();
  }

  /** Before the first full resync, events only tell that the caches may have become ready. */
  private firstResyncWhenReady(): void {
    if (this.ready) this.enqueue(RESYNC);
  }

  // --- the work queue: one pass at a time ------------------------------------------------------

  private enqueue(name: string): void {
    if (this.stopped) return;
    this.queue.add(name);
    this.kick();
  }

  private kick(): void {
    if (this.draining || this.stopped) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      // Work queued after the loop saw an empty queue, before it ended.
      if (this.queue.size > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      const next = this.queue.values().next();
      if (next.done) return;
      const name = next.value;
      this.queue.delete(name);
      this.passes++;
      try {
        if (name === RESYNC) await this.fullResync();
        else await this.reconcile(name);
        this.succeeded(name);
      } catch (err) {
        this.requeue(name, err as Error);
      }
    }
  }

  private succeeded(name: string): void {
    const r = this.retries.get(name);
    if (r && !r.timer) this.retries.delete(name);
  }

  private requeue(name: string, err: Error): void {
    let r = this.retries.get(name);
    if (!r) {
      r = { backoff: new Backoff({ ...RECONCILE_RETRY, random: this.opts.random }) };
      this.retries.set(name, r);
    }
    if (r.timer) return;
    const wait = r.backoff.next();
    this.opts.logger.warn(
      { event: 'reconcile-error', grant: name === RESYNC ? undefined : name, retryInMs: wait },
      `${name === RESYNC ? 'resync' : `grant ${name}`}: ${err.message}`,
    );
    const entry = r;
    r.timer = this.opts.clock.setTimeout(() => {
      entry.timer = undefined;
      this.enqueue(name);
    }, wait);
  }

  private armResync(): void {
    this.resyncTimer = this.opts.clock.setTimeout(() => {
      this.enqueue(RESYNC);
      this.armResync();
    }, this.opts.resyncIntervalMs);
  }

  // --- one grant -----------------------------------------------------------------------------------

  private targetsMe(grant: AccessGrant): boolean {
    return grant.spec?.targets?.nodes?.includes(this.opts.node) === true;
  }

  private decide(grant: AccessGrant | undefined, now: number): Decision {
    if (!grant || !this.targetsMe(grant)) return { kind: 'close', reason: 'revoked' };
    const wasOpen = (g: AccessGrant) => {
      const state = g.status?.nodes?.[this.opts.node]?.state;
      return state === 'Applied' || state === 'Pending' || this.applied.has(g.metadata.name);
    };
    const removed = (message: string, reason: RemoveReason): Decision => ({
      kind: 'close',
      reason,
      ...(wasOpen(grant) ? { report: { state: 'Removed', message } } : {}),
    });
    if (grant.metadata.deletionTimestamp) return removed('grant is being deleted', 'revoked');
    if (isTerminal(grant)) {
      const phase = grant.status!.phase!;
      return removed(`grant ${phase}`, phase === 'Expired' ? 'expired' : 'revoked');
    }
    if (!isLive(grant, now)) return removed('expired', 'expired');
    const policyName = grant.spec.policyRef?.name;
    const policy = policyName === undefined ? undefined : this.opts.policies.get(policyName);
    // An empty policy list is no reason to close anything: keep the last known state.
    if (policyName !== undefined && !policy && this.opts.policies.list().length === 0) {
      this.heldForPolicies.add(grant.metadata.name);
      return { kind: 'keep' };
    }
    let verdict: ReturnType<typeof checkGrant>;
    try {
      verdict = this.check(grant, policy, now);
    } catch (err) {
      // A malformed object must not stop the others (a resync decides them all): fail closed.
      verdict = { ok: false, reason: `malformed grant: ${(err as Error).message}` };
    }
    if (!verdict.ok && verdict.wait) {
      // Fail closed, and only this grant: unapplied and Pending until this node's labels are known.
      this.heldForNode.add(grant.metadata.name);
      return { kind: 'close', reason: 'revoked', report: { state: 'Pending', message: verdict.reason } };
    }
    if (!verdict.ok)
      return { kind: 'close', reason: 'revoked', report: { state: 'Failed', message: verdict.reason } };
    return { kind: 'open', entries: verdict.entries };
  }

  /** One audit line; a malformed grant gets a minimal one instead of an exception. */
  private audit(event: AuditEvent, grant: AccessGrant, reason?: string): void {
    this.opts.onAudit?.(event, reason, grant);
    try {
      auditGrant(this.opts.logger, event, grant, reason);
    } catch {
      this.opts.logger.info({ event, grant: grant.metadata.name, reason }, `${event} ${grant.metadata.name}`);
    }
  }

  private check(grant: AccessGrant, policy: KnockPolicy | undefined, now: number) {
    return checkGrant(grant, policy, {
      node: this.opts.node,
      now,
      neverGrant: this.opts.neverGrant,
      protectedPorts: this.opts.protectedPorts,
      largestManualPrefix: this.opts.largestManualPrefix,
      clockSkewMs: this.opts.clockSkewMs,
      nodeLabels: this.nodeLabels(),
    });
  }

  /** This node's labels, or undefined while its Node object is not known. */
  private nodeLabels(): Record<string, string> | undefined {
    const nodes = this.opts.nodes;
    if (!nodes?.isSynced) return undefined;
    const node = nodes.get(this.opts.node);
    return node ? (node.metadata.labels ?? {}) : undefined;
  }

  private async reconcile(name: string): Promise<void> {
    if (this.uninstalling) return this.reportUninstalled(name);
    if (!this.ready) return; // last known state until both caches have listed
    const grant = this.opts.grants.get(name);
    const decision = this.decide(grant, this.opts.clock.now());
    if (decision.kind === 'keep') return;
    if (decision.kind === 'close') {
      if (decision.report?.state === 'Failed' && grant && !shows(grant, this.opts.node, decision.report))
        this.audit('refuse', grant, decision.report.message);
      await this.close(name, decision.reason, grant);
      if (grant && decision.report) this.reporter.want(name, decision.report);
      return;
    }
    try {
      await this.open(grant!, decision.entries);
    } catch (err) {
      const message = `firewall: ${(err as Error).message}`;
      if (err instanceof FirewallInputError) {
        // The firewall's own checks refused it: trying again cannot help. (A grant that expired
        // while it was being applied is just closed: the next pass reports that.)
        if (isLive(grant!, this.opts.clock.now())) {
          if (!shows(grant, this.opts.node, { state: 'Failed', message }))
            this.opts.onAudit?.('refuse', message);
          this.reporter.want(name, { state: 'Failed', message });
        } else this.enqueue(name);
        return;
      }
      // Not the grant's fault (maxGrants, the kernel refused): say so, and try again later. Pending,
      // not Failed: the controller takes a node's Failed as final for the grant.
      this.reporter.want(name, { state: 'Pending', message: `${message} (retrying)` });
      throw err;
    }
    this.reporter.want(name, { state: 'Applied' });
  }

  /** Uninstalling: no firewall call; once the objects are gone, Removed where something was open. */
  private reportUninstalled(name: string): void {
    const grant = this.opts.grants.get(name);
    if (!this.removedAll || !grant || !this.targetsMe(grant)) return;
    const state = grant.status?.nodes?.[this.opts.node]?.state;
    if (state === 'Applied' || state === 'Pending')
      this.reporter.want(name, {
        state: 'Removed',
        message: 'knockgate uninstall: firewall objects removed',
      });
  }

  /** Apply `entries` for `grant` (a no-op when they are applied already). */
  private async open(grant: AccessGrant, entries: FirewallGrant[]): Promise<void> {
    const name = grant.metadata.name;
    const old = this.applied.get(name);
    if (old && sameEntries(old.entries, entries)) return;
    // Recorded (and the old timer replaced) before the firewall is called, so that an old expiry
    // timer firing meanwhile cannot close the extended grant.
    this.track(name, grant.metadata.uid, entries);
    try {
      for (const e of entries) await this.opts.firewall.add(e);
    } catch (err) {
      // Fail closed: none of this grant's entries stays open.
      this.untrack(name);
      for (const e of new Set([...entries, ...(old?.entries ?? [])]))
        await this.opts.firewall.remove(e, 'revoked').catch(() => undefined);
      if (err instanceof MaxGrantsError)
        this.opts.logger.warn({ event: 'max-grants', grant: name }, (err as Error).message);
      throw err;
    }
    const names = new Set(entries.map((e) => e.name));
    for (const e of old?.entries ?? []) if (!names.has(e.name)) await this.opts.firewall.remove(e, 'revoked');
    this.audit(old && old.uid === grant.metadata.uid ? 'extend' : 'open', grant);
  }

  /** Close whatever is applied for `name` (a no-op when nothing is). */
  private async close(name: string, reason: RemoveReason, grant?: AccessGrant): Promise<void> {
    if (this.uninstalling) return;
    const old = this.untrack(name);
    if (!old) return;
    for (const e of old.entries) await this.opts.firewall.remove(e, reason);
    const event = reason === 'expired' ? 'expire' : 'revoke';
    if (grant) this.audit(event, grant);
    else this.goneAudit(event, name);
  }

  /** The audit line of a grant closed after its object is gone. */
  private goneAudit(event: 'expire' | 'revoke', name: string): void {
    this.opts.onAudit?.(event);
    this.opts.logger.info({ event, grant: name }, `${event} ${name}: grant gone`);
  }

  private track(name: string, uid: string | undefined, entries: FirewallGrant[]): void {
    this.applied.get(name)?.timer.cancel();
    const expiresAt = Math.min(...entries.map((e) => e.expiresAt));
    const timer = this.opts.clock.setTimeout(
      () => void this.expireLocally(name, expiresAt),
      expiresAt - this.opts.clock.now(),
    );
    this.applied.set(name, { uid, entries, expiresAt, timer });
  }

  private untrack(name: string): Applied | undefined {
    const old = this.applied.get(name);
    if (!old) return undefined;
    old.timer.cancel();
    this.applied.delete(name);
    return old;
  }

  /** The local timer of an applied grant: close it without the API, then report when it can. */
  private async expireLocally(name: string, expiresAt: number): Promise<void> {
    const current = this.applied.get(name);
    if (!current || current.expiresAt !== expiresAt || this.stopped || this.uninstalling) return;
    // Timers may fire a little before the wall clock reaches the end; closing then would let the
    // reconcile that follows see a live grant and open it again. Wait for the end itself.
    const early = expiresAt - this.opts.clock.now();
    if (early > 0) {
      current.timer = this.opts.clock.setTimeout(() => void this.expireLocally(name, expiresAt), early);
      return;
    }
    try {
      await this.close(name, 'expired', this.opts.grants.get(name));
    } catch (err) {
      this.opts.logger.error({ event: 'expire-failed', grant: name }, (err as Error).message);
    }
    this.enqueue(name); // status, and a retry if the close failed
  }

  // --- the whole state -------------------------------------------------------------------------

  private async fullResync(): Promise<void> {
    if (this.uninstalling) {
      // Nothing is written to the firewall again; statuses grant by grant.
      for (const g of this.opts.grants.list()) if (this.targetsMe(g)) this.enqueue(g.metadata.name);
      return;
    }
    const now = this.opts.clock.now();
    if (!this.ready) {
      // No complete lists yet: rewrite the last known state (what is still live) to repair drift.
      const live = [...this.applied.values()].flatMap((a) => a.entries).filter((e) => e.expiresAt > now);
      await this.opts.firewall.sync(live);
      return;
    }
    const desired = new Map<string, { grant: AccessGrant; entries: FirewallGrant[] }>();
    const names = new Set<string>(this.applied.keys());
    for (const grant of this.opts.grants.list()) {
      if (!this.targetsMe(grant)) continue;
      const name = grant.metadata.name;
      names.add(name);
      const d = this.decide(grant, now);
      if (d.kind === 'open') desired.set(name, { grant, entries: d.entries });
      else if (d.kind === 'keep') {
        const kept = this.applied.get(name);
        if (kept && kept.expiresAt > now) desired.set(name, { grant, entries: kept.entries });
      }
    }
    await this.opts.firewall.sync([...desired.values()].flatMap((d) => d.entries));
    for (const name of [...this.applied.keys()]) {
      if (desired.has(name)) continue;
      this.untrack(name);
      const grant = this.opts.grants.get(name);
      const event = grant && !isLive(grant, now) ? 'expire' : 'revoke';
      if (grant) this.audit(event, grant);
      else this.goneAudit(event, name);
    }
    for (const [name, d] of desired) {
      const old = this.applied.get(name);
      if (!old || !sameEntries(old.entries, d.entries)) {
        this.track(name, d.grant.metadata.uid, d.entries);
        this.audit(old && old.uid === d.grant.metadata.uid ? 'extend' : 'open', d.grant);
      }
    }
    this.resyncs++;
    this.opts.logger.debug({ event: 'resync', grants: desired.size }, 'firewall resynced');
    this.syncedOnce = true;
    this.markSynced();
    // Statuses (and anything that changed meanwhile) grant by grant.
    for (const name of names) this.enqueue(name);
  }
}

function sameEntries(a: FirewallGrant[], b: FirewallGrant[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    return (
      x.name === y.name &&
      x.source === y.source &&
      x.expiresAt === y.expiresAt &&
      x.ports.length === y.ports.length &&
      x.ports.every((p, j) => p.port === y.ports[j]!.port && p.proto === y.ports[j]!.proto)
    );
  });
}
