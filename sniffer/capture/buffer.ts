// The capture buffer's size bounds, apart from capture.ts so that the command line can check
// --buffer-size without loading libpcap's binding (cmd modules register options eagerly).

/**
 * libpcap's kernel buffer: default, and the bounds the option is checked against. The minimum is not
 * arbitrary: libpcap's TPACKET_V3 ring is made of blocks that each hold at least one snaplen-sized
 * frame (65535 bytes here, so 128 KiB blocks), and a buffer smaller than one block opens without
 * error but never delivers a packet (64 KiB was measured to capture nothing, 128 KiB to work; see
 * test/capture-open.test.ts). 256 KiB leaves room for two blocks.
 */
export const CAPTURE_BUFFER = {
  defaultBytes: 4 * 1024 * 1024,
  minBytes: 256 * 1024,
  maxBytes: 1024 * 1024 * 1024,
};
