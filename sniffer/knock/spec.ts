// A KnockPolicy compiled into what the door needs per packet: sequences as port keys, the flag rule,
// the timeout in ms and the decision template. Every check of the policy happens here, once, with one
// line naming the policy and what is wrong.

import { formatPort, parsePort, PortSpecError } from '../../api/ports.js';
import { BOUNDS, DEFAULTS } from '../../api/limits.js';
import type { KnockPolicy } from '../../api/types.js';
import { portKey } from '../frames/port-key.js';
import { parseTcpFlags, TcpFlagsError, type TcpFlagRule } from './flags.js';

export class KnockSpecError extends Error {}

export interface CompiledKnock {
  policy: string;
  /** Each sequence as port keys (see frames/port-key.ts). One entry unless oneTimeSequences. */
  sequences: number[][];
  /** Each sequence as "port/proto" text, for the one-time claim digest. */
  sequenceTexts: string[][];
  oneTime: boolean;
  /** Every port key that appears in any sequence: a knock on one of these concerns this door. */
  portKeys: Set<number>;
  timeoutMs: number;
  flags: TcpFlagRule;
  grantPorts: string[];
  durationSeconds: number;
}

function fail(policy: string, what: string): never {
  throw new KnockSpecError(`knock policy "${policy}": ${what}`);
}

function compileSequence(policy: string, seq: unknown, where: string): { keys: number[]; texts: string[] } {
  if (!Array.isArray(seq) || seq.length === 0)
    fail(policy, `${where} must be a non-empty list of PORT/PROTO`);
  if (seq.length > BOUNDS.maxSequenceLength) {
    fail(policy, `${where} has ${seq.length} knocks, more than ${BOUNDS.maxSequenceLength}`);
  }
  const keys: number[] = [];
  const texts: string[] = [];
  for (const item of seq) {
    try {
      // knockd's default protocol for a bare port is tcp.
      const p = parsePort(String(item), 'tcp');
      keys.push(portKey(p.proto, p.port));
      texts.push(formatPort(p));
    } catch (err) {
      if (err instanceof PortSpecError) fail(policy, `${where}: ${err.message}`);
      throw err;
    }
  }
  return { keys, texts };
}

export function compileKnock(policy: KnockPolicy): CompiledKnock {
  const name = policy?.metadata?.name;
  if (typeof name !== 'string' || name === '') throw new KnockSpecError('knock policy without a name');
  const knock = policy.spec?.knock;
  if (!knock) fail(name, 'no spec.knock');
  const hasSeq = knock.sequence !== undefined;
  const hasOneTime = knock.oneTimeSequences !== undefined;
  if (hasSeq === hasOneTime) fail(name, 'exactly one of sequence or oneTimeSequences is required');
  let raw: unknown[];
  if (hasSeq) {
    raw = [knock.sequence];
  } else {
    if (!Array.isArray(knock.oneTimeSequences) || knock.oneTimeSequences.length === 0) {
      fail(name, 'oneTimeSequences must be a non-empty list of sequences');
    }
    raw = knock.oneTimeSequences;
  }
  const compiled = raw.map((s, i) =>
    compileSequence(name, s, hasSeq ? 'sequence' : `oneTimeSequences[${i}]`),
  );

  const timeout = knock.sequenceTimeoutSeconds ?? DEFAULTS.sequenceTimeoutSeconds;
  if (typeof timeout !== 'number' || !(timeout > 0) || timeout > BOUNDS.maxSequenceTimeoutSeconds) {
    fail(name, `sequenceTimeoutSeconds must be a number in (0, ${BOUNDS.maxSequenceTimeoutSeconds}]`);
  }
  let flags: TcpFlagRule;
  try {
    flags = parseTcpFlags(knock.tcpFlags);
  } catch (err) {
    if (err instanceof TcpFlagsError) fail(name, err.message);
    throw err;
  }

  const grant = policy.spec.grant;
  if (!grant || !Array.isArray(grant.ports) || grant.ports.length === 0) fail(name, 'grant.ports is empty');
  try {
    grant.ports.forEach((p) => parsePort(String(p)));
  } catch (err) {
    if (err instanceof PortSpecError) fail(name, `grant.ports: ${err.message}`);
    throw err;
  }
  const duration = grant.durationSeconds;
  if (
    typeof duration !== 'number' ||
    !Number.isInteger(duration) ||
    duration <= 0 ||
    duration > BOUNDS.maxDurationSeconds
  ) {
    fail(name, `grant.durationSeconds must be a whole number in [1, ${BOUNDS.maxDurationSeconds}]`);
  }

  return {
    policy: name,
    sequences: compiled.map((c) => c.keys),
    sequenceTexts: compiled.map((c) => c.texts),
    oneTime: hasOneTime,
    portKeys: new Set(compiled.flatMap((c) => c.keys)),
    timeoutMs: timeout * 1000,
    flags,
    grantPorts: [...grant.ports],
    durationSeconds: duration,
  };
}
