// The sniffer's caps on what a flood of knocks or packets can cost: live grants per policy and
// grant writes per second (a token bucket).
//
// Live grants are counted from what this sniffer wrote (name → expiresAt, per policy), so the count
// needs no list or watch of AccessGrants (the sniffer's RBAC has neither) and is bounded by the cap
// itself. A grant that the controller ends early still counts until its expiresAt: the cap errs on
// the side of opening less. A write in flight holds its slot (reserve), so concurrent decisions
// cannot overshoot; release() gives back a slot whose write failed.

import type { Clock } from '../../api/clock.js';
import { TokenBucket } from './token-bucket.js';

export interface CapsOptions {
  clock: Clock;
  maxLiveGrantsPerPolicy: number;
  grantsPerSecond: number;
  grantsBurst: number;
}

export type CapRefusal = 'max-grants-per-policy' | 'rate-limited';

export class GrantCaps {
  /** policy → grant name → expiresAt (ms); Infinity while the write is in flight. */
  private readonly live = new Map<string, Map<string, number>>();
  private readonly bucket: TokenBucket;

  constructor(private readonly opts: CapsOptions) {
    this.bucket = new TokenBucket(opts.clock, opts.grantsPerSecond, opts.grantsBurst);
  }

  /**
   * Take a write token and, for a grant not already live, a slot of its policy. Returns the cap
   * that refuses it, or undefined when the write may go ahead (then commit() or release() it).
   */
  reserve(policy: string, grant: string): CapRefusal | undefined {
    const grants = this.grantsOf(policy);
    const known = grants.has(grant);
    if (!known && grants.size >= this.opts.maxLiveGrantsPerPolicy) return 'max-grants-per-policy';
    if (!this.bucket.take()) return 'rate-limited';
    if (!known) grants.set(grant, Infinity);
    return undefined;
  }

  /** The write succeeded: the grant holds its slot until `expiresAt`. */
  commit(policy: string, grant: string, expiresAt: number): void {
    this.grantsOf(policy).set(grant, expiresAt);
  }

  /** The write failed: a slot taken by reserve() for a new grant is given back. */
  release(policy: string, grant: string): void {
    const grants = this.live.get(policy);
    if (grants?.get(grant) === Infinity) grants.delete(grant);
    if (grants?.size === 0) this.live.delete(policy);
  }

  /** Does `policy` hold `grant` (live, or its write in flight) through this sniffer? */
  holds(policy: string, grant: string): boolean {
    return this.grantsOf(policy).has(grant);
  }

  /** Live grants counted for `policy` now. */
  liveCount(policy: string): number {
    return this.grantsOf(policy).size;
  }

  /** Forget a policy that is gone (its grants are revoked with it). */
  forgetPolicy(policy: string): void {
    this.live.delete(policy);
  }

  private grantsOf(policy: string): Map<string, number> {
    let grants = this.live.get(policy);
    if (!grants) {
      grants = new Map();
      this.live.set(policy, grants);
    }
    const now = this.opts.clock.now();
    for (const [name, end] of grants) if (end <= now) grants.delete(name);
    return grants;
  }
}
