// CIDR membership on the SPA hot path. api/addresses.ts's CidrSet (node:net BlockList) is the
// reference, but BlockList.check builds a SocketAddress per call: several microseconds, which is
// more than the whole budget of refusing a junk packet (the source check runs on every packet that
// reaches the SPA port). IPv4 dotted quads — every source the frame decoder formats, and most allow
// IPs — are parsed here into a 32-bit number and compared with precomputed masks; anything else
// (IPv6, odd spellings) is answered by the BlockList, so the answers are always BlockList's.

import { CidrSet, parseCidr } from '../../api/addresses.js';

interface V4Net {
  net: number;
  mask: number;
}

const DOT = 0x2e;
const ZERO = 0x30;

/**
 * "10.1.2.3" → 0x0a010203; -1 unless `text` is a dotted quad as node:net's isIPv4 accepts it
 * (four decimal parts 0-255, no leading zeros).
 */
export function parseIpv4(text: string): number {
  const len = text.length;
  if (len < 7 || len > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= len; i++) {
    const c = i < len ? text.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0 || part > 255 || parts === 4) return -1;
      value = (value << 8) | part;
      parts++;
      part = 0;
      digits = 0;
    } else {
      const d = c - ZERO;
      if (d < 0 || d > 9 || (digits === 1 && part === 0)) return -1;
      part = part * 10 + d;
      digits++;
      if (digits > 3) return -1;
    }
  }
  return parts === 4 ? value >>> 0 : -1;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** A set of CIDRs, answering like CidrSet.has, quickly for IPv4. */
export class SourceMatcher {
  private readonly v4: V4Net[] = [];
  private readonly reference: CidrSet;

  /** Throws AddressError (api/addresses.ts) for a bad CIDR. */
  constructor(cidrs: readonly string[]) {
    this.reference = new CidrSet(cidrs);
    for (const text of cidrs) {
      const c = parseCidr(text);
      if (c.family !== 4) continue;
      const mask = maskOf(c.prefix);
      this.v4.push({ net: (parseIpv4(c.address) & mask) >>> 0, mask });
    }
  }

  has(address: string): boolean {
    const v4 = parseIpv4(address);
    if (v4 < 0) return this.reference.has(address);
    for (let i = 0; i < this.v4.length; i++) {
      const n = this.v4[i]!;
      if ((v4 & n.mask) >>> 0 === n.net) return true;
    }
    return false;
  }
}
