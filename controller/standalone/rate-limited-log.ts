// A token bucket for log lines on paths an attacker can drive (refused packets): at most `perSecond`
// lines pass; the rest are only counted (metrics count every one), and the next line that passes
// says how many were suppressed.

import type { Clock } from '../../api/clock.js';

export class RateLimitedLog {
  private tokens: number;
  private last: number;
  /** Lines suppressed since the last one that passed. */
  suppressed = 0;

  constructor(
    private readonly clock: Clock,
    private readonly perSecond: number,
  ) {
    this.tokens = perSecond;
    this.last = clock.now();
  }

  /** True when a line may be logged now. */
  allow(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.suppressed++;
    return false;
  }

  /** The suppressed count to report with the line that passed, reset to 0. */
  takeSuppressed(): number {
    const n = this.suppressed;
    this.suppressed = 0;
    return n;
  }
}
