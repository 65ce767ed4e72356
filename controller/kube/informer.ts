// A cache of one cluster-scoped collection, kept current by a ListWatch (list-watch.ts, a port of
// @kubernetes/client-node's, what makeInformer builds): list, then watch from the list's resourceVersion; a 410 Gone (the server compacted
// past it) makes ListWatch relist.
//
// What this wrapper adds, because ListWatch alone leaves it to the caller:
// - restarts: ListWatch stops for good on an error (refused connection, 429, 500, a failed list).
//   Every error schedules a restart after an exponential backoff (or the server's Retry-After), on
//   the injectable clock; the backoff resets once a start gets through.
// - resync: every resyncIntervalMs a fresh ListWatch relists from scratch and the old one is stopped,
//   so a watch that silently stopped delivering (a half-open connection) cannot go stale forever.
// - one cache of its own, fed by every list and every watch event, that turns them into events
//   without loss or duplicates: a relist is diffed against the cache (objects gone → DELETED,
//   changed → MODIFIED, new → ADDED), and an object whose resourceVersion is the one cached (or an
//   older one) is not delivered again. Events from a superseded ListWatch are ignored.
// - waiting: for the first list (get/list before it fail after a timeout), and for the cache to
//   reach a resourceVersion (so a store's own writes are visible when the write resolves).
//
// - pacing (paced-watch.ts): ListWatch reconnects at once after a watch that ends cleanly; watches
//   that keep ending right after opening are spaced out with backoff, and a watch is never opened
//   for a ListWatch that was superseded or stopped meanwhile.
// - silent watches (paced-watch.ts): bookmarks are requested, and a watch that receives nothing for
//   watchIdleTimeoutMs (a half-open connection, a proxy that stopped forwarding, a server that never
//   answered the watch request) is reopened from its resourceVersion, well before the next resync.
// Lists go through the API clients, whose requests have a deadline (request.ts).

import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { KubeTarget } from './connection.js';
import { ListWatch } from './list-watch.js';
import type { Clock, TimerHandle } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { WatchEventType } from '../../api/store.js';
import { Backoff } from './backoff.js';
import { KubeApiError, toKubeApiError } from './errors.js';
import { KUBE_STORE_DEFAULTS } from './limits.js';
import { PacedWatch } from './paced-watch.js';

/** What the cache needs of an object (cluster-scoped: the name is the key). */
export interface CachedObject {
  metadata: { name: string; uid?: string; resourceVersion?: string };
}

export interface InformerEvent<T> {
  type: WatchEventType;
  object: T;
}

export interface KubeInformerOptions<T extends CachedObject> {
  kubeConfig: KubeTarget;
  /** The collection's URL path, e.g. /apis/knockgate.io/v1alpha1/accessgrants. */
  path: string;
  /** One list request (no retries: the informer's backoff spaces them out). */
  list: () => Promise<KubernetesListObject<T>>;
  /** For messages: "accessgrants". */
  resource: string;
  clock: Clock;
  logger?: Logger;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** 0 = never relist on a timer. */
  resyncIntervalMs?: number;
  /** A watch silent for this long (no event, no bookmark) is reopened; 0 = never. */
  watchIdleTimeoutMs?: number;
  /** Only objects matching this field selector (e.g. metadata.name=node-a); the list must apply it too. */
  fieldSelector?: string;
  random?: () => number;
}

type ListWatchLike = ListWatch<KubernetesObject>;

interface Waiter {
  test(): boolean;
  resolve(reached: boolean): void;
  timer: TimerHandle;
}

/** Numeric resourceVersions (etcd revisions) compare as numbers; anything else only for equality. */
function compareVersions(a: string | undefined, b: string | undefined): number | undefined {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export class KubeInformer<T extends CachedObject> {
  private readonly cache = new Map<string, T>();
  private readonly listeners = new Set<(event: InformerEvent<T>) => void>();
  private readonly backoff: Backoff;
  private readonly resyncIntervalMs: number;
  /** Identifies the current ListWatch; callbacks of older ones compare unequal and are ignored. */
  private token: object | undefined;
  private current: ListWatchLike | undefined;
  /** Superseded ListWatches, stopped again at the next resync in case one was mid-start. */
  private retired: ListWatchLike[] = [];
  private retryTimer: TimerHandle | undefined;
  private resyncTimer: TimerHandle | undefined;
  private failedSinceStart = false;
  private started = false;
  private stopped = false;
  private synced = false;
  /** The newest resourceVersion seen in a list or an event (numeric servers only). */
  private seenVersion: string | undefined;
  private waiters: Waiter[] = [];
  private syncWaiters: { resolve(): void; reject(err: Error): void }[] = [];
  /** The last list/watch failure, until a list or watch gets through again (messages, health). */
  lastError: KubeApiError | undefined;
  /** Restarts after an error (for tests and metrics). */
  restarts = 0;
  /** Watches ended because they stayed silent past watchIdleTimeoutMs (for tests and metrics). */
  idleRestarts = 0;

  constructor(private readonly opts: KubeInformerOptions<T>) {
    this.backoff = new Backoff({
      initialMs: opts.backoffInitialMs ?? KUBE_STORE_DEFAULTS.watchBackoffInitialMs,
      maxMs: opts.backoffMaxMs ?? KUBE_STORE_DEFAULTS.watchBackoffMaxMs,
      random: opts.random,
    });
    this.resyncIntervalMs = opts.resyncIntervalMs ?? KUBE_STORE_DEFAULTS.resyncIntervalMs;
  }

  get isSynced(): boolean {
    return this.synced;
  }

  get isStarted(): boolean {
    return this.started && !this.stopped;
  }

  /** Start listing and watching (idempotent). */
  start(): void {
    if (this.started) return;
    if (this.stopped) throw new Error(`${this.opts.resource} informer is stopped`);
    this.started = true;
    this.launch();
    this.armResync();
  }

  /** Stop for good: close the watch, cancel timers, fail whoever still waits. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.token = undefined;
    this.retryTimer?.cancel();
    this.resyncTimer?.cancel();
    const all = [...this.retired, ...(this.current ? [this.current] : [])];
    this.retired = [];
    this.current = undefined;
    await Promise.all(all.map((lw) => lw.stop().catch(() => undefined)));
    for (const w of this.waiters.splice(0)) {
      w.timer.cancel();
      w.resolve(false);
    }
    for (const w of this.syncWaiters.splice(0))
      w.reject(new Error(`${this.opts.resource} informer stopped before its first list`));
  }

  /** Resolve once the first list is in the cache; reject after `timeoutMs` with the last error. */
  waitForSync(timeoutMs: number = KUBE_STORE_DEFAULTS.initialSyncTimeoutMs): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error(`${this.opts.resource} informer is stopped`));
    return new Promise((resolve, reject) => {
      const entry = {
        resolve: () => {
          timer.cancel();
          resolve();
        },
        reject: (err: Error) => {
          timer.cancel();
          reject(err);
        },
      };
      const timer = this.opts.clock.setTimeout(() => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== entry);
        const why = this.lastError ? this.lastError.message : 'no answer yet';
        reject(
          new KubeApiError(
            `list ${this.opts.resource}: no complete list after ${Math.round(timeoutMs / 1000)} s (${why})`,
            this.lastError?.status ?? 0,
            this.lastError?.reason,
            undefined,
          ),
        );
      }, timeoutMs);
      this.syncWaiters.push(entry);
    });
  }

  get(name: string): T | undefined {
    return this.cache.get(name);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /** Listen to changes after the first list (that list itself is state, not change). */
  subscribe(listener: (event: InformerEvent<T>) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /**
   * Resolve true once the cache has seen `resourceVersion` (or a later one) — immediately when the
   * server's versions are not numeric — or false after `timeoutMs`.
   */
  waitForVersion(resourceVersion: string | undefined, timeoutMs: number): Promise<boolean> {
    if (!/^\d+$/.test(resourceVersion ?? '')) return Promise.resolve(true);
    return this.waitUntil(() => (compareVersions(this.seenVersion, resourceVersion) ?? -1) >= 0, timeoutMs);
  }

  /** Resolve true once the cache no longer holds the object `name` with `uid`, or false after `timeoutMs`. */
  waitForGone(name: string, uid: string | undefined, timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => {
      const cached = this.cache.get(name);
      return !cached || cached.metadata.uid !== uid;
    }, timeoutMs);
  }

  // --- list/watch lifecycle ----------------------------------------------------------------------

  private launch(): void {
    const token = {};
    this.token = token;
    // What makeInformer builds, with a PacedWatch in place of the plain Watch. Objects are the
    // API's JSON as is (client-node does not convert custom objects).
    const watch = new PacedWatch(this.opts.kubeConfig, {
      clock: this.opts.clock,
      backoff: new Backoff({
        initialMs: this.opts.backoffInitialMs ?? KUBE_STORE_DEFAULTS.watchBackoffInitialMs,
        maxMs: this.opts.backoffMaxMs ?? KUBE_STORE_DEFAULTS.watchBackoffMaxMs,
        random: this.opts.random,
      }),
      minLifetimeMs: KUBE_STORE_DEFAULTS.watchMinLifetimeMs,
      isCurrent: () => token === this.token,
      idleTimeoutMs: this.opts.watchIdleTimeoutMs ?? KUBE_STORE_DEFAULTS.watchIdleTimeoutMs,
      onIdle: (idleMs) => {
        if (token !== this.token) return;
        this.idleRestarts++;
        this.opts.logger?.warn(
          { event: 'kube-watch-idle', resource: this.opts.resource, idleMs },
          `watch ${this.opts.resource}: nothing received for ${Math.round(idleMs / 1000)} s (no event, no bookmark): reopening it`,
        );
      },
    });
    const lw: ListWatchLike = new ListWatch<KubernetesObject>(
      this.opts.path,
      watch,
      () => this.listFor(token) as Promise<KubernetesListObject<KubernetesObject>>,
      this.opts.fieldSelector,
    );
    lw.on('add', (o) => this.onWatchEvent(token, 'ADDED', o as T));
    lw.on('update', (o) => this.onWatchEvent(token, 'MODIFIED', o as T));
    lw.on('delete', (o) => this.onWatchEvent(token, 'DELETED', o as T));
    lw.on('error', (err) => this.onError(token, err));
    // A superseded ListWatch that restarts itself (its watch ended normally) is stopped again.
    lw.on('connect', () => {
      if (token !== this.token) void lw.stop().catch(() => undefined);
    });
    this.current = lw;
    this.run(token, lw);
  }

  private run(token: object, lw: ListWatchLike): void {
    this.failedSinceStart = false;
    lw.start().then(
      () => {
        // The list (if needed) answered and the watch is open: the API server is back.
        if (token === this.token && !this.failedSinceStart) {
          this.backoff.reset();
          this.lastError = undefined;
        }
      },
      (err: unknown) => this.onError(token, err),
    );
  }

  private async listFor(token: object): Promise<KubernetesListObject<T>> {
    if (token !== this.token) throw new Error('superseded list');
    const list = await this.opts.list();
    // A list that answers after this ListWatch was replaced must not overwrite newer state.
    if (token !== this.token) throw new Error('superseded list');
    this.replaceAll(list.items ?? [], list.metadata?.resourceVersion);
    return list;
  }

  private onError(token: object, raw: unknown): void {
    if (token !== this.token || this.stopped) return;
    this.failedSinceStart = true;
    const err = toKubeApiError(`list/watch ${this.opts.resource}`, raw);
    this.lastError = err;
    if (this.retryTimer) return;
    const wait = err.retryAfterMs ?? this.backoff.next();
    this.opts.logger?.warn(
      { event: 'kube-watch-error', resource: this.opts.resource, status: err.status, retryInMs: wait },
      err.message,
    );
    this.retryTimer = this.opts.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (token !== this.token || this.stopped || !this.current) return;
      this.restarts++;
      this.run(token, this.current);
    }, wait);
  }

  private armResync(): void {
    if (this.resyncIntervalMs <= 0) return;
    this.resyncTimer = this.opts.clock.setTimeout(() => {
      this.resync();
      this.armResync();
    }, this.resyncIntervalMs);
  }

  /** Relist with a fresh ListWatch; the old one is stopped and its late callbacks ignored. */
  private resync(): void {
    if (this.stopped || this.retryTimer) return; // a retry is pending: it will list or resume anyway
    for (const old of this.retired) void old.stop().catch(() => undefined);
    this.retired = this.current ? [this.current] : [];
    this.token = undefined;
    void this.current?.stop().catch(() => undefined);
    this.launch();
  }

  // --- cache -------------------------------------------------------------------------------------

  private onWatchEvent(token: object, type: WatchEventType, object: T): void {
    if (token !== this.token) return;
    if (type === 'DELETED') this.remove(object);
    else this.upsert(object);
    this.noteVersion(object.metadata?.resourceVersion);
    this.checkWaiters();
  }

  private replaceAll(items: T[], listVersion: string | undefined): void {
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(item.metadata.name);
      this.upsert(item);
    }
    for (const [name, old] of this.cache) if (!seen.has(name)) this.remove(old);
    this.noteVersion(listVersion);
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w.resolve();
    }
    this.backoff.reset();
    this.lastError = undefined;
    this.checkWaiters();
  }

  private upsert(object: T): void {
    const name = object.metadata?.name;
    if (!name) return;
    const old = this.cache.get(name);
    if (old) {
      const cmp = compareVersions(object.metadata.resourceVersion, old.metadata.resourceVersion);
      if (object.metadata.resourceVersion === old.metadata.resourceVersion) return;
      // Same object, older version (a late list): never step back.
      if (cmp !== undefined && cmp < 0 && object.metadata.uid === old.metadata.uid) return;
    }
    this.cache.set(name, object);
    this.emit({ type: old ? 'MODIFIED' : 'ADDED', object });
  }

  private remove(object: T): void {
    const name = object.metadata?.name;
    const old = name === undefined ? undefined : this.cache.get(name);
    if (!old) return;
    // A deletion of an earlier incarnation of this name does not remove the current one.
    if (object.metadata.uid && old.metadata.uid && object.metadata.uid !== old.metadata.uid) return;
    this.cache.delete(name!);
    this.emit({ type: 'DELETED', object });
  }

  private noteVersion(version: string | undefined): void {
    if (!version) return;
    const cmp = compareVersions(version, this.seenVersion);
    if (this.seenVersion === undefined || cmp === undefined || cmp > 0) this.seenVersion = version;
  }

  private emit(event: InformerEvent<T>): void {
    if (!this.synced) return;
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.opts.logger?.error(
          { event: 'watch-handler-error', resource: this.opts.resource, name: event.object.metadata.name },
          (err as Error).message,
        );
      }
    }
  }

  private waitUntil(test: () => boolean, timeoutMs: number): Promise<boolean> {
    if (test()) return Promise.resolve(true);
    if (this.stopped || !this.started) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        test,
        resolve,
        timer: this.opts.clock.setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  private checkWaiters(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.test()) {
        w.timer.cancel();
        w.resolve(true);
      } else still.push(w);
    }
    this.waiters = still;
  }
}
