// UDP (RFC 768).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          Source Port          |       Destination Port        |  0
//  |            Length             |           Checksum            |  4
//  |                          payload ...                          |  8
//
// Length covers header and payload. It must fit inside the IP packet; a shorter length than the IP
// packet leaves trailing bytes that are not payload. Length 0 (IPv6 jumbograms) is refused.

import { u16, type DecodedFrame } from './frame.js';

const UDP_HEADER = 8;

/** Decode the UDP header at `offset` up to f.l4End. Returns false when it does not fit. */
export function decodeUdp(buf: Buffer, offset: number, f: DecodedFrame): boolean {
  if (f.l4End - offset < UDP_HEADER) return false;
  const length = u16(buf, offset + 4);
  if (length < UDP_HEADER || offset + length > f.l4End) return false;
  f.l4Offset = offset;
  f.srcPort = u16(buf, offset);
  f.dstPort = u16(buf, offset + 2);
  f.tcpFlags = 0;
  f.payloadOffset = offset + UDP_HEADER;
  f.payloadEnd = offset + length;
  return true;
}
