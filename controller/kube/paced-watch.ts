// client-node's Watch as ListWatch uses it, with two guards ListWatch lacks:
// - pacing: ListWatch reconnects at once after a watch that ends without an error. When watches end
//   that way shortly after opening (a server or proxy that keeps closing them), the next one waits
//   with exponential backoff instead of reconnecting in a tight loop.
// - no zombies: a watch about to be opened for a ListWatch that was superseded or stopped meanwhile
//   is not opened at all (ListWatch would otherwise keep it open after stop()).

import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../../api/clock.js';
import { Backoff, sleep } from './backoff.js';

export interface PacedWatchOptions {
  clock: Clock;
  backoff: Backoff;
  /** A watch that ends cleanly sooner than this after opening counts as a quick end. */
  minLifetimeMs: number;
  /** False once the ListWatch using this Watch is superseded or stopped. */
  isCurrent: () => boolean;
}

export class PacedWatch extends Watch {
  private quickEnds = 0;

  constructor(
    kubeConfig: KubeConfig,
    private readonly opts: PacedWatchOptions,
  ) {
    super(kubeConfig);
  }

  override async watch(
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
    return super.watch(path, queryParams, callback, (err: unknown) => {
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
}
