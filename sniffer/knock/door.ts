// One knock policy's state machine (knockd's "door"), tracking each source address separately.
//
// Per source, an attempt records when its first knock arrived, how many knocks it has made and the
// sequences still possible (several only for oneTimeSequences that share a prefix). For a packet
// on one of the door's ports:
//   - TCP with flags that do not match tcpFlags: ignored entirely (knockd flags_match()).
//   - The attempt is older than sequenceTimeoutSeconds (counted from its first knock): dropped first.
//   - The next expected knock: the attempt advances; the last knock of a sequence emits a grant and
//     ends the attempt.
//   - The same knock as the one just made (a retransmitted SYN, a --repeat): ignored.
//   - Any other knock: the attempt is reset, and when that knock is the first of a sequence a new
//     attempt starts with it (knockd would only reset; a client retrying after a mistake then needs
//     one knock less to recover).
//   - No attempt and the first knock of a sequence: a new attempt.
//
// State is bounded: at most maxTrackedSources attempts; when full, the oldest attempt is evicted.
// Attempts live in a Map in the order they started, so the oldest is the first key, and since every
// attempt has the same timeout that order is also expiry order: one clock timer, armed for the first
// attempt's expiry, drops expired attempts from the front.

import type { Clock, TimerHandle } from '../../api/clock.js';
import type { AccessDecision, InboundPacket } from '../decision.js';
import { oneTimeClaim } from './claim.js';
import { tcpFlagsMatch } from './flags.js';
import type { CompiledKnock } from './spec.js';

interface Attempt {
  start: number;
  /** Knocks made so far, i.e. the index of the next expected knock. */
  stage: number;
  /** Indexes into spec.sequences still consistent with the knocks made. */
  candidates: number[];
  /** Port key of the last knock made. */
  last: number;
}

export class KnockDoor {
  private readonly attempts = new Map<string, Attempt>();
  /** Port key → sequences that start with it. */
  private readonly firstKnocks = new Map<number, number[]>();
  private sweepTimer: TimerHandle | undefined;

  constructor(
    readonly spec: CompiledKnock,
    private readonly clock: Clock,
    private readonly maxTrackedSources: number,
  ) {
    spec.sequences.forEach((seq, i) => {
      const list = this.firstKnocks.get(seq[0]!) ?? [];
      list.push(i);
      this.firstKnocks.set(seq[0]!, list);
    });
  }

  /** Sources with an attempt in progress. */
  get tracked(): number {
    return this.attempts.size;
  }

  /** Feed one packet whose port key is `key`. Returns a grant when it completes a sequence. */
  feed(p: InboundPacket, key: number): AccessDecision | undefined {
    if (!this.spec.portKeys.has(key)) return undefined;
    if (p.proto === 'tcp' && !tcpFlagsMatch(p.tcpFlags, this.spec.flags)) return undefined;
    let attempt = this.attempts.get(p.src);
    if (attempt && p.at - attempt.start >= this.spec.timeoutMs) {
      this.attempts.delete(p.src);
      attempt = undefined;
    }
    if (attempt) {
      const stage = attempt.stage;
      const next = attempt.candidates.filter((c) => this.spec.sequences[c]![stage] === key);
      if (next.length > 0) {
        attempt.candidates = next;
        attempt.stage++;
        attempt.last = key;
        return this.completion(p, attempt);
      }
      if (key === attempt.last) return undefined;
      this.attempts.delete(p.src);
    }
    const starts = this.firstKnocks.get(key);
    if (!starts) return undefined;
    const fresh: Attempt = { start: p.at, stage: 1, candidates: starts, last: key };
    this.track(p.src, fresh);
    return this.completion(p, fresh);
  }

  /** Cancel the expiry timer and forget every attempt (the door is being replaced or removed). */
  dispose(): void {
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    this.attempts.clear();
  }

  private completion(p: InboundPacket, attempt: Attempt): AccessDecision | undefined {
    const done = attempt.candidates.find((c) => this.spec.sequences[c]!.length === attempt.stage);
    if (done === undefined) return undefined;
    this.attempts.delete(p.src);
    const decision: AccessDecision = {
      kind: 'grant',
      policy: this.spec.policy,
      method: 'knock',
      source: `${p.src}/${p.family === 4 ? 32 : 128}`,
      ports: [...this.spec.grantPorts],
      durationSeconds: this.spec.durationSeconds,
    };
    if (this.spec.oneTime)
      decision.claim = oneTimeClaim(this.spec.policy, this.spec.sequenceTexts[done]!, p.at);
    return decision;
  }

  private track(src: string, attempt: Attempt): void {
    if (this.attempts.size >= this.maxTrackedSources) {
      const oldest = this.attempts.keys().next();
      if (!oldest.done) this.attempts.delete(oldest.value);
    }
    this.attempts.set(src, attempt);
    if (!this.sweepTimer) this.armSweep();
  }

  /** Arm the timer for the oldest attempt's expiry (none when there is no attempt). */
  private armSweep(): void {
    const first = this.attempts.values().next();
    if (first.done) {
      this.sweepTimer = undefined;
      return;
    }
    const due = first.value.start + this.spec.timeoutMs - this.clock.now();
    this.sweepTimer = this.clock.setTimeout(() => this.sweep(), Math.max(0, due));
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [src, attempt] of this.attempts) {
      if (now - attempt.start < this.spec.timeoutMs) break;
      this.attempts.delete(src);
    }
    this.armSweep();
  }
}
