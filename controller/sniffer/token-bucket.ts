// A token bucket on the injectable clock: `ratePerSecond` tokens flow in, at most `burst` are held.
// take() spends one token when there is one; the caller refuses what it cannot pay for.

import type { Clock } from '../../api/clock.js';

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly clock: Clock,
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1))
      throw new RangeError(`token bucket: rate ${ratePerSecond}/s and burst ${burst} must be positive`);
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Spend one token if there is one. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Tokens available now (for tests and metrics). */
  available(): number {
    this.refill();
    return Math.floor(this.tokens);
  }

  private refill(): void {
    const now = this.clock.now();
    // A clock that steps back adds nothing (and does not go negative).
    const elapsed = Math.max(0, now - this.last);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.ratePerSecond);
    this.last = now;
  }
}
