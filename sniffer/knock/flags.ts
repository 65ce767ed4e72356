// knockd's `tcpflags`: which TCP flags a knock must carry (syn) or must not carry (!syn).
//
// A TCP packet whose flags do not match is IGNORED by the door - it neither advances nor resets a
// sequence - exactly as in knockd's flags_match(). The rule applies to TCP knocks only; UDP knocks have
// no flags. Unlike knockd 0.8, whose "!ack" and "!urg" tests are written the wrong way round
// (`NOT_SET && !(flags & ACK)`), negations here mean what they say.

export const TCP_FLAG_BITS: Record<string, number> = {
  fin: 0x01,
  syn: 0x02,
  rst: 0x04,
  psh: 0x08,
  ack: 0x10,
  urg: 0x20,
};

export interface TcpFlagRule {
  /** Bits that must be set. */
  set: number;
  /** Bits that must be clear. */
  clear: number;
}

export const ANY_TCP_FLAGS: TcpFlagRule = { set: 0, clear: 0 };

export class TcpFlagsError extends Error {}

/** Parse ["syn", "!ack"]. Throws TcpFlagsError naming the bad entry. */
export function parseTcpFlags(list: readonly string[] | undefined): TcpFlagRule {
  const rule = { set: 0, clear: 0 };
  for (const raw of list ?? []) {
    const text = String(raw).trim().toLowerCase();
    const negated = text.startsWith('!');
    const bit = TCP_FLAG_BITS[negated ? text.slice(1) : text];
    if (bit === undefined) {
      throw new TcpFlagsError(
        `unknown TCP flag "${raw}": want syn, ack, fin, rst, psh or urg, optionally with "!"`,
      );
    }
    if (negated) rule.clear |= bit;
    else rule.set |= bit;
  }
  if (rule.set & rule.clear)
    throw new TcpFlagsError(`TCP flags ${JSON.stringify(list)} both require and forbid a flag`);
  return rule;
}

export function tcpFlagsMatch(flags: number, rule: TcpFlagRule): boolean {
  return (flags & rule.set) === rule.set && (flags & rule.clear) === 0;
}
