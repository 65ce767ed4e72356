// The knock matcher: the public surface of sniffer/knock.
export {
  createKnockDoor,
  createKnockMatcher,
  type KnockMatcher,
  type KnockMatcherOptions,
} from './matcher.js';
export { KnockDoor } from './door.js';
export { compileKnock, KnockSpecError, type CompiledKnock } from './spec.js';
export { oneTimeClaim, oneTimeSequenceDigest, ONE_TIME_CLAIM_LIFETIME_MS } from './claim.js';
export { parseTcpFlags, tcpFlagsMatch, TcpFlagsError, type TcpFlagRule } from './flags.js';
