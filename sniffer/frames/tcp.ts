// TCP (RFC 9293): ports, flags and where the payload starts.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          Source Port          |       Destination Port        |  0
//  |                        Sequence Number                        |  4
//  |                    Acknowledgment Number                      |  8
//  |  Data |       |C|E|U|A|P|R|S|F|                               |
//  | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             | 12
//  |           Checksum            |         Urgent Pointer        | 16
//  |                    Options (Data Offset > 5)                  | 20
//
// The segment ends where the IP packet ends (f.l4End), not where the frame ends.

import { u16, type DecodedFrame } from './frame.js';

const TCP_MIN_HEADER = 20;

/** Decode the TCP header at `offset` up to f.l4End. Returns false when it does not fit. */
export function decodeTcp(buf: Buffer, offset: number, f: DecodedFrame): boolean {
  const segmentLength = f.l4End - offset;
  if (segmentLength < TCP_MIN_HEADER) return false;
  const headerLength = (buf[offset + 12]! >> 4) * 4;
  if (headerLength < TCP_MIN_HEADER || headerLength > segmentLength) return false;
  f.l4Offset = offset;
  f.srcPort = u16(buf, offset);
  f.dstPort = u16(buf, offset + 2);
  f.tcpFlags = buf[offset + 13]!;
  f.payloadOffset = offset + headerLength;
  f.payloadEnd = f.l4End;
  return true;
}
