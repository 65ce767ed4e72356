// The knock matcher over many policies: each packet goes to the doors whose sequences use its port,
// and may advance (or complete) several of them at once. Pure and synchronous; time comes from the
// packet (its capture time) and from the injected Clock for dropping expired attempts.
//
//   const m = createKnockMatcher(policies, { clock });
//   for (const decision of m.match(packet)) ...   // AccessDecision per completed sequence
//
// Bounded state: each door tracks at most maxTrackedSources sources (default
// DEFAULTS.maxTrackedSources), so the whole matcher holds at most that many per knock policy.

import type { Clock } from '../../api/clock.js';
import { DEFAULTS } from '../../api/limits.js';
import type { KnockPolicy } from '../../api/types.js';
import type { AccessDecision, InboundPacket } from '../decision.js';
import { portKey } from '../frames/port-key.js';
import { KnockDoor } from './door.js';
import { compileKnock } from './spec.js';

export interface KnockMatcherOptions {
  clock: Clock;
  maxTrackedSources?: number;
}

export interface KnockMatcher {
  /** The grants this packet completes (usually none). */
  match(packet: InboundPacket): AccessDecision[];
  /** Sources with an attempt in progress, summed over the doors. */
  tracked(): number;
  /** Cancel timers and forget all attempts. */
  dispose(): void;
}

/** Create a door for one policy; throws KnockSpecError (one line) when the policy is not usable. */
export function createKnockDoor(policy: KnockPolicy, opts: KnockMatcherOptions): KnockDoor {
  return new KnockDoor(
    compileKnock(policy),
    opts.clock,
    opts.maxTrackedSources ?? DEFAULTS.maxTrackedSources,
  );
}

/** Throws KnockSpecError (one line naming the policy) when a policy is not usable. */
export function createKnockMatcher(
  policies: readonly KnockPolicy[],
  opts: KnockMatcherOptions,
): KnockMatcher {
  const doors = policies.map((p) => createKnockDoor(p, opts));
  const byPort = new Map<number, KnockDoor[]>();
  for (const door of doors) {
    for (const key of door.spec.portKeys) {
      const list = byPort.get(key) ?? [];
      list.push(door);
      byPort.set(key, list);
    }
  }
  return {
    match(packet) {
      const key = portKey(packet.proto, packet.dstPort);
      const candidates = byPort.get(key);
      if (!candidates) return [];
      const decisions: AccessDecision[] = [];
      for (const door of candidates) {
        const d = door.feed(packet, key);
        if (d) decisions.push(d);
      }
      return decisions;
    },
    tracked: () => doors.reduce((n, d) => n + d.tracked, 0),
    dispose: () => doors.forEach((d) => d.dispose()),
  };
}
