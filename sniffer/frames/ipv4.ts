// IPv4 (RFC 791).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |Version|  IHL  |Type of Service|          Total Length         |  0
//  |         Identification        |Flags|      Fragment Offset    |  4   flags: 0 DF MF
//  |  Time to Live |    Protocol   |         Header Checksum       |  8
//  |                       Source Address                          | 12
//  |                    Destination Address                        | 16
//  |                    Options (IHL > 5)          |    Padding    | 20
//
// Fragments: knockgate does not reassemble. A non-first fragment (offset != 0) carries no transport
// header of its own and is never a knock. A first fragment with MF set is dropped as well (fail
// closed): its UDP payload is incomplete, so an SPA packet could not be checked, and a knock SYN is
// never fragmented by an honest client. Only unfragmented packets are decoded.
//
// The checksum is not verified (as knockd does not): the policy decision never rests on it.

import { IPPROTO_TCP, IPPROTO_UDP, u16, type DecodedFrame } from './frame.js';

const IPV4_MIN_HEADER = 20;
/** MF flag and the 13-bit fragment offset. */
const MF_OR_OFFSET = 0x3fff;

/** Decode the IPv4 header at `offset`. Returns the transport offset (f.l4End set), or -1. */
export function decodeIpv4(buf: Buffer, offset: number, end: number, f: DecodedFrame): number {
  if (end - offset < IPV4_MIN_HEADER) return -1;
  const first = buf[offset]!;
  if (first >> 4 !== 4) return -1;
  const headerLength = (first & 0x0f) * 4;
  if (headerLength < IPV4_MIN_HEADER) return -1;
  const totalLength = u16(buf, offset + 2);
  // Total length covers the header; a frame may carry padding after it, never less than it.
  if (totalLength < headerLength || offset + totalLength > end) return -1;
  if ((u16(buf, offset + 6) & MF_OR_OFFSET) !== 0) return -1;
  const proto = buf[offset + 9]!;
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return -1;
  f.family = 4;
  f.ipProto = proto;
  f.srcOffset = offset + 12;
  f.dstOffset = offset + 16;
  f.l4End = offset + totalLength;
  return offset + headerLength;
}
