// The expiry engine: every grant ends on its own.
//
// One timer (on the injectable Clock) is armed for the earliest due entry of a min-heap holding each
// live grant's expiry and each expired grant's end of retention. A periodic sweep re-reads the
// store, so a missed event or a clock jump is caught up within one interval.
//
// When a live grant falls due, the engine marks it Expired in the store and then calls
// onExpire(grant) (the caller removes the firewall entries) — exactly once per grant (per uid):
// a grant extended or replaced in the meantime is left alone. If the store cannot be written, the
// door is closed all the same (onExpire is called) and the sweep retries the marking.
// Expired, Revoked and Failed grants stay in the store for `retentionSeconds` (a recent history,
// bounded to `maxRetained`, the oldest deleted first) and are then deleted.

import { DEFAULTS } from '../../api/limits.js';
import type { Clock, TimerHandle } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import { NotFoundError, type GrantEvent, type GrantStore } from '../../api/store.js';
import type { AccessGrant } from '../../api/types.js';
import { MinHeap } from './heap.js';
import { auditGrant } from '../grants/audit.js';
import { expiredStatus } from '../grants/status.js';
import { expiresAtMs, isLive, isTerminal } from '../grants/phase.js';

export const EXPIRY_DEFAULTS = {
  /** How often the engine re-reads the store to catch up with anything it missed. */
  sweepIntervalMs: 30_000,
  /** Expired/revoked grants kept as history at most; the oldest go first beyond it. */
  maxRetainedGrants: 10_000,
} as const;

/** A store that can mark a grant Expired only if it is still the same, due grant (LocalGrantStore). */
export interface ConditionalExpiry {
  expireIfDue(name: string, uid: string | undefined, now: number): Promise<AccessGrant | undefined>;
}

export interface ExpiryOptions {
  store: GrantStore & Partial<ConditionalExpiry>;
  clock: Clock;
  /** Close the door: called once per expired grant, after it is marked Expired. */
  onExpire(grant: AccessGrant): void | Promise<void>;
  logger?: Logger;
  sweepIntervalMs?: number;
  retentionSeconds?: number;
  maxRetained?: number;
}

/** Busy key of the periodic sweep (not a valid grant name, so it never collides with one). */
const SWEEP_KEY = '#sweep';

interface Tracked {
  uid: string | undefined;
  at: number;
}

interface HeapEntry extends Tracked {
  name: string;
  kind: 'expire' | 'retire';
}

export class ExpiryEngine {
  private readonly heap = new MinHeap<HeapEntry>();
  private readonly live = new Map<string, Tracked>();
  private readonly retained = new Map<string, Tracked>();
  /** uids whose onExpire ran but whose Expired mark is not yet stored. */
  private readonly closedUnmarked = new Map<string, AccessGrant>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Grant names with work in flight; entries falling due meanwhile wait in `deferred`. */
  private readonly busy = new Set<string>();
  private readonly deferred = new Map<string, HeapEntry[]>();
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private sweepTimer: TimerHandle | undefined;
  private unwatch: (() => void) | undefined;
  private trimQueued = false;
  private stopped = false;
  private readonly sweepIntervalMs: number;
  private readonly retentionMs: number;
  private readonly maxRetained: number;

  constructor(private readonly opts: ExpiryOptions) {
    this.sweepIntervalMs = opts.sweepIntervalMs ?? EXPIRY_DEFAULTS.sweepIntervalMs;
    this.retentionMs = (opts.retentionSeconds ?? DEFAULTS.retentionSeconds) * 1000;
    this.maxRetained = opts.maxRetained ?? EXPIRY_DEFAULTS.maxRetainedGrants;
  }

  /** Track every grant in the store and every change from now on; expire what is already due. */
  async start(): Promise<void> {
    // Events that arrive while the initial list is read are newer than it: replay them after.
    let buffered: GrantEvent[] | undefined = [];
    this.unwatch = this.opts.store.watch((event) => {
      if (buffered) buffered.push(event);
      else this.onEvent(event);
    });
    for (const grant of await this.opts.store.list()) this.track(grant);
    for (const event of buffered) this.onEvent(event);
    buffered = undefined;
    this.runDue();
    this.armSweep();
  }

  stop(): void {
    this.stopped = true;
    this.unwatch?.();
    this.timer?.cancel();
    this.sweepTimer?.cancel();
  }

  /** Resolves once every expiry and deletion started so far has finished (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Re-read the store and act on everything due (also run periodically). */
  async sweep(): Promise<void> {
    const grants = await this.opts.store.list();
    const present = new Set<string>();
    for (const grant of grants) {
      present.add(grant.metadata.name);
      this.track(grant);
      const unmarked = grant.metadata.uid !== undefined && this.closedUnmarked.has(grant.metadata.uid);
      if (unmarked && !isTerminal(grant))
        this.launch(grant.metadata.name, () => this.expire(grant.metadata.name, grant.metadata.uid));
    }
    for (const name of [...this.live.keys(), ...this.retained.keys()])
      if (!present.has(name)) this.untrack(name);
    this.runDue();
  }

  // --- tracking --------------------------------------------------------------------------------

  private onEvent(event: GrantEvent): void {
    if (event.type === 'DELETED') this.untrack(event.grant.metadata.name);
    else this.track(event.grant);
    this.runDue();
  }

  private track(grant: AccessGrant): void {
    const name = grant.metadata.name;
    const uid = grant.metadata.uid;
    if (isTerminal(grant)) {
      this.live.delete(name);
      if (uid !== undefined) this.closedUnmarked.delete(uid);
      this.schedule(this.retained, name, { uid, at: this.retainUntil(grant) }, 'retire');
      this.queueTrim();
    } else {
      this.retained.delete(name);
      const end = expiresAtMs(grant);
      // An unreadable expiry is due now (fail closed).
      this.schedule(
        this.live,
        name,
        { uid, at: Number.isFinite(end) ? end : this.opts.clock.now() },
        'expire',
      );
    }
  }

  private schedule(map: Map<string, Tracked>, name: string, next: Tracked, kind: HeapEntry['kind']): void {
    const known = map.get(name);
    if (known && known.uid === next.uid && known.at === next.at) return;
    map.set(name, next);
    this.heap.push({ ...next, name, kind });
  }

  private untrack(name: string): void {
    const uid = this.live.get(name)?.uid ?? this.retained.get(name)?.uid;
    if (uid !== undefined) this.closedUnmarked.delete(uid);
    this.live.delete(name);
    this.retained.delete(name);
  }

  /** History ends retentionMs after the grant ended (its expiry, or its last transition if later). */
  private retainUntil(grant: AccessGrant): number {
    let end = expiresAtMs(grant);
    for (const c of grant.status?.conditions ?? [])
      end = Math.max(end, Date.parse(c.lastTransitionTime) || -Infinity);
    return (Number.isFinite(end) ? end : this.opts.clock.now()) + this.retentionMs;
  }

  // --- acting on due entries -------------------------------------------------------------------

  private runDue(): void {
    if (this.stopped) return;
    const now = this.opts.clock.now();
    for (let top = this.heap.peek(); top && top.at <= now; top = this.heap.peek()) {
      this.heap.pop();
      const map = top.kind === 'expire' ? this.live : this.retained;
      const current = map.get(top.name);
      if (!current || current.uid !== top.uid || current.at !== top.at) continue; // superseded
      const { name, uid } = top;
      if (this.busy.has(name)) this.deferred.set(name, [...(this.deferred.get(name) ?? []), top]);
      else if (top.kind === 'expire') this.launch(name, () => this.expire(name, uid));
      else this.launch(name, () => this.retire(name, uid));
    }
    this.armTimer();
  }

  private armTimer(): void {
    const next = this.heap.peek()?.at ?? Infinity;
    if (next === this.timerAt) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = next;
    if (next === Infinity) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.timerAt = Infinity;
      this.timer = undefined;
      this.runDue();
    }, next - this.opts.clock.now());
  }

  private armSweep(): void {
    this.sweepTimer = this.opts.clock.setTimeout(() => {
      if (this.stopped) return;
      this.launch(SWEEP_KEY, () => this.sweep());
      this.armSweep();
    }, this.sweepIntervalMs);
  }

  /**
   * Run one piece of async work, one at a time per grant name (work for a busy name is dropped;
   * runDue defers due entries instead), never throwing.
   */
  private launch(name: string, work: () => Promise<void>): void {
    if (this.busy.has(name)) return;
    this.busy.add(name);
    const run = work()
      .catch((err: Error) => this.opts.logger?.error({ event: 'expiry-error', grant: name }, err.message))
      .finally(() => {
        this.busy.delete(name);
        this.inFlight.delete(run);
        const waiting = this.deferred.get(name);
        if (waiting) {
          this.deferred.delete(name);
          for (const entry of waiting) this.heap.push(entry);
          this.runDue();
        }
      });
    this.inFlight.add(run);
  }

  private async expire(name: string, uid: string | undefined): Promise<void> {
    const store = this.opts.store;
    const now = this.opts.clock.now();
    const alreadyClosed = uid !== undefined ? this.closedUnmarked.get(uid) : undefined;
    let marked: AccessGrant | undefined;
    let known: AccessGrant | undefined;
    try {
      if (store.expireIfDue) {
        marked = await store.expireIfDue(name, uid, now);
      } else {
        // Generic store: check, then mark. A repeated knock landing between the two can be marked
        // Expired; the knock after it replaces the grant.
        known = await store.get(name);
        if (known && known.metadata.uid === uid && !isTerminal(known) && !isLive(known, now)) {
          marked = await store.updateStatus(name, expiredStatus(now));
        }
      }
    } catch (err) {
      // Cannot record it: close the door anyway, remember that it is closed, retry the mark later.
      known ??= await store.get(name).catch(() => undefined);
      if (alreadyClosed || !known || known.metadata.uid !== uid || isLive(known, now)) throw err;
      if (uid !== undefined) this.closedUnmarked.set(uid, known);
      await this.close(known);
      throw err;
    }
    if (marked && !alreadyClosed) await this.close(marked);
    if (uid !== undefined && marked) this.closedUnmarked.delete(uid);
  }

  private async close(grant: AccessGrant): Promise<void> {
    if (this.opts.logger) auditGrant(this.opts.logger, 'expire', grant);
    await this.opts.onExpire(grant);
  }

  private async retire(name: string, uid: string | undefined): Promise<void> {
    const grant = await this.opts.store.get(name);
    if (!grant || grant.metadata.uid !== uid || !isTerminal(grant)) return;
    this.retained.delete(name);
    await this.opts.store.delete(name).catch((err: Error) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
  }

  /** Beyond maxRetained history entries, delete the oldest first (once per burst of changes). */
  private queueTrim(): void {
    if (this.trimQueued || this.retained.size <= this.maxRetained) return;
    this.trimQueued = true;
    queueMicrotask(() => {
      this.trimQueued = false;
      const excess = this.retained.size - this.maxRetained;
      if (excess <= 0) return;
      const oldest = [...this.retained].sort((a, b) => a[1].at - b[1].at).slice(0, excess);
      // Due now: runDue retires them (or defers one whose name has work in flight).
      const now = this.opts.clock.now();
      for (const [name, { uid }] of oldest) this.schedule(this.retained, name, { uid, at: now }, 'retire');
      this.runDue();
    });
  }
}
