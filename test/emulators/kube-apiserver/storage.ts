// In-memory object storage with the etcd-like behaviour the API relies on: one global
// resourceVersion counter, an event history for watches that resume from a resourceVersion, and
// compaction (a watch from before the compacted revision gets 410 Gone).

export type KubeObject = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata: Record<string, unknown> & { name: string; namespace?: string; resourceVersion?: string };
};

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEvent {
  rv: number;
  /** When it happened (ms since the epoch, on the server's clock): for the time-based window. */
  at: number;
  /** "group/plural": which collection changed. */
  collection: string;
  type: EventType;
  object: KubeObject;
  /** The object before the change (MODIFIED, DELETED): lets a filtered watch see objects leave it. */
  previous?: KubeObject;
}

export interface Watcher {
  collection: string;
  deliver(event: StoredEvent): void;
}

/** Thrown when a resourceVersion is older than the compacted revision. */
export class TooOldError extends Error {
  constructor(
    readonly requested: number,
    readonly oldest: number,
  ) {
    super(`too old resource version: ${requested} (${oldest})`);
  }
}

const keyOf = (collection: string, namespace: string | undefined, name: string) =>
  `${collection}/${namespace ?? ''}/${name}`;

export class Storage {
  private readonly objects = new Map<string, KubeObject>();
  private history: StoredEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  private revision = 0;
  /** Watches may resume from any resourceVersion >= this one. */
  private compactedRevision = 0;

  /**
   * @param historyLimit events kept for resuming watches; older ones are compacted away.
   * @param window besides the count, events older than `windowMs` on `now()` are compacted away
   *   (the real server keeps a time window of history); 0 = no time limit.
   */
  constructor(
    private readonly historyLimit: number,
    private readonly window: { now: () => number; windowMs: number } = { now: Date.now, windowMs: 0 },
  ) {}

  get currentRevision(): number {
    return this.revision;
  }

  get oldestResumable(): number {
    this.expireByTime();
    return this.compactedRevision;
  }

  get(collection: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.objects.get(keyOf(collection, namespace, name));
    return o && structuredClone(o);
  }

  /** Every object of the collection (optionally in one namespace), sorted by namespace then name. */
  list(collection: string, namespace?: string): KubeObject[] {
    const prefix = namespace === undefined ? `${collection}/` : `${collection}/${namespace}/`;
    return [...this.objects]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => structuredClone(o));
  }

  /** Every object of every collection (for garbage collection). */
  all(): { collection: string; object: KubeObject }[] {
    return [...this.objects].map(([k, o]) => ({
      collection: k.split('/').slice(0, 2).join('/'),
      object: structuredClone(o),
    }));
  }

  /** Store `object` (new or changed) under a new resourceVersion and tell the watchers. */
  put(collection: string, object: KubeObject, type: 'ADDED' | 'MODIFIED'): KubeObject {
    const key = keyOf(collection, object.metadata.namespace, object.metadata.name);
    const previous = this.objects.get(key);
    const stored = structuredClone(object);
    stored.metadata.resourceVersion = String(++this.revision);
    this.objects.set(key, stored);
    this.record({ rv: this.revision, at: this.window.now(), collection, type, object: stored, previous });
    return structuredClone(stored);
  }

  remove(collection: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = keyOf(collection, namespace, name);
    const previous = this.objects.get(key);
    if (!previous) return undefined;
    this.objects.delete(key);
    const gone = structuredClone(previous);
    gone.metadata.resourceVersion = String(++this.revision);
    this.record({
      rv: this.revision,
      at: this.window.now(),
      collection,
      type: 'DELETED',
      object: gone,
      previous,
    });
    return structuredClone(gone);
  }

  /**
   * Events of `collection` after `since`, for a watch that resumes. Throws TooOldError when some of
   * them were compacted away.
   */
  eventsSince(collection: string, since: number): StoredEvent[] {
    this.expireByTime();
    if (since < this.compactedRevision) throw new TooOldError(since, this.compactedRevision);
    return this.history.filter((e) => e.rv > since && e.collection === collection);
  }

  addWatcher(w: Watcher): () => void {
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  /** Forget the whole history: every watch must resume from now on (or relist). */
  compact(): void {
    this.history = [];
    this.compactedRevision = this.revision;
  }

  /** Drop the events older than the time window (the revision before the first kept one stays resumable). */
  private expireByTime(): void {
    if (this.window.windowMs <= 0) return;
    const oldest = this.window.now() - this.window.windowMs;
    let n = 0;
    while (n < this.history.length && this.history[n].at < oldest) n++;
    if (n === 0) return;
    this.compactedRevision = this.history[n - 1].rv;
    this.history.splice(0, n);
  }

  private record(event: StoredEvent): void {
    this.history.push(event);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedRevision = dropped[dropped.length - 1].rv;
    }
    this.expireByTime();
    for (const w of this.watchers) if (w.collection === event.collection) w.deliver(event);
  }
}
