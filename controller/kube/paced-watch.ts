// A watch (the request client-node's Watch sends) for list-watch.ts, with three guards client-node's
// ListWatch lacks:
// - pacing: ListWatch reconnects at once after a watch that ends without an error. When watches end
//   that way shortly after opening (a server or proxy that keeps closing them), the next one waits
//   with exponential backoff instead of reconnecting in a tight loop.
// - no zombies: a watch about to be opened for a ListWatch that was superseded or stopped meanwhile
//   is not opened at all (ListWatch would otherwise keep it open after stop()).
// - no silent watch: bookmarks are requested (allowWatchBookmarks; a real server sends one about
//   every minute, the emulator every bookmarkIntervalMs), and a watch that receives nothing at all
//   for idleTimeoutMs — no answer to the request, no event, no bookmark: a half-open connection, a
//   proxy that stopped forwarding — is aborted and ended without an error, so ListWatch reopens it
//   from its resourceVersion at once.
//
// The request is the one client-node's Watch.watch sends (same URL, agent for TLS and proxies, auth
// headers, keep-alive), made here on connection.ts's endpoint so that the idle timer can also
// cancel a request that never got its headers, and so that the sniffer never loads client-node.

import { request as httpRequest, STATUS_CODES, type Agent } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import type { Clock, TimerHandle } from '../../api/clock.js';
import { Backoff, sleep } from './backoff.js';
import { endpointOf, KubeConnection, urlOf, type KubeTarget } from './connection.js';
import type { Watcher } from './list-watch.js';

export interface PacedWatchOptions {
  clock: Clock;
  backoff: Backoff;
  /** A watch that ends cleanly sooner than this after opening counts as a quick end. */
  minLifetimeMs: number;
  /** False once the ListWatch using this Watch is superseded or stopped. */
  isCurrent: () => boolean;
  /** Nothing received for this long (0 = never): the watch is ended and reopened. */
  idleTimeoutMs?: number;
  /** Told when a silent watch is ended (for a log line and a count). */
  onIdle?: (idleMs: number) => void;
}

type Done = (err: unknown) => void;

export class PacedWatch implements Watcher {
  private quickEnds = 0;

  constructor(
    private readonly kubeConfig: KubeTarget,
    private readonly opts: PacedWatchOptions,
  ) {}

  async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (this.quickEnds > 0) await sleep(this.opts.clock, this.opts.backoff.next());
    if (!this.opts.isCurrent()) {
      // Ending without an error makes ListWatch check its stopped flag and stay stopped.
      const idle = new AbortController();
      idle.abort();
      queueMicrotask(() => done(null));
      return idle;
    }
    const opened = this.opts.clock.now();
    return this.open(path, { ...queryParams, allowWatchBookmarks: true }, callback, (err: unknown) => {
      if (!err) {
        if (this.opts.clock.now() - opened < this.opts.minLifetimeMs) this.quickEnds++;
        else {
          this.quickEnds = 0;
          this.opts.backoff.reset();
        }
      }
      done(err);
    });
  }

  /** Watch.watch with an idle deadline on the injected clock, which also covers the wait for an answer. */
  private async open(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: Done,
  ): Promise<AbortController> {
    const endpoint = await endpointOf(this.kubeConfig);
    const url = urlOf(endpoint.server, path, { watch: true, ...queryParams });
    const headers = endpoint.headers;
    const controller = new AbortController();
    const idleMs = this.opts.idleTimeoutMs ?? 0;
    let ended = false;
    let idleTimer: TimerHandle | undefined;
    // Like Watch.watch, return once the server answered (or the request failed): ListWatch takes
    // a resolved start() for "the API server is back".
    let answered!: () => void;
    const answer = new Promise<void>((resolve) => (answered = resolve));
    const finish = (err: unknown) => {
      if (ended) return;
      ended = true;
      idleTimer?.cancel();
      controller.abort();
      answered();
      done(err);
    };
    const alive = () => {
      if (idleMs <= 0 || ended) return;
      idleTimer?.cancel();
      idleTimer = this.opts.clock.setTimeout(() => {
        if (ended) return;
        this.opts.onIdle?.(idleMs);
        finish(null); // a clean end: ListWatch resumes from its resourceVersion
      }, idleMs);
    };
    alive();
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'GET',
      headers,
      agent: endpoint.agent as Agent | undefined,
      signal: controller.signal,
    });
    req.on('error', (err) => finish(err));
    req.on('socket', (socket) => socket.setKeepAlive(true, 30_000));
    req.on('response', (res) => {
      answered();
      // A response torn down mid-body (abort, reset) emits 'aborted' errors: they end the watch.
      res.on('error', finish);
      if (ended) return void res.resume();
      if (res.statusCode !== 200) {
        const status = res.statusCode ?? 500;
        if (status === 401 && this.kubeConfig instanceof KubeConnection) this.kubeConfig.unauthorized();
        const error = new Error(res.statusMessage || STATUS_CODES[status] || 'Internal Server Error');
        (error as Error & { statusCode: number }).statusCode = status;
        res.resume();
        return finish(error);
      }
      alive();
      res.on('close', () => finish(null));
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      lines.on('error', finish); // readline re-emits the response's errors
      lines.on('close', () => finish(null));
      lines.on('line', (line: string) => {
        if (ended) return;
        alive();
        let data: { type: string; object: unknown };
        try {
          data = JSON.parse(line) as { type: string; object: unknown };
        } catch {
          return; // not a JSON line: nothing to deliver
        }
        callback(data.type, data.object, data);
      });
    });
    req.end();
    await answer;
    return controller;
  }
}
