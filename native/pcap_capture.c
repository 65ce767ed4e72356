// knockgate's capture addon: libpcap opened with a settable snap length (cap hard-codes 65535, which
// makes libpcap's ring slots 64 KiB each: a 4 MiB buffer then holds only 64 packets), polled on the
// event loop with uv_poll, packets handed to JavaScript in batches inside one reusable buffer (one
// call per batch, no allocation per packet), pcap_stats for exact drop counts, and the native SPA
// gate (spa_gate.c): on the SPA ports given by setSpaKeys, a packet no key authenticates is counted
// by reason and dropped here, in the batch, before JavaScript sees it.
//
//   const h = new PcapHandle();
//   h.setSpaKeys([{ port, keys: [{ hmacType, key, allowMissingHmac }] }])   // any time; atomic
//   const dlt = h.open(device, filter, snaplen, bufferBytes, batchBuffer, onBatch);
//   onBatch(count, usedBytes, error?)   // records: u32 caplen, u32 wire length, u32 SPA match,
//                                       // u32 capture time s, u32 its µs (the kernel's receive
//                                       // timestamp), caplen bytes, pad to 4 (SPA match: 0 = not
//                                       // inspected, else 0x80000000 | bit i per key i that
//                                       // authenticated it)
//   h.stats()  -> { received, dropped, interfaceDropped } | undefined once closed
//   h.spaStats() -> { notSpa, saltedPrefix, missingHmac, badHmac, passed } since the handle was made
//   h.close()  // idempotent; also done when the handle is garbage collected
//   spaInspect(ports, frame, length, dlt) -> { inspected, mask?, reason? }   // the gate on one frame
//   spaLimits() -> the bounds of spa_limits.h
//
// Nothing here prints, and no error message holds key material.
//
// Plain node_api.h (C): no header download, no extra npm dependency.

#include <node_api.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "frame_udp.h"
#include "mem_trim.h"
#include "nft_elements.h"
#include "nft_run.h"
#include "spa_gate.h"
#include "spa_open.h"

#define RECORD_HEADER 20
// Batches per readable event before the event loop gets a turn (uv_poll is level-triggered: what is
// left is read on the next turn).
#define MAX_BATCHES_PER_EVENT 32
// Under a flood (HOLDOFF_PACKETS or more read within one HOLDOFF_WINDOW_NS) the poll is paused for
// HOLDOFF_MS after each readable event, so a flood costs one wakeup per HOLDOFF_MS instead of one per
// packet or two (each wakeup is a few microseconds of epoll, libuv and libpcap); the default ring
// holds ~2,000 packets, 2 ms of a 200k packets/s flood ~400. Ordinary traffic - a knock sequence, an
// SPA packet - stays below the threshold and is read at once.
#define HOLDOFF_PACKETS 64
#define HOLDOFF_WINDOW_NS 1000000u
#define HOLDOFF_MS 2

typedef struct {
  napi_env env;
  pcap_t *pcap;
  uv_poll_t *poll;
  uv_timer_t *holdoff;
  uint64_t window_start_ns;
  uint32_t window_packets;
  napi_ref on_batch;
  napi_ref batch_ref;
  napi_async_context async_ctx;
  uint8_t *batch;
  size_t batch_len;
  size_t used;
  uint32_t count;
  uint32_t snaplen;
  size_t slot; // bytes one record can take at most
  int in_callback; // onBatch is running: its async context is destroyed after it returns
  int dlt;
  spa_table *spa; // NULL: no SPA port gated
  double spa_refused[SPA_REASONS];
  double spa_passed;
  char device[64];
} Handle;

static void throw_error(napi_env env, const char *msg) { napi_throw_error(env, NULL, msg); }

// One line: newlines and tabs from libpcap's messages become spaces.
static void one_line(char *s) {
  for (; *s; s++)
    if (*s == '\n' || *s == '\r' || *s == '\t') *s = ' ';
}

static void throw_pcap(napi_env env, const char *device, const char *what, const char *detail) {
  char msg[PCAP_ERRBUF_SIZE + 256];
  snprintf(msg, sizeof msg, "cannot capture on %s: %s%s%s", device, what, detail && *detail ? ": " : "",
           detail ? detail : "");
  one_line(msg);
  throw_error(env, msg);
}

static void free_poll(uv_handle_t *h) { free(h); }

// Releases libpcap, the poll handle and the JS references. Safe to call more than once, from close()
// or from the finalizer.
static void release(Handle *hd) {
  if (hd->holdoff) {
    uv_timer_stop(hd->holdoff);
    uv_close((uv_handle_t *)hd->holdoff, free_poll);
    hd->holdoff = NULL;
  }
  if (hd->poll) {
    uv_poll_stop(hd->poll);
    uv_close((uv_handle_t *)hd->poll, free_poll);
    hd->poll = NULL;
  }
  if (hd->pcap) {
    pcap_close(hd->pcap);
    hd->pcap = NULL;
  }
  if (hd->on_batch) {
    napi_delete_reference(hd->env, hd->on_batch);
    hd->on_batch = NULL;
  }
  if (hd->batch_ref) {
    napi_delete_reference(hd->env, hd->batch_ref);
    hd->batch_ref = NULL;
  }
  if (hd->async_ctx && !hd->in_callback) {
    napi_async_destroy(hd->env, hd->async_ctx);
    hd->async_ctx = NULL;
  }
  hd->batch = NULL;
  hd->batch_len = 0;
  spa_table_free(hd->spa);
  hd->spa = NULL;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Handle *hd = data;
  release(hd);
  free(hd);
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes) {
  Handle *hd = (Handle *)user;
  uint32_t caplen = h->caplen > hd->snaplen ? hd->snaplen : h->caplen;
  size_t need = RECORD_HEADER + ((caplen + 3u) & ~3u);
  if (hd->batch == NULL || hd->used + need > hd->batch_len) return; // cannot happen: dispatch is bounded
  uint32_t match = 0;
  udp_view udp;
  if (hd->spa && frame_udp(bytes, caplen, hd->dlt, &udp) && spa_table_has_port(hd->spa, udp.dst_port)) {
    spa_reason reason;
    match = spa_check(hd->spa, udp.dst_port, udp.payload, udp.payload_len, &reason);
    if (match == 0) {
      hd->spa_refused[reason]++;
      return;
    }
    hd->spa_passed++;
  }
  uint8_t *p = hd->batch + hd->used;
  uint32_t wire = h->len;
  memcpy(p, &caplen, 4);
  memcpy(p + 4, &wire, 4);
  memcpy(p + 8, &match, 4);
  uint32_t sec = (uint32_t)h->ts.tv_sec, usec = (uint32_t)h->ts.tv_usec;
  memcpy(p + 12, &sec, 4);
  memcpy(p + 16, &usec, 4);
  memcpy(p + RECORD_HEADER, bytes, caplen);
  hd->used += need;
  hd->count++;
}

// Calls onBatch(count, used[, error]) and resets the batch. Returns 0 when the handle is still open.
static int flush(Handle *hd, const char *error) {
  if ((hd->count == 0 && error == NULL) || hd->on_batch == NULL) return hd->pcap == NULL;
  napi_env env = hd->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return 1;
  napi_value cb, recv, argv[3], result;
  size_t argc = 2;
  napi_get_reference_value(env, hd->on_batch, &cb);
  napi_get_global(env, &recv); // napi_make_callback needs an object receiver
  napi_create_uint32(env, hd->count, &argv[0]);
  napi_create_uint32(env, (uint32_t)hd->used, &argv[1]);
  if (error) {
    napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &argv[2]);
    argc = 3;
  }
  hd->count = 0;
  hd->used = 0;
  hd->in_callback = 1;
  napi_status st = napi_make_callback(env, hd->async_ctx, recv, cb, argc, argv, &result);
  hd->in_callback = 0;
  if (hd->pcap == NULL) release(hd); // closed from onBatch: finish what release() deferred
  if (st == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc); // 'uncaughtException', as for any callback
  }
  napi_close_handle_scope(env, scope);
  return hd->pcap == NULL; // onBatch may have closed the handle
}

static void on_readable(uv_poll_t *poll, int status, int events);

static void on_holdoff(uv_timer_t *t) {
  Handle *hd = t->data;
  if (hd == NULL || hd->poll == NULL || hd->pcap == NULL) return;
  uv_poll_start(hd->poll, UV_READABLE, on_readable);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  Handle *hd = poll->data;
  if (hd == NULL || hd->pcap == NULL) return;
  if (status < 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "capture on %s failed: %s", hd->device, uv_strerror(status));
    uv_poll_stop(poll);
    flush(hd, msg);
    return;
  }
  uint32_t read = 0;
  for (int batches = 0; batches < MAX_BATCHES_PER_EVENT; batches++) {
    int room = (int)((hd->batch_len - hd->used) / hd->slot);
    if (room == 0) {
      if (flush(hd, NULL)) return;
      continue;
    }
    int n = pcap_dispatch(hd->pcap, room, on_packet, (u_char *)hd);
    if (n < 0) {
      char msg[PCAP_ERRBUF_SIZE + 128];
      snprintf(msg, sizeof msg, "capture on %s failed: %s", hd->device,
               n == PCAP_ERROR_BREAK ? "interrupted" : pcap_geterr(hd->pcap));
      one_line(msg);
      uv_poll_stop(hd->poll);
      flush(hd, msg);
      return;
    }
    if (n == 0) break;
    read += (uint32_t)n;
  }
  if (flush(hd, NULL)) return;
  uint64_t now = uv_hrtime();
  if (now - hd->window_start_ns > HOLDOFF_WINDOW_NS) {
    hd->window_start_ns = now;
    hd->window_packets = 0;
  }
  hd->window_packets += read;
  if (hd->holdoff && hd->poll && hd->window_packets >= HOLDOFF_PACKETS) {
    uv_poll_stop(hd->poll);
    uv_timer_start(hd->holdoff, on_holdoff, HOLDOFF_MS, 0);
  }
}

static Handle *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    throw_error(env, "PcapHandle method called on a wrong object");
    return NULL;
  }
  return data;
}

static int get_string(napi_env env, napi_value v, char *out, size_t len, const char *what) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, out, len, &n) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a string", what);
    throw_error(env, msg);
    return 0;
  }
  if (n + 1 >= len) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s is too long", what);
    throw_error(env, msg);
    return 0;
  }
  return 1;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], self;
  Handle *hd = unwrap(env, info, &argc, argv);
  if (hd == NULL) return NULL;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  if (hd->pcap != NULL) {
    throw_error(env, "capture handle is already open");
    return NULL;
  }
  if (argc < 6) {
    throw_error(env, "open(device, filter, snaplen, bufferBytes, batchBuffer, onBatch)");
    return NULL;
  }
  char device[64];
  if (!get_string(env, argv[0], device, sizeof device, "device")) return NULL;
  size_t filter_len;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &filter_len) != napi_ok) {
    throw_error(env, "filter must be a string");
    return NULL;
  }
  char *filter = malloc(filter_len + 1);
  if (!filter) {
    throw_error(env, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[1], filter, filter_len + 1, &filter_len);
  uint32_t snaplen = 0, buffer_bytes = 0;
  napi_get_value_uint32(env, argv[2], &snaplen);
  napi_get_value_uint32(env, argv[3], &buffer_bytes);
  bool is_buffer = false, is_fn = false;
  napi_valuetype t;
  napi_is_buffer(env, argv[4], &is_buffer);
  napi_typeof(env, argv[5], &t);
  is_fn = t == napi_function;
  void *batch = NULL;
  size_t batch_len = 0;
  if (is_buffer) napi_get_buffer_info(env, argv[4], &batch, &batch_len);
  size_t slot = RECORD_HEADER + ((snaplen + 3u) & ~3u);
  if (snaplen < 64 || snaplen > 262144 || !is_buffer || !is_fn || batch_len < slot) {
    free(filter);
    throw_pcap(env, device, "bad arguments", "snaplen 64-262144, a batch buffer holding one snaplen, a callback");
    return NULL;
  }

  char errbuf[PCAP_ERRBUF_SIZE] = "";
  pcap_t *p = pcap_create(device, errbuf);
  if (p == NULL) {
    free(filter);
    throw_pcap(env, device, "pcap_create", errbuf);
    return NULL;
  }
  // Inbound packets to the node's own addresses only: no promiscuous mode.
  pcap_set_snaplen(p, (int)snaplen);
  pcap_set_promisc(p, 0);
  pcap_set_buffer_size(p, (int)buffer_bytes);
  pcap_set_immediate_mode(p, 1);
  int rc = pcap_activate(p);
  if (rc < 0) {
    char detail[PCAP_ERRBUF_SIZE];
    snprintf(detail, sizeof detail, "%s", *pcap_geterr(p) ? pcap_geterr(p) : pcap_statustostr(rc));
    pcap_close(p);
    free(filter);
    throw_pcap(env, device, "cannot open", detail);
    return NULL;
  }
  struct bpf_program prog;
  if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
    char detail[PCAP_ERRBUF_SIZE];
    snprintf(detail, sizeof detail, "%s", pcap_geterr(p));
    pcap_close(p);
    free(filter);
    throw_pcap(env, device, "bad filter", detail);
    return NULL;
  }
  free(filter);
  rc = pcap_setfilter(p, &prog);
  pcap_freecode(&prog);
  if (rc != 0 || pcap_setnonblock(p, 1, errbuf) != 0) {
    char detail[PCAP_ERRBUF_SIZE];
    snprintf(detail, sizeof detail, "%s", rc != 0 ? pcap_geterr(p) : errbuf);
    pcap_close(p);
    throw_pcap(env, device, rc != 0 ? "cannot set the filter" : "cannot make the capture nonblocking", detail);
    return NULL;
  }
  int fd = pcap_get_selectable_fd(p);
  uv_loop_t *loop = NULL;
  uv_poll_t *poll = malloc(sizeof *poll);
  if (fd < 0 || poll == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok ||
      uv_poll_init(loop, poll, fd) != 0) {
    free(poll);
    pcap_close(p);
    throw_pcap(env, device, "cannot poll the capture", NULL);
    return NULL;
  }
  poll->data = hd;
  uv_timer_t *holdoff = malloc(sizeof *holdoff);
  if (holdoff == NULL || uv_timer_init(loop, holdoff) != 0) {
    free(holdoff);
    holdoff = NULL; // no hold-off: every readable event is handled at once
  } else {
    holdoff->data = hd; // while it runs (the poll paused) it keeps the loop alive in the poll's place
  }
  hd->holdoff = holdoff;
  hd->env = env;
  hd->pcap = p;
  hd->poll = poll;
  hd->batch = batch;
  hd->batch_len = batch_len;
  hd->used = 0;
  hd->count = 0;
  hd->snaplen = snaplen;
  hd->slot = slot;
  hd->dlt = pcap_datalink(p);
  snprintf(hd->device, sizeof hd->device, "%s", device);
  napi_create_reference(env, argv[5], 1, &hd->on_batch);
  napi_create_reference(env, argv[4], 1, &hd->batch_ref);
  napi_value name;
  napi_create_string_utf8(env, "knockgate:capture", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &hd->async_ctx);
  if (uv_poll_start(poll, UV_READABLE, on_readable) != 0) {
    release(hd);
    throw_pcap(env, device, "cannot poll the capture", NULL);
    return NULL;
  }
  napi_value out;
  napi_create_int32(env, pcap_datalink(p), &out);
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Handle *hd = unwrap(env, info, &argc, NULL);
  if (hd) release(hd);
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Handle *hd = unwrap(env, info, &argc, NULL);
  napi_value out, v;
  if (hd == NULL) return NULL;
  if (hd->pcap == NULL) {
    napi_get_undefined(env, &out);
    return out;
  }
  struct pcap_stat ps;
  if (pcap_stats(hd->pcap, &ps) != 0) {
    throw_pcap(env, hd->device, "pcap_stats", pcap_geterr(hd->pcap));
    return NULL;
  }
  napi_create_object(env, &out);
  napi_create_uint32(env, ps.ps_recv, &v);
  napi_set_named_property(env, out, "received", v);
  napi_create_uint32(env, ps.ps_drop, &v);
  napi_set_named_property(env, out, "dropped", v);
  napi_create_uint32(env, ps.ps_ifdrop, &v);
  napi_set_named_property(env, out, "interfaceDropped", v);
  return out;
}

// [{ port, keys: [{ hmacType, key?, allowMissingHmac? }] }] -> a new table, or NULL with an
// exception pending (one line, never key material).
static spa_table *build_spa_table(napi_env env, napi_value ports) {
  bool is_array = false;
  uint32_t nports = 0;
  napi_is_array(env, ports, &is_array);
  if (!is_array || napi_get_array_length(env, ports, &nports) != napi_ok) {
    throw_error(env, "SPA keys must be an array of { port, keys }");
    return NULL;
  }
  spa_table *t = spa_table_new();
  if (t == NULL) {
    throw_error(env, "out of memory");
    return NULL;
  }
  char msg[160];
  for (uint32_t i = 0; i < nports; i++) {
    napi_value entry, v, keys;
    uint32_t port = 0, nkeys = 0;
    bool keys_array = false;
    napi_get_element(env, ports, i, &entry);
    if (napi_get_named_property(env, entry, "port", &v) != napi_ok ||
        napi_get_value_uint32(env, v, &port) != napi_ok || port < 1 || port > 65535 ||
        napi_get_named_property(env, entry, "keys", &keys) != napi_ok ||
        napi_is_array(env, keys, &keys_array) != napi_ok || !keys_array ||
        napi_get_array_length(env, keys, &nkeys) != napi_ok) {
      snprintf(msg, sizeof msg, "SPA keys entry %u: needs a port 1-65535 and an array of keys", i);
      goto fail;
    }
    for (uint32_t j = 0; j < nkeys; j++) {
      napi_value key_entry, kv;
      uint32_t hmac_type = 0;
      bool allow = false, is_buffer = false, has_key = false;
      void *key = NULL;
      size_t key_len = 0;
      napi_get_element(env, keys, j, &key_entry);
      if (napi_get_named_property(env, key_entry, "hmacType", &kv) != napi_ok ||
          napi_get_value_uint32(env, kv, &hmac_type) != napi_ok || hmac_type > SPA_HMAC_SHA3_512) {
        snprintf(msg, sizeof msg, "SPA port %u key %u: hmacType must be 0-7", port, j);
        goto fail;
      }
      napi_has_named_property(env, key_entry, "key", &has_key);
      if (has_key && napi_get_named_property(env, key_entry, "key", &kv) == napi_ok) {
        napi_valuetype type;
        napi_typeof(env, kv, &type);
        if (type != napi_undefined) {
          napi_is_buffer(env, kv, &is_buffer);
          if (!is_buffer) {
            snprintf(msg, sizeof msg, "SPA port %u key %u: key must be a Buffer", port, j);
            goto fail;
          }
          napi_get_buffer_info(env, kv, &key, &key_len);
        }
      }
      if (napi_get_named_property(env, key_entry, "allowMissingHmac", &kv) == napi_ok)
        napi_get_value_bool(env, kv, &allow); // not a boolean: stays false
      const char *err = spa_table_add(t, (uint16_t)port, (int)hmac_type, key, key_len, allow);
      if (err) {
        snprintf(msg, sizeof msg, "SPA port %u key %u: %s", port, j, err);
        goto fail;
      }
    }
  }
  return t;
fail:
  spa_table_free(t);
  throw_error(env, msg);
  return NULL;
}

// setSpaKeys(ports): the new key set replaces the old one whole, or (on a bad entry) nothing
// changes. An empty array gates nothing. Runs on the event loop like the batches, so a batch is
// checked against one key set.
static napi_value js_set_spa_keys(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Handle *hd = unwrap(env, info, &argc, argv);
  if (hd == NULL) return NULL;
  if (argc < 1) {
    throw_error(env, "setSpaKeys(ports)");
    return NULL;
  }
  spa_table *t = build_spa_table(env, argv[0]);
  if (t == NULL) return NULL;
  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  spa_table *old = hd->spa;
  hd->spa = NULL;
  if (n > 0) hd->spa = t;
  else spa_table_free(t);
  spa_table_free(old);
  return NULL;
}

static void set_number(napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

static napi_value js_spa_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Handle *hd = unwrap(env, info, &argc, NULL);
  if (hd == NULL) return NULL;
  napi_value out;
  napi_create_object(env, &out);
  set_number(env, out, "notSpa", hd->spa_refused[SPA_NOT_SPA]);
  set_number(env, out, "saltedPrefix", hd->spa_refused[SPA_SALTED_PREFIX]);
  set_number(env, out, "missingHmac", hd->spa_refused[SPA_MISSING_HMAC]);
  set_number(env, out, "badHmac", hd->spa_refused[SPA_BAD_HMAC]);
  set_number(env, out, "passed", hd->spa_passed);
  return out;
}

// spaInspect(ports, frame, length, dlt): what the gate does with one captured frame, with a key
// table built for the call (the reference tests compare it with the JavaScript verifier).
static napi_value js_spa_inspect(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out, v;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_buffer = false;
  void *frame = NULL;
  size_t frame_len = 0;
  uint32_t length = 0;
  int32_t dlt = 0;
  if (argc < 4 || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_value_uint32(env, argv[2], &length) != napi_ok || napi_get_value_int32(env, argv[3], &dlt) != napi_ok) {
    throw_error(env, "spaInspect(ports, frame, length, dlt)");
    return NULL;
  }
  napi_get_buffer_info(env, argv[1], &frame, &frame_len);
  if (length > frame_len) length = (uint32_t)frame_len;
  spa_table *t = build_spa_table(env, argv[0]);
  if (t == NULL) return NULL;
  napi_create_object(env, &out);
  udp_view udp;
  int inspected = frame_udp(frame, length, dlt, &udp) && spa_table_has_port(t, udp.dst_port);
  napi_get_boolean(env, inspected, &v);
  napi_set_named_property(env, out, "inspected", v);
  if (inspected) {
    spa_reason reason;
    uint32_t match = spa_check(t, udp.dst_port, udp.payload, udp.payload_len, &reason);
    napi_create_uint32(env, match & ~SPA_INSPECTED, &v);
    napi_set_named_property(env, out, "mask", v);
    if (match == 0) {
      napi_create_string_utf8(env, spa_reason_names[reason], NAPI_AUTO_LENGTH, &v);
      napi_set_named_property(env, out, "reason", v);
    }
  }
  spa_table_free(t);
  return out;
}

static napi_value js_spa_limits(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_object(env, &out);
  set_number(env, out, "minEncodedMsgSize", SPA_MIN_ENCODED_MSG_SIZE);
  set_number(env, out, "maxEncodedMsgSize", SPA_MAX_ENCODED_MSG_SIZE);
  set_number(env, out, "maxHmacKeyBytes", SPA_MAX_HMAC_KEY_BYTES);
  set_number(env, out, "maxKeyBytes", SPA_MAX_KEY_BYTES);
  set_number(env, out, "legacyMinKeyBytes", SPA_LEGACY_MIN_KEY_BYTES);
  set_number(env, out, "blockSize", SPA_BLOCK_SIZE);
  set_number(env, out, "saltSize", SPA_SALT_SIZE);
  set_number(env, out, "maxKeysPerPort", SPA_GATE_MAX_KEYS_PER_PORT);
  set_number(env, out, "maxPorts", SPA_GATE_MAX_PORTS);
  return out;
}

static napi_value js_construct(napi_env env, napi_callback_info info) {
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  Handle *hd = calloc(1, sizeof *hd);
  if (hd == NULL) {
    throw_error(env, "out of memory");
    return NULL;
  }
  hd->env = env;
  if (napi_wrap(env, self, hd, finalize, NULL, NULL) != napi_ok) {
    free(hd);
    throw_error(env, "cannot create a capture handle");
    return NULL;
  }
  return self;
}

static napi_value js_lib_version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_string_utf8(env, pcap_lib_version(), NAPI_AUTO_LENGTH, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"setSpaKeys", NULL, js_set_spa_keys, NULL, NULL, NULL, napi_default, NULL},
      {"spaStats", NULL, js_spa_stats, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, fn;
  napi_define_class(env, "PcapHandle", NAPI_AUTO_LENGTH, js_construct, NULL, 5, methods, &cls);
  napi_set_named_property(env, exports, "PcapHandle", cls);
  napi_create_function(env, "libVersion", NAPI_AUTO_LENGTH, js_lib_version, NULL, &fn);
  napi_set_named_property(env, exports, "libVersion", fn);
  napi_create_function(env, "spaInspect", NAPI_AUTO_LENGTH, js_spa_inspect, NULL, &fn);
  napi_set_named_property(env, exports, "spaInspect", fn);
  napi_create_function(env, "spaLimits", NAPI_AUTO_LENGTH, js_spa_limits, NULL, &fn);
  napi_set_named_property(env, exports, "spaLimits", fn);
  nft_run_register(env, exports);
  mem_trim_register(env, exports);
  nft_elements_register(env, exports);
  spa_open_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
