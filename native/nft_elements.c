// Set element changes straight to the kernel over nfnetlink: one batch (one transaction) per call,
// built here and sent with one sendmsg. A grant's open is a few element changes; libnftables pays,
// for every call, a generation check and a dump of the tables, chains, sets and objects to build
// its cache (about ten netlink round trips) before it sends the same batch, which made it most of
// the time from a packet's decision to the kernel element. The whole table and large bursts still
// go through libnftables (nft_run.c): this path is for element changes only, to sets that exist.
//
//   nftElements(table, ops) -> "" on success, else one line naming the errno and the operation
//     ops: [{ op: 0 add | 1 delete, set: "grants4", family: 4 | 6, addresses: ["10.0.0.1"],
//             protos: [6 tcp | 17 udp], ports: [22], timeoutsMs: [60000] (add only) }]
//     one element per address, for sets keyed ipv4_addr|ipv6_addr . inet_proto . inet_service.
//     A malformed op throws (one line) and sends nothing.
//
// The wire format (linux/netfilter/nfnetlink.h, nf_tables.h), as nft itself sends it:
//   NFNL_MSG_BATCH_BEGIN          nfgenmsg{AF_UNSPEC, res_id = NFNL_SUBSYS_NFTABLES}
//   NFT_MSG_NEWSETELEM | DELSETELEM per op, NLM_F_REQUEST (| NLM_F_CREATE for add: no NLM_F_EXCL,
//       so adding an element that exists is not an error), nfgenmsg{NFPROTO_INET}
//     NFTA_SET_ELEM_LIST_TABLE    string (with its NUL)
//     NFTA_SET_ELEM_LIST_SET      string
//     NFTA_SET_ELEM_LIST_ELEMENTS nested
//       NFTA_LIST_ELEM            nested, per element
//         NFTA_SET_ELEM_KEY       nested { NFTA_DATA_VALUE: the key bytes }
//         NFTA_SET_ELEM_TIMEOUT   u64, big-endian, milliseconds (add only)
//   NFNL_MSG_BATCH_END
// A concatenated key (ipv4_addr . inet_proto . inet_service) is each field in its own 4-byte
// register: the address (4 or 16 bytes, network order), the protocol byte then 3 zero bytes, the
// port (2 bytes, network order) then 2 zero bytes: 12 bytes for IPv4, 24 for IPv6.
//
// Netlink requests to the kernel are handled inside sendmsg: when it returns, every answer is
// already queued on the socket. The batch is all or nothing (nf_tables aborts the transaction on
// the first error). Each op asks for an acknowledgement (NLM_F_ACK): success is an ack without
// error for every op, so a lost or unread answer is a failure, never taken for a change made (a
// delete taken for done while the element stayed would leave a port open).

#include "nft_elements.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <netinet/in.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// Bounds: what one call may ask (the callers send a few elements; bursts go through libnftables).
#define MAX_OPS 16
#define MAX_ELEMENTS 4096
#define MAX_NAME 64

typedef struct {
  uint8_t *buf;
  size_t len, cap;
  int failed;
} msgbuf;

static void *put(msgbuf *m, size_t n) {
  size_t need = m->len + NLMSG_ALIGN(n);
  if (m->failed) return NULL;
  if (need > m->cap) {
    size_t cap = m->cap ? m->cap : 4096;
    while (cap < need) cap *= 2;
    uint8_t *b = realloc(m->buf, cap);
    if (b == NULL) {
      m->failed = 1;
      return NULL;
    }
    m->buf = b;
    m->cap = cap;
  }
  void *p = m->buf + m->len;
  memset(p, 0, NLMSG_ALIGN(n));
  m->len = need;
  return p;
}

// Starts a message; returns its offset (the header is filled in at end_msg).
static size_t begin_msg(msgbuf *m, uint16_t type, uint16_t flags, uint32_t seq, uint8_t family, uint16_t res_id) {
  size_t at = m->len;
  struct nlmsghdr *h = put(m, sizeof *h);
  struct nfgenmsg *g = put(m, sizeof *g);
  if (h == NULL || g == NULL) return at;
  h = (struct nlmsghdr *)(m->buf + at);
  h->nlmsg_type = type;
  h->nlmsg_flags = flags;
  h->nlmsg_seq = seq;
  g = (struct nfgenmsg *)(m->buf + at + NLMSG_HDRLEN);
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  g->res_id = htons(res_id);
  return at;
}

static void end_msg(msgbuf *m, size_t at) {
  if (m->failed) return;
  ((struct nlmsghdr *)(m->buf + at))->nlmsg_len = (uint32_t)(m->len - at);
}

static void attr(msgbuf *m, uint16_t type, const void *data, size_t n) {
  size_t at = m->len;
  if (put(m, NLA_HDRLEN + n) == NULL) return;
  struct nlattr *a = (struct nlattr *)(m->buf + at);
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + n);
  memcpy((uint8_t *)a + NLA_HDRLEN, data, n);
}

static size_t nest_begin(msgbuf *m, uint16_t type) {
  size_t at = m->len;
  if (put(m, NLA_HDRLEN) == NULL) return at;
  ((struct nlattr *)(m->buf + at))->nla_type = type | NLA_F_NESTED;
  return at;
}

static void nest_end(msgbuf *m, size_t at) {
  if (m->failed) return;
  size_t n = m->len - at;
  if (n > 0xffff) {
    m->failed = 1; // an attribute's length is 16 bits: MAX_ELEMENTS keeps far below it
    return;
  }
  ((struct nlattr *)(m->buf + at))->nla_len = (uint16_t)n;
}

static int read_string(napi_env env, napi_value v, char *out, size_t cap) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) return 0;
  return len > 0 && len < cap - 1;
}

static int get_u32(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return 0;
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

static napi_value result(napi_env env, const char *text) {
  napi_value out;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out);
  return out;
}

static int get_array(napi_env env, napi_value obj, const char *name, napi_value *out, uint32_t *len) {
  bool is_array = false;
  if (napi_get_named_property(env, obj, name, out) != napi_ok) return 0;
  if (napi_is_array(env, *out, &is_array) != napi_ok || !is_array) return 0;
  return napi_get_array_length(env, *out, len) == napi_ok;
}

static int element_u32(napi_env env, napi_value arr, uint32_t i, uint32_t *out) {
  napi_value v;
  return napi_get_element(env, arr, i, &v) == napi_ok && napi_get_value_uint32(env, v, out) == napi_ok;
}

// The key of one element in the kernel's layout (see the header); returns its length, 0 if bad.
static size_t element_key(napi_env env, uint32_t family, napi_value addresses, napi_value protos,
                          napi_value ports, uint32_t i, uint8_t key[24]) {
  char text[INET6_ADDRSTRLEN];
  napi_value v;
  uint32_t proto, port;
  if (napi_get_element(env, addresses, i, &v) != napi_ok || !read_string(env, v, text, sizeof text)) return 0;
  if (!element_u32(env, protos, i, &proto) || (proto != IPPROTO_TCP && proto != IPPROTO_UDP)) return 0;
  if (!element_u32(env, ports, i, &port) || port < 1 || port > 65535) return 0;
  size_t addr_len = family == 4 ? 4 : 16;
  memset(key, 0, 24);
  if (inet_pton(family == 4 ? AF_INET : AF_INET6, text, key) != 1) return 0;
  key[addr_len] = (uint8_t)proto;
  uint16_t be = htons((uint16_t)port);
  memcpy(key + addr_len + 4, &be, 2);
  return addr_len + 8;
}

// Appends one op's message; returns NULL or why the op is malformed.
static const char *append_op(napi_env env, msgbuf *m, const char *table, napi_value op, uint32_t seq) {
  uint32_t kind, family, count, n_protos, n_ports, n_timeouts = 0;
  char set[MAX_NAME];
  napi_value v, addresses, protos, ports, timeouts = NULL;
  bool has_timeouts = false;
  if (!get_u32(env, op, "op", &kind) || kind > 1) return "op must be 0 (add) or 1 (delete)";
  if (napi_get_named_property(env, op, "set", &v) != napi_ok || !read_string(env, v, set, sizeof set))
    return "set must be a name of 1-62 bytes";
  if (!get_u32(env, op, "family", &family) || (family != 4 && family != 6)) return "family must be 4 or 6";
  if (!get_array(env, op, "addresses", &addresses, &count) || count == 0 || count > MAX_ELEMENTS)
    return "addresses must list 1-4096 addresses";
  if (!get_array(env, op, "protos", &protos, &n_protos) || n_protos != count ||
      !get_array(env, op, "ports", &ports, &n_ports) || n_ports != count)
    return "protos and ports must give one value per address";
  napi_has_named_property(env, op, "timeoutsMs", &has_timeouts);
  if (has_timeouts) {
    napi_valuetype t;
    napi_get_named_property(env, op, "timeoutsMs", &timeouts);
    napi_typeof(env, timeouts, &t);
    has_timeouts = t != napi_undefined;
  }
  if (kind == 1 && has_timeouts) return "a delete carries no timeouts";
  if (kind == 0 && !has_timeouts) return "an add needs its timeouts";
  if (has_timeouts && !get_array(env, op, "timeoutsMs", &timeouts, &n_timeouts)) return "timeoutsMs must be a list";
  if (has_timeouts && n_timeouts != count) return "timeoutsMs must give one timeout per address";

  uint16_t type = (NFNL_SUBSYS_NFTABLES << 8) | (kind == 0 ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
  uint16_t flags = NLM_F_REQUEST | NLM_F_ACK | (kind == 0 ? NLM_F_CREATE : 0);
  size_t at = begin_msg(m, type, flags, seq, NFPROTO_INET, 0);
  attr(m, NFTA_SET_ELEM_LIST_TABLE, table, strlen(table) + 1);
  attr(m, NFTA_SET_ELEM_LIST_SET, set, strlen(set) + 1);
  size_t list = nest_begin(m, NFTA_SET_ELEM_LIST_ELEMENTS);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t key_bytes[24];
    size_t key_len = element_key(env, family, addresses, protos, ports, i, key_bytes);
    if (key_len == 0) return "an element needs an address of its family, protocol 6 or 17, port 1-65535";
    size_t elem = nest_begin(m, NFTA_LIST_ELEM);
    size_t key = nest_begin(m, NFTA_SET_ELEM_KEY);
    attr(m, NFTA_DATA_VALUE, key_bytes, key_len);
    nest_end(m, key);
    if (has_timeouts) {
      napi_value t;
      double ms = -1;
      if (napi_get_element(env, timeouts, i, &t) != napi_ok || napi_get_value_double(env, t, &ms) != napi_ok ||
          !(ms >= 1 && ms <= 4294967295.0))
        return "each timeout must be 1 ms to 2^32-1 ms";
      uint64_t be = htobe64((uint64_t)ms);
      attr(m, NFTA_SET_ELEM_TIMEOUT, &be, sizeof be);
    }
    nest_end(m, elem);
  }
  nest_end(m, list);
  end_msg(m, at);
  return m->failed ? "out of memory or too many elements" : NULL;
}

static const char *op_name(uint16_t type) {
  return (type & 0xff) == NFT_MSG_DELSETELEM ? "delete element" : "add element";
}

static napi_value js_nft_elements(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char table[MAX_NAME], why[256];
  uint32_t n_ops = 0;
  bool is_array = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !read_string(env, argv[0], table, sizeof table)) {
    napi_throw_type_error(env, NULL, "nftElements: want a table name of 1-62 bytes");
    return NULL;
  }
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &n_ops) != napi_ok || n_ops == 0 || n_ops > MAX_OPS) {
    napi_throw_type_error(env, NULL, "nftElements: want 1-16 operations");
    return NULL;
  }

  msgbuf m = {0};
  uint32_t seq = 1;
  size_t begin = begin_msg(&m, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq++, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  end_msg(&m, begin);
  size_t offsets[MAX_OPS];
  for (uint32_t i = 0; i < n_ops; i++) {
    napi_value op;
    napi_get_element(env, argv[1], i, &op);
    offsets[i] = m.len;
    const char *bad = append_op(env, &m, table, op, seq++);
    if (bad != NULL) {
      free(m.buf);
      snprintf(why, sizeof why, "nftElements: operation %u: %s", i, bad);
      napi_throw_type_error(env, NULL, why);
      return NULL;
    }
  }
  size_t end = begin_msg(&m, NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq++, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  end_msg(&m, end);
  if (m.failed) {
    free(m.buf);
    return result(env, "nftables netlink: out of memory building the batch");
  }

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) {
    free(m.buf);
    snprintf(why, sizeof why, "nftables netlink: socket: %s", strerror(errno));
    return result(env, why);
  }
  // The kernel refuses a message larger than the send buffer; this path's batches are small, but
  // a few thousand elements exceed the default.
  int sndbuf = (int)(m.len * 2 + 4096);
  if (sndbuf > 212992) setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  // Errors carry only the request's header, not the whole request, so answers stay small.
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t sent = sendto(fd, m.buf, m.len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  int send_errno = errno;
  why[0] = '\0';
  if (sent < 0 || (size_t)sent != m.len) {
    snprintf(why, sizeof why, "nftables netlink: send: %s", sent < 0 ? strerror(send_errno) : "short write");
  } else {
    // Every answer is queued by now: read until the queue is empty, keep the first error.
    uint8_t rx[8192];
    uint32_t acked = 0;
    for (int rounds = 0; rounds < 64; rounds++) {
      ssize_t n = recv(fd, rx, sizeof rx, MSG_DONTWAIT);
      if (n <= 0) break;
      for (struct nlmsghdr *h = (struct nlmsghdr *)rx; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != NLMSG_ERROR || why[0] != '\0') continue;
        const struct nlmsgerr *e = NLMSG_DATA(h);
        if (e->error == 0) {
          acked++;
          continue;
        }
        // seq 2.. are the ops, in order.
        uint32_t i = h->nlmsg_seq >= 2 ? h->nlmsg_seq - 2 : 0;
        uint16_t type = i < n_ops ? ((struct nlmsghdr *)(m.buf + offsets[i]))->nlmsg_type : 0;
        snprintf(why, sizeof why, "nftables netlink: %s (operation %u) refused: %s", op_name(type), i,
                 strerror(-e->error));
      }
    }
    if (why[0] == '\0' && acked != n_ops)
      snprintf(why, sizeof why, "nftables netlink: %u of %u operations acknowledged", acked, n_ops);
  }
  close(fd);
  free(m.buf);
  return result(env, why);
}

void nft_elements_register(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "nftElements", NAPI_AUTO_LENGTH, js_nft_elements, NULL, &fn);
  napi_set_named_property(env, exports, "nftElements", fn);
}
