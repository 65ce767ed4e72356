// A packet's source address as a compact Map key, made without formatting text, so that per-source
// state (the knock doors' attempts) costs no string building for the spoofed sources of a flood:
//
//   IPv4: the address as an unsigned 32-bit number (10.0.0.2 → 0x0a000002).
//   IPv6: the 16 address bytes as a 16-character latin1 string.
//
// The same address gives the same key whether it comes from a frame (frameSourceKey) or as text
// from an InboundPacket (textSourceKey), so both entry points of a door share its state. Text that is
// not a plain address (a zone, garbage from a fuzzer) still gets a key of its own: the text followed
// by U+0100, a character no latin1 key holds, so it never equals an address's key.

import { isIP } from 'node:net';
import type { DecodedFrame } from './frame.js';

export type SourceKey = number | string;

const IPV6_BYTES = 16;
const NOT_LATIN1 = '\u0100';

function ipv4Number(buf: Buffer, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

/** The key of a decoded frame's source address. */
export function frameSourceKey(f: DecodedFrame): SourceKey {
  if (f.family === 4) return ipv4Number(f.buf, f.srcOffset);
  return f.buf.toString('latin1', f.srcOffset, f.srcOffset + IPV6_BYTES);
}

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

/** The key of a source address given as text (InboundPacket.src); equal to frameSourceKey's for it. */
export function textSourceKey(text: string, family: 4 | 6): SourceKey {
  if (family === 4) {
    const n = parseIpv4(text);
    return n >= 0 ? n : text + NOT_LATIN1;
  }
  const bytes = parseIpv6(text);
  return bytes ? String.fromCharCode(...bytes) : text + NOT_LATIN1;
}
