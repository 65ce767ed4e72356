// A work queue like controller-runtime's: keys (object names) are deduplicated while they wait, a
// key is never reconciled by two workers at once (a key added while it runs is reconciled again
// after), a failed reconcile is retried with per-key exponential backoff, and a reconcile may ask
// to be run again after a delay (RequeueAfter: an expiry, the end of retention). Timers run on the
// injectable clock. stop() drops everything waiting and every timer.

import type { Clock, TimerHandle } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import { Backoff } from '../kube/backoff.js';

export interface ReconcileResult {
  /** Reconcile this key again after this many milliseconds (the earliest request wins). */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

export interface WorkQueueOptions {
  name: string;
  reconcile: Reconcile;
  clock: Clock;
  logger?: Logger;
  /** Keys reconciled at the same time (never the same key twice). Default 4. */
  workers?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Called once per failed reconcile (metrics). */
  onError?: () => void;
}

export class WorkQueue {
  private readonly waiting = new Set<string>();
  private readonly order: string[] = [];
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, Backoff>();
  private readonly timers = new Map<string, { at: number; handle: TimerHandle }>();
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly opts: WorkQueueOptions) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    this.waiting.add(key);
    this.order.push(key);
    this.pump();
  }

  /** Add `key` after `ms` (an earlier pending request for the key wins). */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const at = this.opts.clock.now() + ms;
    const known = this.timers.get(key);
    if (known && known.at <= at) return;
    known?.handle.cancel();
    const handle = this.opts.clock.setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    this.timers.set(key, { at, handle });
  }

  /** Forget a key's backoff and timer (its object is gone). */
  forget(key: string): void {
    this.failures.delete(key);
    this.timers.get(key)?.handle.cancel();
    this.timers.delete(key);
  }

  get length(): number {
    return this.waiting.size;
  }

  /** Resolves once nothing is waiting or running (tests). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Drop every waiting key and timer; running reconciles finish (their writes are gated elsewhere). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.waiting.clear();
    this.order.length = 0;
    this.dirty.clear();
    for (const t of this.timers.values()) t.handle.cancel();
    this.timers.clear();
    this.failures.clear();
    await this.idle();
  }

  private pump(): void {
    const workers = this.opts.workers ?? 4;
    while (!this.stopped && this.running.size < workers && this.order.length > 0) {
      const key = this.order.shift()!;
      this.waiting.delete(key);
      this.run(key);
    }
  }

  private run(key: string): void {
    this.running.add(key);
    const work = (async () => {
      try {
        const result = await this.opts.reconcile(key);
        this.failures.delete(key);
        if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        if (this.stopped) return;
        let backoff = this.failures.get(key);
        if (!backoff) {
          backoff = new Backoff({
            initialMs: this.opts.backoffInitialMs ?? 200,
            maxMs: this.opts.backoffMaxMs ?? 30_000,
          });
          this.failures.set(key, backoff);
        }
        const wait = backoff.next();
        this.opts.onError?.();
        this.opts.logger?.warn(
          { event: 'reconcile-error', queue: this.opts.name, key, retryInMs: wait },
          (err as Error).message,
        );
        this.addAfter(key, wait);
      }
    })().finally(() => {
      this.running.delete(key);
      this.inFlight.delete(work);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    });
    this.inFlight.add(work);
  }
}
