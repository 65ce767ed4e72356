// Exponential backoff with jitter on the injectable clock: how the informer spaces out list/watch
// attempts while the API server fails, and how single requests are retried.

import type { Clock } from '../../api/clock.js';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Fraction of each delay added at random (0.2 = up to 20 % longer), so clients do not retry in step. */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private failures = 0;

  constructor(private readonly opts: BackoffOptions) {}

  /** The delay before the next attempt (grows with every call until reset()). */
  next(): number {
    const base = Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    const jitter = (this.opts.jitter ?? 0.2) * (this.opts.random ?? Math.random)();
    return Math.min(this.opts.maxMs, Math.round(base * (1 + jitter)));
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}

/** Resolve after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
