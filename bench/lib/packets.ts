// Raw frames for the flood scenarios, written to a pcap file that tcpreplay sends onto the client's
// veth at top speed: Ethernet + IPv4/IPv6 + UDP/TCP with correct checksums, so the server's kernel
// and every sniffer see ordinary packets. Frames are written straight into one preallocated chunk
// buffer and flushed to the file in large writes (a million frames is a few hundred MB).

import { closeSync, openSync, writeSync } from 'node:fs';

const PCAP_MAGIC = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
const CHUNK_BYTES = 8 * 1024 * 1024;

export interface Link {
  srcMac: Buffer;
  dstMac: Buffer;
}

export interface Endpoint4 {
  family: 4;
  src: Buffer; // 4 bytes
  dst: Buffer;
}
export interface Endpoint6 {
  family: 6;
  src: Buffer; // 16 bytes
  dst: Buffer;
}
export type Endpoints = Endpoint4 | Endpoint6;

export function macBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6) throw new Error(`not a MAC address: ${mac}`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function ip4Bytes(addr: string): Buffer {
  return Buffer.from(addr.split('.').map(Number));
}

export function ip6Bytes(addr: string): Buffer {
  const [head, tail] = addr.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  return out;
}

/** Ones' complement sum of 16-bit words, not folded. */
function sum16(buf: Buffer, start: number, end: number, acc = 0): number {
  let s = acc;
  let i = start;
  for (; i + 1 < end; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) s += buf[i]! << 8;
  return s;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Appends pcap records to a file through a reused chunk buffer. */
export class PcapWriter {
  private readonly fd: number;
  private readonly chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;
  count = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w', 0o600);
    const header = Buffer.alloc(24);
    header.writeUInt32LE(PCAP_MAGIC, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(65535, 16);
    header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    writeSync(this.fd, header);
  }

  /**
   * Reserve room for one frame of `length` bytes and return the chunk and the frame's offset in it;
   * the caller fills the frame in place.
   */
  private reserve(length: number): number {
    if (this.used + 16 + length > CHUNK_BYTES) this.flush();
    const at = this.used;
    this.chunk.writeUInt32LE(0, at);
    this.chunk.writeUInt32LE(this.count, at + 4); // microseconds: only order matters for --topspeed
    this.chunk.writeUInt32LE(length, at + 8);
    this.chunk.writeUInt32LE(length, at + 12);
    this.used += 16 + length;
    this.count++;
    return at + 16;
  }

  private flush(): void {
    if (this.used > 0) writeSync(this.fd, this.chunk, 0, this.used);
    this.used = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  /** One Ethernet/IP frame carrying a UDP datagram (payload copied) or a TCP segment. */
  frame(
    link: Link,
    ep: Endpoints,
    l4:
      | { proto: 'udp'; srcPort: number; dstPort: number; payload: Buffer }
      | { proto: 'tcp'; srcPort: number; dstPort: number; flags: number; seq: number },
  ): void {
    const l4Len = l4.proto === 'udp' ? 8 + l4.payload.length : 20;
    const ipLen = ep.family === 4 ? 20 : 40;
    const at = this.reserve(14 + ipLen + l4Len);
    const b = this.chunk;
    link.dstMac.copy(b, at);
    link.srcMac.copy(b, at + 6);
    b.writeUInt16BE(ep.family === 4 ? 0x0800 : 0x86dd, at + 12);
    const ip = at + 14;
    const protoNum = l4.proto === 'udp' ? 17 : 6;
    let pseudo: number;
    if (ep.family === 4) {
      b[ip] = 0x45;
      b[ip + 1] = 0;
      b.writeUInt16BE(20 + l4Len, ip + 2);
      b.writeUInt16BE(this.count & 0xffff, ip + 4);
      b.writeUInt16BE(0x4000, ip + 6); // DF
      b[ip + 8] = 64;
      b[ip + 9] = protoNum;
      b.writeUInt16BE(0, ip + 10);
      ep.src.copy(b, ip + 12);
      ep.dst.copy(b, ip + 16);
      b.writeUInt16BE(fold(sum16(b, ip, ip + 20)), ip + 10);
      pseudo = sum16(b, ip + 12, ip + 20) + protoNum + l4Len;
    } else {
      b.writeUInt32BE(0x60000000, ip);
      b.writeUInt16BE(l4Len, ip + 4);
      b[ip + 6] = protoNum;
      b[ip + 7] = 64;
      ep.src.copy(b, ip + 8);
      ep.dst.copy(b, ip + 24);
      pseudo = sum16(b, ip + 8, ip + 40) + protoNum + l4Len;
    }
    const t = ip + ipLen;
    b.writeUInt16BE(l4.srcPort, t);
    b.writeUInt16BE(l4.dstPort, t + 2);
    let csumAt: number;
    if (l4.proto === 'udp') {
      b.writeUInt16BE(l4Len, t + 4);
      b.writeUInt16BE(0, t + 6);
      l4.payload.copy(b, t + 8);
      csumAt = t + 6;
    } else {
      b.writeUInt32BE(l4.seq >>> 0, t + 4);
      b.writeUInt32BE(0, t + 8);
      b.writeUInt16BE((5 << 12) | l4.flags, t + 12);
      b.writeUInt16BE(64240, t + 14);
      b.writeUInt16BE(0, t + 16);
      b.writeUInt16BE(0, t + 18);
      csumAt = t + 16;
    }
    let c = fold(sum16(b, t, t + l4Len, pseudo));
    if (l4.proto === 'udp' && c === 0) c = 0xffff;
    b.writeUInt16BE(c, csumAt);
  }
}

export const TCP_SYN = 0x02;
