// A source address given as text (InboundPacket.src) as its bytes, for per-source state keyed by
// address bytes (sniffer/knock/source-index.ts) whether the address comes from a frame or as text.

import { isIP } from 'node:net';

/** "a.b.c.d" → its number, or -1 when it is not a dotted quad of decimal bytes. */
function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4) return -1;
  let n = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return -1;
    const v = Number(part);
    if (v > 255) return -1;
    n = n * 256 + v;
  }
  return n;
}

/** The 16 bytes of an IPv6 address in text (with "::" and an IPv4 tail allowed), or undefined. */
function parseIpv6(text: string): number[] | undefined {
  if (text.includes('%') || isIP(text) !== 6) return undefined;
  let t = text;
  const tail = t.slice(t.lastIndexOf(':') + 1);
  if (tail.includes('.')) {
    const v4 = parseIpv4(tail);
    if (v4 < 0) return undefined;
    t = `${t.slice(0, t.length - tail.length)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = t.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const zeros = halves.length === 2 ? 8 - head.length - rest.length : 0;
  const all = [...head, ...new Array<number>(zeros).fill(0), ...rest];
  if (all.length !== 8 || all.some((g) => !(g >= 0 && g <= 0xffff))) return undefined;
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** The address's bytes (4 for IPv4, 16 for IPv6), or undefined when `text` is not one of `family`. */
export function parseSourceText(text: string, family: 4 | 6): number[] | undefined {
  if (family === 4) {
    const n = parseIpv4(text);
    return n < 0 ? undefined : [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  }
  return parseIpv6(text);
}
