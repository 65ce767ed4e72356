// 802.1Q / 802.1ad VLAN tags, possibly stacked (QinQ), between a link header and the network layer.
//
//  +----------------+----------------+
//  | TPID (2 bytes) | TCI  (2 bytes) |   TPID is the EtherType that announced the tag:
//  +----------------+----------------+   0x8100 (802.1Q), 0x88a8 (802.1ad), 0x9100 (old QinQ)
//  | EtherType of what follows (2)   |   the TCI (priority, DEI, VLAN id) is not needed here
//
// Each tag is 4 bytes: the TCI, then the next EtherType. At most MAX_VLAN_TAGS are skipped.

import { u16, type DecodedFrame } from './frame.js';

export const MAX_VLAN_TAGS = 4;

export function isVlanTpid(etherType: number): boolean {
  return etherType === 0x8100 || etherType === 0x88a8 || etherType === 0x9100;
}

/**
 * `offset` points just past an EtherType field whose value is `etherType`. Skips any VLAN tags and
 * stores the final EtherType in f.etherType. Returns the network layer's offset, or -1.
 */
export function skipVlanTags(
  buf: Buffer,
  offset: number,
  end: number,
  etherType: number,
  f: DecodedFrame,
): number {
  let type = etherType;
  let p = offset;
  for (let tags = 0; isVlanTpid(type); tags++) {
    if (tags === MAX_VLAN_TAGS || p + 4 > end) return -1;
    type = u16(buf, p + 2);
    p += 4;
  }
  f.etherType = type;
  return p;
}
