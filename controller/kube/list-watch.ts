// List, then watch from the list's resourceVersion; resume the watch from the last resourceVersion
// seen when it ends cleanly, relist after a 410 Gone. A port of @kubernetes/client-node 1.4's
// ListWatch (cache.ts: the same order of callbacks, the same handling of ERROR events and of a 410
// at the end of a watch) without its object cache, which informer.ts keeps itself, and without
// loading client-node (connection.ts says why).
//
// An error (the list failed, the watch ended with an error other than 410) is reported once and
// this stops: informer.ts schedules the restart with its backoff.

import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';

export type WatchCallback = (phase: string, apiObj: unknown, watchObj?: unknown) => void;

/** What opens one watch (paced-watch.ts): resolves once the server answered, with its abort handle. */
export interface Watcher {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: WatchCallback,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
}

type Verb = 'add' | 'update' | 'delete' | 'error' | 'connect';

export class ListWatch<T extends KubernetesObject = KubernetesObject> {
  private resourceVersion = '';
  private request: AbortController | undefined;
  private stopped = false;
  private readonly callbacks: Record<Verb, ((arg: unknown) => void)[]> = {
    add: [],
    update: [],
    delete: [],
    error: [],
    connect: [],
  };

  constructor(
    private readonly path: string,
    private readonly watcher: Watcher,
    private readonly listFn: () => Promise<KubernetesListObject<T>>,
    private readonly fieldSelector?: string,
  ) {}

  on(verb: 'add' | 'update' | 'delete', cb: (obj: T) => void): void;
  on(verb: 'error', cb: (err: unknown) => void): void;
  on(verb: 'connect', cb: () => void): void;
  on(verb: Verb, cb: (arg: never) => void): void {
    this.callbacks[verb].push(cb as (arg: unknown) => void);
  }

  /** List (unless a resourceVersion is held) and open the watch; resolves once it is open. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.doneHandler(null);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort();
  }

  private emit(verb: Verb, arg?: unknown): void {
    for (const cb of this.callbacks[verb].slice()) cb(arg);
  }

  private abort(): void {
    this.request?.abort();
    this.request = undefined;
  }

  private async doneHandler(err: unknown): Promise<void> {
    this.abort();
    const e = err as { statusCode?: unknown; code?: unknown } | null;
    if (e && (e.statusCode === 410 || e.code === 410)) this.resourceVersion = '';
    else if (err) return this.emit('error', err);
    if (this.stopped) return;
    this.emit('connect');
    if (!this.resourceVersion) {
      let list: KubernetesListObject<T>;
      try {
        list = await this.listFn();
      } catch (listErr) {
        return this.emit('error', listErr);
      }
      this.resourceVersion = list.metadata?.resourceVersion || '';
    }
    this.request = await this.watcher.watch(
      this.path,
      {
        resourceVersion: this.resourceVersion,
        ...(this.fieldSelector !== undefined ? { fieldSelector: this.fieldSelector } : {}),
      },
      (phase, obj) => this.watchHandler(phase, obj as T & { code?: unknown }),
      (doneErr) => void this.doneHandler(doneErr),
    );
  }

  private watchHandler(phase: string, obj: T & { code?: unknown }): void {
    switch (phase) {
      case 'ERROR':
        // The watch ends after an ERROR event; a 410 means its resourceVersion is gone: relist.
        if (obj?.code === 410) this.resourceVersion = '';
        return;
      case 'ADDED':
        this.emit('add', obj);
        break;
      case 'MODIFIED':
        this.emit('update', obj);
        break;
      case 'DELETED':
        this.emit('delete', obj);
        break;
      case 'BOOKMARK':
        break;
    }
    this.resourceVersion = obj?.metadata?.resourceVersion || '';
  }
}
