// The engine: routes each decoded packet to the knock doors and SPA verifiers listening on its
// destination port, and returns what they decided.
//
//   const engine = createEngine({ policies, spaVerifierFor: (p) => createSpaVerifier(p, keys, { clock }), clock });
//   if (decodeFrame(buf, n, link, frame) && engine.wants(portKeyOf(frame.ipProto, frame.dstPort)))
//     engine.handleFrame(frame, clock.now(), (verdict, packet) => ...);
//
// handleFrame() is the capture's path: knock doors read the decoded frame itself, and the
// InboundPacket (address strings, payload view) is made only when an SPA verifier needs it or a
// verdict is reported - a flood of knocks that complete nothing builds no object per packet.
// handle(packet) does the same from an InboundPacket (tests, callers without a frame).
//
// A port → handlers index makes a packet nobody listens for cost one Map lookup. A policy that cannot
// be used (bad spec, no SPA verifier, verifier construction failed) is left out and reported by
// problems(), one line each; the others run. Nothing a handler throws escapes handle(): a throwing
// verifier or door yields a Refusal (fail closed).
//
// Reload: setPolicies() keeps the handler - and so the knock attempts in progress and any SPA
// verifier state - of every policy whose name and spec are unchanged (compared as JSON); a changed
// policy starts afresh, a removed one is disposed.

import type { Clock } from '../api/clock.js';
import { parsePort, type PortRef } from '../api/ports.js';
import type { KnockPolicy } from '../api/types.js';
import type { InboundPacket, Verdict } from './decision.js';
import { toInboundPacket } from './frames/decode.js';
import { IPPROTO_UDP, type DecodedFrame } from './frames/frame.js';
import { portKey, portOfKey } from './frames/port-key.js';
import { createKnockDoor } from './knock/matcher.js';
import type { KnockDoor } from './knock/door.js';
import { buildGateTable, type SpaGateKey, type SpaGatePort } from './capture/spa-gate.js';

export interface SpaVerifier {
  verify(packet: InboundPacket): Verdict;
  /** The policy's keys for the native SPA gate; without one, its port is not gated natively. */
  readonly gateKey?: SpaGateKey;
}

export interface EngineOptions {
  policies: readonly KnockPolicy[];
  /** Builds the verifier of an SPA policy (keys resolved by the caller). May throw: the policy is left out. */
  spaVerifierFor?: (policy: KnockPolicy) => SpaVerifier;
  clock: Clock;
  /** Per knock policy; default DEFAULTS.maxTrackedSources. */
  maxTrackedSources?: number;
}

export interface PolicyProblem {
  policy: string;
  message: string;
}

export interface Engine {
  /** Does any policy listen on this port key (frames/port-key.ts)? */
  wants(key: number): boolean;
  /** Every verdict the packet produces: grants, and SPA refusals. Never throws. */
  handle(packet: InboundPacket): Verdict[];
  /**
   * The same for a decoded frame captured at `at`: each verdict goes to `onVerdict` with the
   * packet's InboundPacket (made once, only when needed). Never throws (onVerdict's errors aside).
   * `spaPolicies`: the native SPA gate inspected the packet and these policies' keys authenticated
   * it; only their verifiers run (the others would refuse it with bad-hmac).
   */
  handleFrame(
    frame: DecodedFrame,
    at: number,
    onVerdict: (verdict: Verdict, packet: InboundPacket) => void,
    spaPolicies?: readonly string[],
  ): void;
  /** Replace the policy set (see reload above). */
  setPolicies(policies: readonly KnockPolicy[]): void;
  /** The ports policies listen on, sorted: what the capture filter lets through. */
  ports(): PortRef[];
  /**
   * UDP ports on which only SPA policies listen, sorted: packets to them whose payload cannot be
   * SPA data may be dropped in the kernel (capture/filter.ts). Optional for other engines.
   */
  spaOnlyPorts?(): PortRef[];
  /** The native SPA gate's key table for the SPA-only ports (capture/spa-gate.ts). Optional. */
  spaGate?(): SpaGatePort[];
  /** Policies left out of the current set, and why. */
  problems(): PolicyProblem[];
  /**
   * Packets fed to a knock sequence that did not complete it (a step, a wrong port that reset it,
   * a repeat), since the engine was made: the packets-by-result metric. Optional for other engines.
   */
  knockSteps?(): number;
  /** Stop timers and forget state. */
  dispose(): void;
}

interface Handler {
  policy: string;
  /** JSON of the policy spec, to tell an unchanged policy on reload. */
  fingerprint: string;
  kind: 'knock' | 'spa';
  keys: number[];
  /** SPA handlers: what the native gate checks for the policy (undefined: the port is not gated). */
  gateKey?: SpaGateKey;
  handle(packet: InboundPacket, key: number): Verdict | undefined;
  /** Knock doors only: the frame itself, no InboundPacket needed. */
  handleFrame?(frame: DecodedFrame, key: number, at: number): Verdict | undefined;
  dispose(): void;
}

function knockHandler(policy: KnockPolicy, fingerprint: string, opts: EngineOptions): Handler {
  const door: KnockDoor = createKnockDoor(policy, opts);
  return {
    policy: door.spec.policy,
    fingerprint,
    kind: 'knock',
    keys: [...door.spec.portKeys],
    handle: (packet, key) => door.feed(packet, key),
    handleFrame: (frame, key, at) => door.feedFrame(frame, key, at),
    dispose: () => door.dispose(),
  };
}

function spaHandler(policy: KnockPolicy, fingerprint: string, opts: EngineOptions): Handler {
  if (!opts.spaVerifierFor) throw new Error('no SPA verifier is configured');
  // fwknop's SPA default transport is UDP.
  const port = parsePort(String(policy.spec.spa!.port), 'udp');
  const verifier = opts.spaVerifierFor(policy);
  return {
    policy: policy.metadata.name,
    fingerprint,
    kind: 'spa',
    keys: [portKey(port.proto, port.port)],
    ...(verifier.gateKey ? { gateKey: verifier.gateKey } : {}),
    handle: (packet) => verifier.verify(packet),
    dispose: () => undefined,
  };
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function createEngine(opts: EngineOptions): Engine {
  let handlers = new Map<string, Handler>();
  let byPort = new Map<number, Handler[]>();
  let problems: PolicyProblem[] = [];

  function build(policy: KnockPolicy, previous: Map<string, Handler>): Handler {
    const name = policy?.metadata?.name;
    if (typeof name !== 'string' || name === '') throw new Error('policy without a name');
    const fingerprint = JSON.stringify(policy.spec ?? null);
    const kept = previous.get(name);
    if (kept && kept.fingerprint === fingerprint) return kept;
    const hasKnock = policy.spec?.knock !== undefined;
    const hasSpa = policy.spec?.spa !== undefined;
    if (hasKnock === hasSpa) throw new Error('exactly one of spec.knock or spec.spa is required');
    return hasKnock ? knockHandler(policy, fingerprint, opts) : spaHandler(policy, fingerprint, opts);
  }

  function setPolicies(policies: readonly KnockPolicy[]): void {
    const previous = handlers;
    const next = new Map<string, Handler>();
    const nextProblems: PolicyProblem[] = [];
    for (const policy of policies) {
      const name = String(policy?.metadata?.name ?? '');
      if (next.has(name)) {
        nextProblems.push({ policy: name, message: `policy "${name}" appears twice; the first one is used` });
        continue;
      }
      try {
        next.set(name, build(policy, previous));
      } catch (err) {
        nextProblems.push({ policy: name, message: `policy "${name}" left out: ${describeError(err)}` });
      }
    }
    for (const [name, old] of previous) if (next.get(name) !== old) old.dispose();
    const index = new Map<number, Handler[]>();
    for (const h of next.values()) {
      for (const key of h.keys) {
        const list = index.get(key) ?? [];
        list.push(h);
        index.set(key, list);
      }
    }
    handlers = next;
    byPort = index;
    problems = nextProblems;
  }

  setPolicies(opts.policies);

  function spaOnlyPorts(): PortRef[] {
    return [...byPort.entries()]
      .filter(([key, list]) => portOfKey(key).proto === 'udp' && list.every((h) => h.kind === 'spa'))
      .map(([key]) => key)
      .sort((a, b) => a - b)
      .map(portOfKey);
  }

  /** Fail closed. The error text is not passed on: a verifier's message might quote input. */
  function handlerFailed(h: Handler, packet: InboundPacket, err: unknown): Verdict {
    return {
      kind: 'refused',
      policy: h.policy,
      reason: 'internal-error',
      message: `policy "${h.policy}": packet from ${packet.src} refused, its handler failed (${err instanceof Error ? err.name : typeof err})`,
    };
  }

  let knockSteps = 0;
  return {
    wants: (key) => byPort.has(key),
    handle(packet) {
      const key = portKey(packet.proto, packet.dstPort);
      const list = byPort.get(key);
      if (!list) return [];
      const verdicts: Verdict[] = [];
      for (const h of list) {
        try {
          const v = h.handle(packet, key);
          if (v) verdicts.push(v);
          else if (h.kind === 'knock') knockSteps++;
        } catch (err) {
          verdicts.push(handlerFailed(h, packet, err));
        }
      }
      return verdicts;
    },
    handleFrame(frame, at, onVerdict, spaPolicies) {
      const key = portKey(frame.ipProto === IPPROTO_UDP ? 'udp' : 'tcp', frame.dstPort);
      const list = byPort.get(key);
      if (!list) return;
      let packet: InboundPacket | undefined;
      for (const h of list) {
        if (spaPolicies && h.kind === 'spa' && !spaPolicies.includes(h.policy)) continue;
        let v: Verdict | undefined;
        try {
          v = h.handleFrame
            ? h.handleFrame(frame, key, at)
            : h.handle((packet ??= toInboundPacket(frame, at)), key);
        } catch (err) {
          v = handlerFailed(h, (packet ??= toInboundPacket(frame, at)), err);
        }
        if (v) onVerdict(v, (packet ??= toInboundPacket(frame, at)));
        else if (h.kind === 'knock') knockSteps++;
      }
    },
    knockSteps: () => knockSteps,
    setPolicies,
    ports() {
      return [...byPort.keys()].sort((a, b) => a - b).map(portOfKey);
    },
    spaOnlyPorts,
    spaGate() {
      return buildGateTable(spaOnlyPorts(), (p) =>
        (byPort.get(portKey(p.proto, p.port)) ?? []).map((h) => ({ policy: h.policy, key: h.gateKey })),
      );
    },
    problems: () => [...problems],
    dispose() {
      for (const h of handlers.values()) h.dispose();
      handlers = new Map();
      byPort = new Map();
    },
  };
}
