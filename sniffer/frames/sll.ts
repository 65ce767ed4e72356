// Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113): what the `any` device gives.
//
//  0            2            4            6                      14           16
//  +------------+------------+------------+----------------------+------------+-------
//  | packet type| ARPHRD type| addr length| link-layer addr (8)  | protocol   | payload
//  +------------+------------+------------+----------------------+------------+-------
//
// Packet type: 0 to us, 1 broadcast, 2 multicast, 3 to another host, 4 sent by us. Only frames that
// were received (0-3) are decoded; outgoing ones (4) are dropped. Protocol is an EtherType for the
// frames that matter here (and may announce VLAN tags).

import { u16, type DecodedFrame } from './frame.js';
import { skipVlanTags } from './vlan.js';

const SLL_HEADER = 16;
export const PACKET_OUTGOING = 4;

/** Returns the network layer's offset (f.etherType set), or -1. */
export function decodeSll(buf: Buffer, end: number, f: DecodedFrame): number {
  if (end < SLL_HEADER) return -1;
  if (u16(buf, 0) === PACKET_OUTGOING) return -1;
  return skipVlanTags(buf, SLL_HEADER, end, u16(buf, 14), f);
}
