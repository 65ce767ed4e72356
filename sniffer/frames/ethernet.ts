// Ethernet II (DLT_EN10MB).
//
//  0                6               12         14
//  +----------------+----------------+----------+--------------
//  | destination MAC| source MAC     | EtherType| [VLAN tags] network layer ...
//  +----------------+----------------+----------+--------------
//
// Direction cannot be read from an Ethernet header; the capture filter (`dst host` the node's own
// addresses) keeps outbound traffic away.

import { u16, type DecodedFrame } from './frame.js';
import { skipVlanTags } from './vlan.js';

const ETHERNET_HEADER = 14;

/** Returns the network layer's offset (f.etherType set), or -1. */
export function decodeEthernet(buf: Buffer, end: number, f: DecodedFrame): number {
  if (end < ETHERNET_HEADER) return -1;
  return skipVlanTags(buf, ETHERNET_HEADER, end, u16(buf, 12), f);
}
