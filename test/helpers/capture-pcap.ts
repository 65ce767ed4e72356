// Reading classic pcap files (what `tcpdump -w` writes) for tests: the link type and each record's
// time and bytes. Microsecond and nanosecond variants, either byte order. pcapng is not read.
//
//   global header (24 bytes): magic u32 | version 2+2 | thiszone | sigfigs | snaplen | linktype u32
//   record header (16 bytes): ts_sec u32 | ts_frac u32 | incl_len u32 | orig_len u32, then incl_len bytes

import { readFileSync } from 'node:fs';

export interface PcapRecord {
  /** Capture time, ms since the epoch. */
  at: number;
  data: Buffer;
}

export interface Pcap {
  linkType: number;
  records: PcapRecord[];
}

export function readPcap(path: string): Pcap {
  const buf = readFileSync(path);
  if (buf.length < 24) throw new Error(`${path}: too short for a pcap file`);
  const magicLe = buf.readUInt32LE(0);
  const magicBe = buf.readUInt32BE(0);
  const MICRO = 0xa1b2c3d4;
  const NANO = 0xa1b23c4d;
  let le: boolean;
  if (magicLe === MICRO || magicLe === NANO) le = true;
  else if (magicBe === MICRO || magicBe === NANO) le = false;
  else throw new Error(`${path}: not a classic pcap file (pcapng is not supported)`);
  const nano = (le ? magicLe : magicBe) === NANO;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20);
  const records: PcapRecord[] = [];
  let p = 24;
  while (p + 16 <= buf.length) {
    const sec = u32(p);
    const frac = u32(p + 4);
    const len = u32(p + 8);
    if (p + 16 + len > buf.length) throw new Error(`${path}: record at byte ${p} runs past the end`);
    records.push({
      at: sec * 1000 + Math.floor(nano ? frac / 1e6 : frac / 1e3),
      data: Buffer.from(buf.subarray(p + 16, p + 16 + len)),
    });
    p += 16 + len;
  }
  return { linkType, records };
}
