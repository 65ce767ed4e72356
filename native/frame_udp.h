// Finding the UDP payload of a captured frame, for the native SPA gate: the same rules as
// sniffer/frames (decode.ts and one file per layer there), UDP only.

#ifndef KNOCKGATE_FRAME_UDP_H
#define KNOCKGATE_FRAME_UDP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint16_t dst_port;
  const uint8_t *payload;
  size_t payload_len;
} udp_view;

// DLT numbers (sniffer/frames/link-type.ts).
#define KG_DLT_EN10MB 1
#define KG_DLT_RAW 101
#define KG_DLT_LINUX_SLL 113
#define KG_DLT_LINUX_SLL2 276

// 1 when the first `len` bytes of `frame` (link type `dlt`) hold an unfragmented UDP datagram over
// IPv4 or IPv6 that sniffer/frames would decode too; 0 for anything else (TCP included).
int frame_udp(const uint8_t *frame, size_t len, int dlt, udp_view *out);

#endif
