// The flood traffic, written as pcap files (packets.ts) for tcpreplay:
//   junkFlood: random ~200-byte UDP payloads at the SPA port from random 10.0.0.0/8 sources, with
//     valid SPA packets (made with the daemon's keys, fresh timestamps) spread evenly through it,
//     each from its own source address;
//   knockFlood: TCP SYNs at the first knock port from random sources in 10.0.0.0/8 and fd00::/8 (a
//     spoofed first knock each), with complete knock sequences from real sources spread through it.

import { randomBytes, randomFillSync } from 'node:crypto';
import { encodeSpa } from '../../sniffer/spa/encode.js';
import { ip4Bytes, ip6Bytes, macBytes, PcapWriter, TCP_SYN, type Link } from './packets.js';
import { KNOCK_PORTS, PROTECTED_PORT, SPA_PORT, type SpaKeys } from './setup.js';

export interface Wire {
  srcMac: string;
  dstMac: string;
  dst4: string;
  dst6: string;
}

const JUNK_BYTES = 200;
const POOL_BYTES = 1 << 20;

/** A random 10.0.0.0/8 address outside 10.251.0.0/16 (the real sources'). */
function spoofed4(rnd: RandomPool, out: Buffer): void {
  let v = ((10 << 24) | (rnd.u32() & 0xffffff)) >>> 0;
  if (((v >>> 16) & 255) === 251) v ^= 1 << 16;
  out.writeUInt32BE(v);
}

function linkOf(w: Wire): Link {
  return { srcMac: macBytes(w.srcMac), dstMac: macBytes(w.dstMac) };
}

/** Positions of `n` packets spread evenly through `count`. */
function spread(n: number, count: number): number[] {
  return Array.from({ length: n }, (_, k) => Math.floor(((k + 0.5) * count) / n));
}

/** Random bytes drawn in bulk; each call returns a fresh 4-byte-aligned random value. */
class RandomPool {
  private readonly pool = Buffer.allocUnsafe(POOL_BYTES);
  private at = POOL_BYTES;
  u32(): number {
    if (this.at + 4 > POOL_BYTES) {
      randomFillSync(this.pool);
      this.at = 0;
    }
    const v = this.pool.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  /** A view of `n` random bytes (valid until the pool refills: copy before the next call). */
  bytes(n: number): Buffer {
    if (this.at + n > POOL_BYTES) {
      randomFillSync(this.pool);
      this.at = 0;
    }
    const v = this.pool.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
}

/** Sources of the valid packets / real sequences: one per trial, outside the flood's random range's hot spots. */
export function realSources4(n: number): string[] {
  return Array.from({ length: n }, (_, k) => `10.251.${k >> 8}.${(k & 255) + 1}`);
}
export function realSources6(n: number): string[] {
  return Array.from({ length: n }, (_, k) => `fd00:251::${(k + 1).toString(16)}`);
}

export function writeJunkFlood(
  file: string,
  wire: Wire,
  count: number,
  valid: { sources: string[]; keys: SpaKeys },
  /** random: any bytes; base64: text in fwknop's alphabet (passes every check before the HMAC). */
  payloads: 'random' | 'base64' = 'random',
): void {
  const link = linkOf(wire);
  const dst = ip4Bytes(wire.dst4);
  const at = new Map(spread(valid.sources.length, count).map((p, k) => [p, valid.sources[k]!]));
  const keys = {
    key: Buffer.from(valid.keys.keyBase64, 'base64'),
    hmacKey: Buffer.from(valid.keys.hmacKeyBase64, 'base64'),
  };
  const rnd = new RandomPool();
  // base64 junk: 200-byte windows at random offsets of one large random base64 text.
  const b64 = Buffer.from(randomBytes(POOL_BYTES).toString('base64').replace(/=+$/, ''), 'latin1');
  const b64Window = (at: number) => b64.subarray(at, at + JUNK_BYTES);
  const src = Buffer.alloc(4);
  const w = new PcapWriter(file);
  try {
    for (let i = 0; i < count; i++) {
      const source = at.get(i);
      if (source !== undefined) {
        const packet = encodeSpa(
          {
            allowIp: source,
            access: [`tcp/${PROTECTED_PORT}`],
            username: 'bench',
            timestamp: Math.floor(Date.now() / 1000),
          },
          keys,
        );
        w.frame(
          link,
          { family: 4, src: ip4Bytes(source), dst },
          {
            proto: 'udp',
            srcPort: 40000 + (i % 20000),
            dstPort: SPA_PORT,
            payload: Buffer.from(packet, 'latin1'),
          },
        );
        continue;
      }
      spoofed4(rnd, src);
      w.frame(
        link,
        { family: 4, src, dst },
        {
          proto: 'udp',
          srcPort: 1024 + (rnd.u32() % 60000),
          dstPort: SPA_PORT,
          payload:
            payloads === 'random' ? rnd.bytes(JUNK_BYTES) : b64Window(rnd.u32() % (b64.length - JUNK_BYTES)),
        },
      );
    }
  } finally {
    w.close();
  }
}

export interface RealSequences {
  v4: string[];
  v6: string[];
}

/**
 * `count` packets in all; the real sequences' knocks are `gap` packets apart (well inside the
 * sequence timeout at any rate the sender reaches, and far fewer than the matcher's 65,536 tracked
 * sources, so a spoofed flood evicts no real attempt in progress).
 */
export function writeKnockFlood(file: string, wire: Wire, count: number, real: RealSequences): void {
  const link = linkOf(wire);
  const dst4 = ip4Bytes(wire.dst4);
  const dst6 = ip6Bytes(wire.dst6);
  const sources = [
    ...real.v4.map((s) => ({ s, family: 4 as const })),
    ...real.v6.map((s) => ({ s, family: 6 as const })),
  ];
  const gap = Math.max(1, Math.min(1000, Math.floor(count / (sources.length * 4 || 1))));
  const at = new Map<number, { s: string; family: 4 | 6; port: number }>();
  spread(sources.length, Math.max(1, count - 2 * gap)).forEach((p, k) =>
    KNOCK_PORTS.forEach((port, j) => at.set(p + j * gap, { ...sources[k]!, port })),
  );
  const rnd = new RandomPool();
  const src4 = Buffer.alloc(4);
  const src6 = Buffer.alloc(16);
  src6[0] = 0xfd;
  const w = new PcapWriter(file);
  try {
    for (let i = 0; i < count; i++) {
      const knock = at.get(i);
      const tcp = {
        proto: 'tcp' as const,
        srcPort: 1024 + (rnd.u32() % 60000),
        dstPort: KNOCK_PORTS[0]!,
        flags: TCP_SYN,
        seq: rnd.u32(),
      };
      if (knock) {
        tcp.dstPort = knock.port;
        const ep =
          knock.family === 4
            ? { family: 4 as const, src: ip4Bytes(knock.s), dst: dst4 }
            : { family: 6 as const, src: ip6Bytes(knock.s), dst: dst6 };
        w.frame(link, ep, tcp);
      } else if (i & 1) {
        spoofed4(rnd, src4);
        w.frame(link, { family: 4, src: src4, dst: dst4 }, tcp);
      } else {
        rnd.bytes(15).copy(src6, 1);
        if (src6[1] === 0 && src6[2] === 0x02 && src6[3] === 0x51) src6[3] = 0x50; // not fd00:251::/32
        w.frame(link, { family: 6, src: src6, dst: dst6 }, tcp);
      }
    }
  } finally {
    w.close();
  }
}
