// Hand-built frames for the decoder tests and the fuzz test: each layer as the RFC lays it out, so a
// test can put any field where it wants (VLAN stacks, IPv4 options, IPv6 extension headers,
// fragments, cooked-capture headers). Checksums are left zero: the decoders do not read them.

import { isIPv4 } from 'node:net';

export interface TransportSpec {
  proto: 'tcp' | 'udp';
  srcPort: number;
  dstPort: number;
  /** TCP flags byte; default SYN. */
  flags?: number;
  payload?: Buffer;
  /** TCP options (length a multiple of 4). */
  tcpOptions?: Buffer;
}

export function tcpSegment(t: TransportSpec): Buffer {
  const options = t.tcpOptions ?? Buffer.alloc(0);
  const h = Buffer.alloc(20 + options.length);
  h.writeUInt16BE(t.srcPort, 0);
  h.writeUInt16BE(t.dstPort, 2);
  h.writeUInt32BE(0x01020304, 4);
  h[12] = ((20 + options.length) / 4) << 4;
  h[13] = t.flags ?? 0x02;
  h.writeUInt16BE(64240, 14);
  options.copy(h, 20);
  return Buffer.concat([h, t.payload ?? Buffer.alloc(0)]);
}

export function udpDatagram(t: TransportSpec): Buffer {
  const payload = t.payload ?? Buffer.alloc(0);
  const h = Buffer.alloc(8);
  h.writeUInt16BE(t.srcPort, 0);
  h.writeUInt16BE(t.dstPort, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

export function transport(t: TransportSpec): Buffer {
  return t.proto === 'tcp' ? tcpSegment(t) : udpDatagram(t);
}

function ipv4Bytes(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

export function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

export interface Ipv4Spec {
  src: string;
  dst: string;
  protocol: number;
  options?: Buffer;
  /** The 16-bit flags + fragment offset field (0x2000 = MF, low 13 bits = offset in 8-byte units). */
  fragment?: number;
}

export function ipv4Packet(ip: Ipv4Spec, body: Buffer): Buffer {
  const options = ip.options ?? Buffer.alloc(0);
  const hl = 20 + options.length;
  const h = Buffer.alloc(hl);
  h[0] = 0x40 | (hl / 4);
  h.writeUInt16BE(hl + body.length, 2);
  h.writeUInt16BE(0x1234, 4);
  h.writeUInt16BE(ip.fragment ?? 0x4000, 6); // DF
  h[8] = 64;
  h[9] = ip.protocol;
  ipv4Bytes(ip.src).copy(h, 12);
  ipv4Bytes(ip.dst).copy(h, 16);
  options.copy(h, 20);
  return Buffer.concat([h, body]);
}

export interface ExtensionHeader {
  type: 0 | 43 | 44 | 51 | 60;
  /** Body after the next-header byte (and length byte where there is one); padded to the header's size. */
  fragmentField?: number;
  /** Size in bytes (multiple of 8 for 0/43/60, of 4 for 51; 8 for 44). Default 8. */
  size?: number;
}

export interface Ipv6Spec {
  src: string;
  dst: string;
  protocol: number;
  extensions?: ExtensionHeader[];
}

export function ipv6Packet(ip: Ipv6Spec, body: Buffer): Buffer {
  const exts = ip.extensions ?? [];
  const parts: Buffer[] = [];
  for (let i = 0; i < exts.length; i++) {
    const e = exts[i]!;
    const next = i + 1 < exts.length ? exts[i + 1]!.type : ip.protocol;
    const size = e.type === 44 ? 8 : (e.size ?? 8);
    const b = Buffer.alloc(size);
    b[0] = next;
    if (e.type === 44) b.writeUInt16BE(e.fragmentField ?? 0, 2);
    else if (e.type === 51) b[1] = size / 4 - 2;
    else b[1] = size / 8 - 1;
    parts.push(b);
  }
  const payload = Buffer.concat([...parts, body]);
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(payload.length, 4);
  h[6] = exts.length ? exts[0]!.type : ip.protocol;
  h[7] = 64;
  ipv6Bytes(ip.src).copy(h, 8);
  ipv6Bytes(ip.dst).copy(h, 24);
  return Buffer.concat([h, payload]);
}

export type Link =
  | { kind: 'ethernet'; vlanTags?: number[] /* TPIDs, outermost first */ }
  | { kind: 'sll'; packetType?: number }
  | { kind: 'sll2'; packetType?: number }
  | { kind: 'raw' };

export function linkFrame(link: Link, etherType: number, l3: Buffer): Buffer {
  switch (link.kind) {
    case 'ethernet': {
      const tags = link.vlanTags ?? [];
      const h = Buffer.alloc(12 + 4 * tags.length + 2);
      Buffer.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]).copy(h, 0);
      tags.forEach((tpid, i) => {
        h.writeUInt16BE(tpid, 12 + 4 * i);
        h.writeUInt16BE(100 + i, 14 + 4 * i);
      });
      h.writeUInt16BE(etherType, 12 + 4 * tags.length);
      return Buffer.concat([h, l3]);
    }
    case 'sll': {
      const h = Buffer.alloc(16);
      h.writeUInt16BE(link.packetType ?? 0, 0);
      h.writeUInt16BE(1, 2); // ARPHRD_ETHER
      h.writeUInt16BE(6, 4);
      h.writeUInt16BE(etherType, 14);
      return Buffer.concat([h, l3]);
    }
    case 'sll2': {
      const h = Buffer.alloc(20);
      h.writeUInt16BE(etherType, 0);
      h.writeUInt32BE(3, 4);
      h.writeUInt16BE(1, 8);
      h[10] = link.packetType ?? 0;
      h[11] = 6;
      return Buffer.concat([h, l3]);
    }
    case 'raw':
      return l3;
  }
}

export interface FrameSpec extends TransportSpec {
  src: string;
  dst: string;
  link?: Link;
  ipv4Options?: Buffer;
  ipv4Fragment?: number;
  ipv6Extensions?: ExtensionHeader[];
}

/** A whole frame: link header, IPv4 or IPv6 (by the address family of `src`), TCP or UDP. */
export function buildFrame(s: FrameSpec): Buffer {
  const body = transport(s);
  const protocol = s.proto === 'tcp' ? 6 : 17;
  const v4 = isIPv4(s.src);
  const l3 = v4
    ? ipv4Packet({ src: s.src, dst: s.dst, protocol, options: s.ipv4Options, fragment: s.ipv4Fragment }, body)
    : ipv6Packet({ src: s.src, dst: s.dst, protocol, extensions: s.ipv6Extensions }, body);
  return linkFrame(s.link ?? { kind: 'ethernet' }, v4 ? 0x0800 : 0x86dd, l3);
}
