// The capture buffer's and snap length's bounds, apart from capture.ts so that the command line can
// check --buffer-size without loading the capture addon (cmd modules register options eagerly).

import { SPA_LIMITS } from '../spa/limits.js';

/**
 * libpcap's kernel buffer: default, and the bounds the option is checked against. In immediate mode
 * libpcap uses a TPACKET_V2 ring of snaplen-sized slots (2 KiB each with CAPTURE_SNAPLEN's default,
 * so the default 2 MiB holds 1,024 packets; cap's fixed 65535-byte snap length made them 64 KiB, 64
 * packets). The ring is resident from the start, so it is part of the idle RSS target (64 MiB);
 * 2 MiB kept the flood figures of 4 MiB (bench/README.md, 2026-12-07: junk flood 50/50 at 0 %
 * drops, base64 junk flood 50/50 at 0 %, knock flood 50/50 at 2.1 %). 256 KiB still holds over a
 * hundred packets of the largest snap length.
 */
export const CAPTURE_BUFFER = {
  defaultBytes: 2 * 1024 * 1024,
  minBytes: 256 * 1024,
  maxBytes: 1024 * 1024 * 1024,
};

/**
 * libpcap's TPACKET_V2 slot overhead ahead of the snapped bytes (pcap-linux.c): the frame is
 * TPACKET_ALIGN(TPACKET_ALIGN(TPACKET2_HDRLEN + max(maclen, 16)) + VLAN reserve - maclen + snaplen),
 * 70 bytes for Ethernet and for Linux cooked SLL2 alike.
 */
const TPACKET_SLOT_OVERHEAD = 70;

/**
 * Bytes kept of each packet. It must hold the largest SPA packet the codec accepts whole: its
 * encoded message, UDP (8), IPv6 (40), an 802.1Q tag (4) and the largest link header (Ethernet 14,
 * Linux cooked SLL2 20) — 1,572 bytes. The default is the largest snap length whose ring slot is
 * exactly 2 KiB: slots never span pages, so a 2,049-byte slot takes a whole 4 KiB page (the ring's
 * resident memory doubles for nothing) while two 2 KiB slots share one. bench/ memory: 4 MiB of
 * ring where a 2,048-byte snap length made it 7.7 MiB (1,971 slots; now 2,048). Knock packets need
 * only their headers.
 */
export const CAPTURE_SNAPLEN = {
  defaultBytes: Math.max(SPA_LIMITS.maxEncodedMsgSize + 8 + 40 + 4 + 20, 2048 - TPACKET_SLOT_OVERHEAD),
  minBytes: 128,
  maxBytes: 65_535,
};
