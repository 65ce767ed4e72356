// IPv6 (RFC 8200) and the extension headers between it and TCP/UDP.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |Version| Traffic Class |           Flow Label                  |  0
//  |         Payload Length        |  Next Header  |   Hop Limit   |  4
//  |                Source Address (16 bytes)                      |  8
//  |             Destination Address (16 bytes)                    | 24
//  +---------------------------------------------------------------+ 40
//
// Extension headers skipped (at most MAX_EXTENSION_HEADERS of them):
//   Hop-by-Hop (0), Routing (43), Destination Options (60):
//       | Next Header | Hdr Ext Len | ...   length = (Hdr Ext Len + 1) * 8
//   Fragment (44):
//       | Next Header | Reserved | Fragment Offset (13 bits) |Res|M| Identification (4) |   8 bytes
//   Authentication Header (51):
//       | Next Header | Payload Len | ...   length = (Payload Len + 2) * 4
// Anything else (ESP, No Next Header, mobility...) ends decoding: no transport header to read.
//
// Fragments, as for IPv4: no reassembly. A non-first fragment is never a knock; a first fragment with
// M set is dropped too (fail closed). An atomic fragment (offset 0, M clear) is decoded.
// Jumbograms (payload length 0 with a Jumbo option) are dropped: knocks and SPA packets are small.

import { IPPROTO_TCP, IPPROTO_UDP, u16, type DecodedFrame } from './frame.js';

const IPV6_HEADER = 40;
export const MAX_EXTENSION_HEADERS = 8;

const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const AUTHENTICATION = 51;
const DESTINATION_OPTIONS = 60;

/** Decode the IPv6 header at `offset`. Returns the transport offset (f.l4End set), or -1. */
export function decodeIpv6(buf: Buffer, offset: number, end: number, f: DecodedFrame): number {
  if (end - offset < IPV6_HEADER) return -1;
  if (buf[offset]! >> 4 !== 6) return -1;
  const payloadLength = u16(buf, offset + 4);
  const packetEnd = offset + IPV6_HEADER + payloadLength;
  if (payloadLength === 0 || packetEnd > end) return -1;
  let next = buf[offset + 6]!;
  let p = offset + IPV6_HEADER;
  for (let skipped = 0; next !== IPPROTO_TCP && next !== IPPROTO_UDP; skipped++) {
    if (skipped === MAX_EXTENSION_HEADERS) return -1;
    if (p + 8 > packetEnd) return -1; // every extension header is at least 8 bytes
    let length: number;
    switch (next) {
      case HOP_BY_HOP:
      case ROUTING:
      case DESTINATION_OPTIONS:
        length = (buf[p + 1]! + 1) * 8;
        break;
      case FRAGMENT:
        // Offset (13 bits) and M (lowest bit) share one 16-bit field: any bit but the 2 reserved
        // ones set means a fragment other than an atomic one.
        if ((u16(buf, p + 2) & 0xfff9) !== 0) return -1;
        length = 8;
        break;
      case AUTHENTICATION:
        length = (buf[p + 1]! + 2) * 4;
        break;
      default:
        return -1;
    }
    if (p + length > packetEnd) return -1;
    next = buf[p]!;
    p += length;
  }
  f.family = 6;
  f.ipProto = next;
  f.srcOffset = offset + 8;
  f.dstOffset = offset + 24;
  f.l4End = packetEnd;
  return p;
}
