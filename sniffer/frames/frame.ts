// The scratch record every decoder layer writes into. One DecodedFrame is reused for every packet a
// capture sees, so decoding allocates nothing: it records offsets into the capture buffer, ports and
// flags. Strings (addresses) and the payload view are made only for a candidate packet, in
// toInboundPacket() (decode.ts).

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export class DecodedFrame {
  /** The capture buffer the offsets below point into. */
  buf: Buffer = Buffer.alloc(0);
  /** EtherType of the network layer, as found by the link layer (0x0800, 0x86dd). */
  etherType = 0;
  family: 4 | 6 = 4;
  /** IPPROTO_TCP or IPPROTO_UDP. */
  ipProto = 0;
  /** Offsets of the source and destination addresses (4 or 16 bytes). */
  srcOffset = 0;
  dstOffset = 0;
  /** The transport segment: [l4Offset, l4End), l4End being the end of the IP packet (not the frame). */
  l4Offset = 0;
  l4End = 0;
  srcPort = 0;
  dstPort = 0;
  /** TCP flags byte (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20); 0 for UDP. */
  tcpFlags = 0;
  /** The transport payload: [payloadOffset, payloadEnd). */
  payloadOffset = 0;
  payloadEnd = 0;
}

/** Read a big-endian 16-bit value; the caller has checked that offset + 2 <= end. */
export function u16(buf: Buffer, offset: number): number {
  return (buf[offset]! << 8) | buf[offset + 1]!;
}
