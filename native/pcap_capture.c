// knockgate's capture addon: libpcap opened with a settable snap length (cap hard-codes 65535, which
// makes libpcap's ring slots 64 KiB each: a 4 MiB buffer then holds only 64 packets), polled on the
// event loop with uv_poll, packets handed to JavaScript in batches inside one reusable buffer (one
// call per batch, no allocation per packet), and pcap_stats for exact drop counts.
//
//   const h = new PcapHandle();
//   const dlt = h.open(device, filter, snaplen, bufferBytes, batchBuffer, onBatch);
//   onBatch(count, usedBytes, error?)   // records: u32 caplen, u32 wire length, caplen bytes, pad to 4
//   h.stats()  -> { received, dropped, interfaceDropped } | undefined once closed
//   h.close()  // idempotent; also done when the handle is garbage collected
//
// Plain node_api.h (C): no header download, no extra npm dependency.

#include <node_api.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define RECORD_HEADER 8
// Batches per readable event before the event loop gets a turn (uv_poll is level-triggered: what is
// left is read on the next turn).
#define MAX_BATCHES_PER_EVENT 32

typedef struct {
  napi_env env;
  pcap_t *pcap;
  uv_poll_t *poll;
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
  uint8_t *p = hd->batch + hd->used;
  uint32_t wire = h->len;
  memcpy(p, &caplen, 4);
  memcpy(p + 4, &wire, 4);
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
  }
  flush(hd, NULL);
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
  hd->env = env;
  hd->pcap = p;
  hd->poll = poll;
  hd->batch = batch;
  hd->batch_len = batch_len;
  hd->used = 0;
  hd->count = 0;
  hd->snaplen = snaplen;
  hd->slot = slot;
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
  };
  napi_value cls, fn;
  napi_define_class(env, "PcapHandle", NAPI_AUTO_LENGTH, js_construct, NULL, 3, methods, &cls);
  napi_set_named_property(env, exports, "PcapHandle", cls);
  napi_create_function(env, "libVersion", NAPI_AUTO_LENGTH, js_lib_version, NULL, &fn);
  napi_set_named_property(env, exports, "libVersion", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
