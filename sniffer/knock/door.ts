// One knock policy's state machine (knockd's "door"), tracking each source address separately.
//
// Per source, an attempt records when its first knock arrived, the knocks made so far and the last
// one. For a packet on one of the door's ports:
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
// The sequences are compiled into a trie of port keys (several branches only for oneTimeSequences
// that share a prefix): an attempt's knocks so far are one trie node, whose depth is the number of
// knocks made, and which says which sequence (the first listed) is complete there.
//
// State is bounded: at most maxTrackedSources attempts; when full, the oldest attempt is evicted.
// Every attempt has the same timeout, so start order is expiry order: attempts live in a ring of
// slots in the order they started (typed arrays: source address, start time, trie node, last
// knock), with an index from the source address to its slot (source-index.ts, typed arrays too). One
// clock timer, armed for the oldest attempt's expiry, drops expired attempts from the front. A flood
// of spoofed first knocks thus allocates nothing per packet: no object for the garbage collector,
// and no address text until a sequence completes.
//
// Slots of ended attempts (completed, reset, expired by a late packet) stay in the ring until they
// reach the front; the ring has room for twice maxTrackedSources slots, so when it is full at least
// half are dead and compacting it costs O(1) per attempt, amortized.

import type { Clock, TimerHandle } from '../../api/clock.js';
import type { AccessDecision, InboundPacket } from '../decision.js';
import { formatIpv4, formatIpv6 } from '../frames/address.js';
import { IPPROTO_TCP, type DecodedFrame } from '../frames/frame.js';
import { oneTimeClaim } from './claim.js';
import { tcpFlagsMatch } from './flags.js';
import { SourceIndex } from './source-index.js';
import type { CompiledKnock } from './spec.js';

/** Slots the ring starts with; it doubles up to twice maxTrackedSources as attempts come. */
const INITIAL_SLOTS = 1024;
const ROOT = 0;

/** The sequences as a trie of port keys. */
class SequenceTrie {
  /** Per node: its children by port key (undefined for a leaf). */
  private readonly children: (Map<number, number> | undefined)[] = [undefined];
  /** Per node: the index of the first sequence complete at it, or -1. */
  readonly complete: number[] = [-1];

  constructor(sequences: readonly (readonly number[])[]) {
    sequences.forEach((seq, index) => {
      let node = ROOT;
      for (const key of seq) {
        const map = (this.children[node] ??= new Map());
        let next = map.get(key);
        if (next === undefined) {
          next = this.complete.length;
          this.complete.push(-1);
          this.children.push(undefined);
          map.set(key, next);
        }
        node = next;
      }
      if (this.complete[node] === -1) this.complete[node] = index;
    });
  }

  /** The node after knocking `key` at `node`, or -1. */
  next(node: number, key: number): number {
    return this.children[node]?.get(key) ?? -1;
  }
}

export class KnockDoor {
  private readonly trie: SequenceTrie;
  /** Source address → slot of its attempt. */
  private readonly index = new SourceIndex();
  private slots = 0;
  private readonly maxSlots: number;
  private readonly maxTracked: number;
  /**
   * Per slot: the source address (4 words, as SourceIndex keys it) and family (0: the slot is
   * dead), first knock time, trie node, last knock.
   */
  private addrs = new Uint32Array(0);
  private fams = new Uint8Array(0);
  private starts = new Float64Array(0);
  private nodes = new Int32Array(0);
  private lasts = new Int32Array(0);
  /** The ring: `used` slots from `head` on (wrapping), oldest first; `live` of them are attempts. */
  private head = 0;
  private used = 0;
  private live = 0;
  private sweepTimer: TimerHandle | undefined;

  constructor(
    readonly spec: CompiledKnock,
    private readonly clock: Clock,
    maxTrackedSources: number,
  ) {
    this.trie = new SequenceTrie(spec.sequences);
    // At least the newest attempt is always tracked, as before (a bound of 0 would track nothing).
    this.maxTracked = Math.max(1, maxTrackedSources);
    this.maxSlots = 2 * this.maxTracked;
  }

  /** Sources with an attempt in progress. */
  get tracked(): number {
    return this.live;
  }

  /** Feed one packet whose port key is `key`. Returns a grant when it completes a sequence. */
  feed(p: InboundPacket, key: number): AccessDecision | undefined {
    if (!this.spec.portKeys.has(key)) return undefined;
    if (p.proto === 'tcp' && !tcpFlagsMatch(p.tcpFlags, this.spec.flags)) return undefined;
    // Not an address (only a hand-made packet can say so): no source to track, nothing to grant.
    if (!this.index.setProbeFromText(p.src, p.family)) return undefined;
    const done = this.step(key, p.at);
    return done < 0 ? undefined : this.decision(`${p.src}/${p.family === 4 ? 32 : 128}`, done, p.at);
  }

  /**
   * The same for a decoded frame (sniffer/frames), without building an InboundPacket: the source's
   * text is made only when the packet completes a sequence.
   */
  feedFrame(f: DecodedFrame, key: number, at: number): AccessDecision | undefined {
    if (!this.spec.portKeys.has(key)) return undefined;
    if (f.ipProto === IPPROTO_TCP && !tcpFlagsMatch(f.tcpFlags, this.spec.flags)) return undefined;
    this.index.setProbeFromFrame(f);
    const done = this.step(key, at);
    if (done < 0) return undefined;
    const source =
      f.family === 4 ? `${formatIpv4(f.buf, f.srcOffset)}/32` : `${formatIpv6(f.buf, f.srcOffset)}/128`;
    return this.decision(source, done, at);
  }

  /** Cancel the expiry timer and forget every attempt (the door is being replaced or removed). */
  dispose(): void {
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    this.index.clear();
    this.addrs = new Uint32Array(0);
    this.fams = new Uint8Array(0);
    this.starts = new Float64Array(0);
    this.nodes = new Int32Array(0);
    this.lasts = new Int32Array(0);
    this.slots = this.head = this.used = this.live = 0;
  }

  /**
   * Apply one knock from the source loaded in the index's probe; returns the index of the sequence
   * it completes, or -1.
   */
  private step(key: number, at: number): number {
    let slot = this.index.get();
    if (slot >= 0 && at - this.starts[slot]! >= this.spec.timeoutMs) {
      this.end(slot);
      slot = -1;
    }
    if (slot >= 0) {
      const next = this.trie.next(this.nodes[slot]!, key);
      if (next >= 0) {
        this.nodes[slot] = next;
        this.lasts[slot] = key;
        const done = this.trie.complete[next]!;
        if (done >= 0) this.end(slot);
        return done;
      }
      if (key === this.lasts[slot]) return -1;
      this.end(slot);
    }
    const first = this.trie.next(ROOT, key);
    if (first < 0) return -1;
    const done = this.trie.complete[first]!;
    // A one-knock sequence completes at once: nothing to track.
    if (done < 0) this.track(first, key, at);
    return done;
  }

  private decision(source: string, done: number, at: number): AccessDecision {
    const decision: AccessDecision = {
      kind: 'grant',
      policy: this.spec.policy,
      method: 'knock',
      source,
      ports: [...this.spec.grantPorts],
      durationSeconds: this.spec.durationSeconds,
    };
    if (this.spec.oneTime)
      decision.claim = oneTimeClaim(this.spec.policy, this.spec.sequenceTexts[done]!, at);
    return decision;
  }

  /** End the attempt in `slot`: its slot stays, dead, until it reaches the front. */
  private end(slot: number): void {
    this.index.deleteKey(this.addrs, slot * 4, this.fams[slot]!);
    this.fams[slot] = 0;
    this.live--;
    this.dropDeadFront();
  }

  private dropDeadFront(): void {
    while (this.used > 0 && this.fams[this.head] === 0) {
      this.head = this.head + 1 === this.slots ? 0 : this.head + 1;
      this.used--;
    }
    if (this.used === 0) this.head = 0;
  }

  /** A new attempt for the source in the index's probe. */
  private track(node: number, key: number, at: number): void {
    if (this.live >= this.maxTracked) this.end(this.head); // the front is live: dead ones are dropped
    if (this.used === this.slots) this.makeRoom();
    const slot = (this.head + this.used) % this.slots;
    this.addrs.set(this.index.probe, slot * 4);
    this.fams[slot] = this.index.probeFamily;
    this.starts[slot] = at;
    this.nodes[slot] = node;
    this.lasts[slot] = key;
    this.used++;
    this.live++;
    this.index.set(slot);
    if (!this.sweepTimer) this.armSweep();
  }

  /** The ring is full: grow it (up to maxSlots), else compact it (then at least half is free). */
  private makeRoom(): void {
    const size =
      this.slots < this.maxSlots
        ? Math.min(this.maxSlots, Math.max(INITIAL_SLOTS, this.slots * 2))
        : this.slots;
    const addrs = new Uint32Array(size * 4);
    const fams = new Uint8Array(size);
    const starts = new Float64Array(size);
    const nodes = new Int32Array(size);
    const lasts = new Int32Array(size);
    let n = 0;
    for (let i = 0; i < this.used; i++) {
      const from = (this.head + i) % this.slots;
      const fam = this.fams[from]!;
      if (fam === 0) continue;
      addrs.set(this.addrs.subarray(from * 4, from * 4 + 4), n * 4);
      fams[n] = fam;
      starts[n] = this.starts[from]!;
      nodes[n] = this.nodes[from]!;
      lasts[n] = this.lasts[from]!;
      this.index.setKey(addrs, n * 4, fam, n);
      n++;
    }
    this.addrs = addrs;
    this.fams = fams;
    this.starts = starts;
    this.nodes = nodes;
    this.lasts = lasts;
    this.slots = size;
    this.head = 0;
    this.used = n;
  }

  /** Arm the timer for the oldest attempt's expiry (none when there is no attempt). */
  private armSweep(): void {
    if (this.live === 0) {
      this.sweepTimer = undefined;
      return;
    }
    const due = this.starts[this.head]! + this.spec.timeoutMs - this.clock.now();
    this.sweepTimer = this.clock.setTimeout(() => this.sweep(), Math.max(0, due));
  }

  private sweep(): void {
    const now = this.clock.now();
    while (this.live > 0 && now - this.starts[this.head]! >= this.spec.timeoutMs) this.end(this.head);
    this.armSweep();
  }
}
