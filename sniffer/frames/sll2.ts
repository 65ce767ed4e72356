// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276): what `tcpdump -i any` writes today.
//
//  0            2            4                        8            10     11     12                 20
//  +------------+------------+------------------------+------------+------+------+-----------------+----
//  | protocol   | reserved   | interface index        | ARPHRD type| pkt  | addr | link-layer addr | payload
//  | (EtherType)|            |                        |            | type | len  | (8)             |
//  +------------+------------+------------------------+------------+------+------+-----------------+----
//
// Packet type as in SLL v1 (4 = sent by us, dropped).

import { u16, type DecodedFrame } from './frame.js';
import { PACKET_OUTGOING } from './sll.js';
import { skipVlanTags } from './vlan.js';

const SLL2_HEADER = 20;

/** Returns the network layer's offset (f.etherType set), or -1. */
export function decodeSll2(buf: Buffer, end: number, f: DecodedFrame): number {
  if (end < SLL2_HEADER) return -1;
  if (buf[10] === PACKET_OUTGOING) return -1;
  return skipVlanTags(buf, SLL2_HEADER, end, u16(buf, 0), f);
}
