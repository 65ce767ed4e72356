// Frame decoding, in two steps so that packets nobody wants cost nothing:
//   decodeFrame()      link → network → transport headers into a reused DecodedFrame: offsets, ports,
//                      flags; no allocation, no exception on any input (every length is checked).
//   toInboundPacket()  for a candidate packet only: address strings and a payload view (no copy).
//
//   const frame = new DecodedFrame();
//   if (decodeFrame(buf, nbytes, LinkType.Ethernet, frame) && engine.wants(frame.ipProto, frame.dstPort))
//     engine.handle(toInboundPacket(frame, clock.now()));

import { formatIpv4, formatIpv6 } from './address.js';
import { decodeEthernet } from './ethernet.js';
import { IPPROTO_TCP, type DecodedFrame } from './frame.js';
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { LinkType } from './link-type.js';
import { decodeSll } from './sll.js';
import { decodeSll2 } from './sll2.js';
import { decodeTcp } from './tcp.js';
import { decodeUdp } from './udp.js';
import type { InboundPacket } from '../decision.js';

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;

/**
 * Decode the first `length` bytes of `buf` (a frame of type `link`) into `f`. Returns true for an
 * unfragmented TCP or UDP packet over IPv4 or IPv6 whose headers all fit; false for anything else.
 */
export function decodeFrame(buf: Buffer, length: number, link: LinkType, f: DecodedFrame): boolean {
  if (!Number.isInteger(length) || length <= 0) return false;
  const end = Math.min(length, buf.length);
  let l3: number;
  switch (link) {
    case LinkType.Ethernet:
      l3 = decodeEthernet(buf, end, f);
      break;
    case LinkType.LinuxSll:
      l3 = decodeSll(buf, end, f);
      break;
    case LinkType.LinuxSll2:
      l3 = decodeSll2(buf, end, f);
      break;
    case LinkType.Raw:
      // No link header: the IP version nibble says which network layer follows.
      if (end < 1) return false;
      f.etherType = buf[0]! >> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
      l3 = 0;
      break;
    default:
      return false;
  }
  if (l3 < 0) return false;
  let l4: number;
  if (f.etherType === ETHERTYPE_IPV4) l4 = decodeIpv4(buf, l3, end, f);
  else if (f.etherType === ETHERTYPE_IPV6) l4 = decodeIpv6(buf, l3, end, f);
  else return false;
  if (l4 < 0) return false;
  f.buf = buf;
  return f.ipProto === IPPROTO_TCP ? decodeTcp(buf, l4, f) : decodeUdp(buf, l4, f);
}

/** The validators' view of a decoded frame. The payload is a view into the capture buffer. */
export function toInboundPacket(f: DecodedFrame, at: number): InboundPacket {
  const v4 = f.family === 4;
  return {
    src: v4 ? formatIpv4(f.buf, f.srcOffset) : formatIpv6(f.buf, f.srcOffset),
    dst: v4 ? formatIpv4(f.buf, f.dstOffset) : formatIpv6(f.buf, f.dstOffset),
    family: f.family,
    proto: f.ipProto === IPPROTO_TCP ? 'tcp' : 'udp',
    srcPort: f.srcPort,
    dstPort: f.dstPort,
    tcpFlags: f.tcpFlags,
    payload: f.buf.subarray(f.payloadOffset, f.payloadEnd),
    at,
  };
}
