// The UDP payload of a frame, decoded as sniffer/frames decodes it (the JavaScript decoder is the
// reference; see the layer diagrams there). Link: Ethernet II, Linux cooked v1/v2 (outgoing frames
// dropped), raw IP; up to 4 stacked VLAN tags (0x8100, 0x88a8, 0x9100). IPv4: IHL >= 5, total
// length within the frame, no fragment (MF or offset). IPv6: payload length within the frame and not
// 0 (no jumbograms), at most 8 extension headers (hop-by-hop, routing, destination options, atomic
// fragment, AH). UDP: length >= 8 and within the IP packet. Every length is checked before a read.

#include "frame_udp.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define IPPROTO_UDP_ 17
#define IPPROTO_TCP_ 6
#define MAX_VLAN_TAGS 4
#define MAX_EXTENSION_HEADERS 8
#define PACKET_OUTGOING 4

static unsigned u16(const uint8_t *p) { return ((unsigned)p[0] << 8) | p[1]; }

static int is_vlan_tpid(unsigned t) { return t == 0x8100 || t == 0x88a8 || t == 0x9100; }

// `off` is just past an EtherType field holding `type`: skip VLAN tags. Returns the network layer's
// offset (EtherType in *ether) or -1.
static long skip_vlan(const uint8_t *b, size_t end, size_t off, unsigned type, unsigned *ether) {
  for (int tags = 0; is_vlan_tpid(type); tags++) {
    if (tags == MAX_VLAN_TAGS || off + 4 > end) return -1;
    type = u16(b + off + 2);
    off += 4;
  }
  *ether = type;
  return (long)off;
}

// Returns the UDP header's offset and the IP packet's end, or -1.
static long ipv4(const uint8_t *b, size_t off, size_t end, size_t *l4_end) {
  if (end < off + 20) return -1;
  if (b[off] >> 4 != 4) return -1;
  size_t hl = (size_t)(b[off] & 0x0f) * 4;
  if (hl < 20) return -1;
  size_t total = u16(b + off + 2);
  if (total < hl || off + total > end) return -1;
  if ((u16(b + off + 6) & 0x3fff) != 0) return -1;
  if (b[off + 9] != IPPROTO_UDP_) return -1;
  *l4_end = off + total;
  return (long)(off + hl);
}

static long ipv6(const uint8_t *b, size_t off, size_t end, size_t *l4_end) {
  if (end < off + 40) return -1;
  if (b[off] >> 4 != 6) return -1;
  size_t plen = u16(b + off + 4);
  size_t pend = off + 40 + plen;
  if (plen == 0 || pend > end) return -1;
  unsigned next = b[off + 6];
  size_t p = off + 40;
  for (int skipped = 0; next != IPPROTO_TCP_ && next != IPPROTO_UDP_; skipped++) {
    if (skipped == MAX_EXTENSION_HEADERS || p + 8 > pend) return -1;
    size_t len;
    switch (next) {
      case 0:  // hop-by-hop
      case 43: // routing
      case 60: // destination options
        len = ((size_t)b[p + 1] + 1) * 8;
        break;
      case 44: // fragment: only an atomic one (offset 0, M clear)
        if ((u16(b + p + 2) & 0xfff9) != 0) return -1;
        len = 8;
        break;
      case 51: // authentication header
        len = ((size_t)b[p + 1] + 2) * 4;
        break;
      default:
        return -1;
    }
    if (p + len > pend) return -1;
    next = b[p];
    p += len;
  }
  if (next != IPPROTO_UDP_) return -1;
  *l4_end = pend;
  return (long)p;
}

int frame_udp(const uint8_t *b, size_t end, int dlt, udp_view *out) {
  if (end == 0) return 0;
  unsigned ether = 0;
  long l3;
  switch (dlt) {
    case KG_DLT_EN10MB:
      if (end < 14) return 0;
      l3 = skip_vlan(b, end, 14, u16(b + 12), &ether);
      break;
    case KG_DLT_LINUX_SLL:
      if (end < 16 || u16(b) == PACKET_OUTGOING) return 0;
      l3 = skip_vlan(b, end, 16, u16(b + 14), &ether);
      break;
    case KG_DLT_LINUX_SLL2:
      if (end < 20 || b[10] == PACKET_OUTGOING) return 0;
      l3 = skip_vlan(b, end, 20, u16(b), &ether);
      break;
    case KG_DLT_RAW:
      ether = b[0] >> 4 == 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
      l3 = 0;
      break;
    default:
      return 0;
  }
  if (l3 < 0) return 0;
  size_t l4_end = 0;
  long l4;
  if (ether == ETHERTYPE_IPV4)
    l4 = ipv4(b, (size_t)l3, end, &l4_end);
  else if (ether == ETHERTYPE_IPV6)
    l4 = ipv6(b, (size_t)l3, end, &l4_end);
  else
    return 0;
  if (l4 < 0 || l4_end < (size_t)l4 + 8) return 0;
  size_t ulen = u16(b + l4 + 4);
  if (ulen < 8 || (size_t)l4 + ulen > l4_end) return 0;
  out->dst_port = (uint16_t)u16(b + l4 + 2);
  out->payload = b + l4 + 8;
  out->payload_len = ulen - 8;
  return 1;
}
