// The BPF filter handed to libpcap, so that only packets that could matter reach JavaScript:
// inbound (sent to one of the node's own addresses) and on a knock or SPA port.
//
//   (dst host 10.0.0.1 or dst host fd00::1) and (tcp dst port 7000 or udp dst port 8000)
//
// On UDP ports where only SPA policies listen (spaPorts), the kernel also drops what cannot be an
// SPA packet, so that a junk flood at the SPA port never reaches JavaScript (each packet cap hands
// up costs several microseconds before any of our code runs): the UDP payload must be 36-1500 bytes
// long and its first 16 bytes within the base64 alphabet's range, the first checks decodeSpa makes.
// Random bytes pass with probability (80/256)^16, about 1e-8; base64-looking junk still costs its
// HMAC in JavaScript.
//
//   udp dst port 62201 and ((ip and udp[4:2] >= 44 and udp[4:2] <= 1508 and udp[8] >= 0x2b and
//     udp[8] <= 0x7a and ... udp[23] <= 0x7a) or (ip6 and ip6[44:2] >= 44 and ... ip6[63] <= 0x7a))
//
// (libpcap indexes udp[] over IPv4 only, so IPv6 is read at fixed offsets: a UDP header straight
// after the 40-byte IPv6 header, which is all `udp dst port` matches on IPv6 anyway.)
//
// With vlan: true (Ethernet interfaces) the same expression is repeated after pcap's `vlan` keyword
// so that frames still carrying an 802.1Q tag match too - `vlan` shifts the offsets of everything after
// it, so it must come last. Cooked captures (the `any` device) support no `vlan` keyword.

import { isIP } from 'node:net';
import type { PortRef } from '../../api/ports.js';
import { SPA_LIMITS } from '../spa/limits.js';

/** Leading payload bytes the kernel checks against the base64 alphabet on SPA-only ports. */
export const SPA_PRECHECK_BYTES = 16;
const UDP_HEADER = 8;

/**
 * The byte at `at` lies in 0x2b-0x7a, the range that holds fwknop's base64 alphabet (+ / 0-9 A-Z
 * a-z): two comparisons instead of ten for the exact set, so the filter stays far below the kernel's
 * 4096-instruction limit; a random byte passes with probability 80/256, sixteen with about 1e-8,
 * and decodeSpa checks the exact alphabet.
 */
function b64Byte(at: string): string {
  return `${at} >= 0x2b and ${at} <= 0x7a`;
}

/** The UDP datagram could carry SPA data: length bounds and a base64 prefix, IPv4 and IPv6. */
function spaPrecheck(): string {
  const min = UDP_HEADER + SPA_LIMITS.minEncodedMsgSize;
  const max = UDP_HEADER + SPA_LIMITS.maxEncodedMsgSize;
  const family = (len: string, byteAt: (i: number) => string) =>
    [
      `${len} >= ${min}`,
      `${len} <= ${max}`,
      ...Array.from({ length: SPA_PRECHECK_BYTES }, (_, i) => b64Byte(byteAt(i))),
    ].join(' and ');
  const v4 = family('udp[4:2]', (i) => `udp[${UDP_HEADER + i}]`);
  const v6 = family('ip6[44:2]', (i) => `ip6[${40 + UDP_HEADER + i}]`);
  return `((ip and ${v4}) or (ip6 and ${v6}))`;
}

export class CaptureFilterError extends Error {}

export function buildCaptureFilter(opts: {
  addresses: readonly string[];
  ports: readonly PortRef[];
  /** UDP ports (among `ports`) where only SPA policies listen: payload prechecked in the kernel. */
  spaPorts?: readonly PortRef[];
  vlan?: boolean;
}): string {
  if (opts.ports.length === 0) throw new CaptureFilterError('no knock or SPA port to capture');
  if (opts.addresses.length === 0) throw new CaptureFilterError('no local address to capture packets for');
  for (const a of opts.addresses) {
    if (isIP(a) === 0) throw new CaptureFilterError(`"${a}" is not an IP address`);
  }
  for (const p of opts.ports) {
    if (
      !Number.isInteger(p.port) ||
      p.port < 1 ||
      p.port > 65535 ||
      (p.proto !== 'tcp' && p.proto !== 'udp')
    ) {
      throw new CaptureFilterError(`invalid port ${JSON.stringify(p)}`);
    }
  }
  const hosts = opts.addresses.map((a) => `dst host ${a}`).join(' or ');
  const spa = new Set((opts.spaPorts ?? []).filter((p) => p.proto === 'udp').map((p) => p.port));
  const isSpa = (p: PortRef) => p.proto === 'udp' && spa.has(p.port);
  const clauses = opts.ports.filter((p) => !isSpa(p)).map((p) => `${p.proto} dst port ${p.port}`);
  const spaClauses = opts.ports.filter(isSpa).map((p) => `udp dst port ${p.port}`);
  // One precheck for all SPA-only ports, so more SPA ports do not multiply the program's size.
  if (spaClauses.length > 0) clauses.push(`((${spaClauses.join(' or ')}) and ${spaPrecheck()})`);
  const ports = clauses.join(' or ');
  const base = `(${hosts}) and (${ports})`;
  return opts.vlan ? `(${base}) or (vlan and ${base})` : base;
}
