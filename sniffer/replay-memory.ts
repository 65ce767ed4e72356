// An in-memory ReplayStore: used SPA packets (and one-time knock sequences) for one process.
// Bounded: claims are dropped after their expiresAt (by the injected clock); when the store is full
// of live claims it refuses to answer (throws), and the caller refuses the packet. Evicting a live
// claim instead would make its packet usable again.

import type { Clock } from '../api/clock.js';
import type { ClaimResult, ReplayStore } from '../api/store.js';

export const DEFAULT_MAX_REPLAY_CLAIMS = 100_000;

/** Expired claims are swept every this many claims, so memory follows the live claims. */
const SWEEP_EVERY = 1024;

export class ReplayStoreFullError extends Error {}

export class MemoryReplayStore implements ReplayStore {
  /** digest → expiresAt (ms since the epoch). */
  private readonly claims = new Map<string, number>();
  private claimsSinceSweep = 0;

  constructor(
    private readonly clock: Clock,
    private readonly maxClaims = DEFAULT_MAX_REPLAY_CLAIMS,
  ) {}

  async claim(digest: string, expiresAt: Date): Promise<ClaimResult> {
    return this.claimSync(digest, expiresAt);
  }

  /** The same as claim(), for callers that are not async. */
  claimSync(digest: string, expiresAt: Date): ClaimResult {
    const now = this.clock.now();
    if (++this.claimsSinceSweep >= SWEEP_EVERY) this.sweep();
    const existing = this.claims.get(digest);
    if (existing !== undefined && existing > now) return 'replay';
    if (existing === undefined && this.claims.size >= this.maxClaims) {
      this.sweep();
      if (this.claims.size >= this.maxClaims)
        throw new ReplayStoreFullError(`replay store full (${this.maxClaims} live claims)`);
    }
    this.claims.set(digest, expiresAt.getTime());
    return 'claimed';
  }

  /** Drop every claim whose expiresAt has passed. */
  sweep(): void {
    this.claimsSinceSweep = 0;
    const now = this.clock.now();
    for (const [digest, expiresAt] of this.claims) if (expiresAt <= now) this.claims.delete(digest);
  }

  get size(): number {
    return this.claims.size;
  }
}
