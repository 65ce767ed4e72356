// In-process nftables: one transaction per call through libnftables (nft_run_cmd_from_buffer), the
// library the nft program itself is built on, so a grant's element change costs the kernel's commit
// (~0.05 ms) instead of a round trip to a long-lived `nft -i` process (a pipe write, a wakeup of
// another process, its line reader, its answer on stderr, a wakeup of ours: ~0.2 ms on an idle
// machine, milliseconds on a busy one).
//
// libnftables.so.1 is opened with dlopen() on first use, not linked: the addon also runs where
// nftables is not installed (the sniffer role, other backends), and then nftAvailable() says why.
//
//   nftAvailable() -> "" when usable, else the reason (one line)
//   nftRun(text)   -> "" on success, else nft's error text; the transaction is all or nothing
//
// The call runs on the JavaScript thread and blocks it for the commit: callers keep it to small
// transactions (a few elements). It acts in the network namespace of the process. Nothing here
// prints; nft's output and errors are buffered and the output discarded.

#include "nft_run.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct nft_ctx;

static struct {
  int tried;
  char why[256];
  void *lib;
  struct nft_ctx *ctx;
  int (*run)(struct nft_ctx *, const char *);
  const char *(*error_buffer)(struct nft_ctx *);
  const char *(*output_buffer)(struct nft_ctx *);
} nft;

static void nft_load(void) {
  if (nft.tried) return;
  nft.tried = 1;
  nft.lib = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
  if (nft.lib == NULL) {
    const char *e = dlerror();
    snprintf(nft.why, sizeof nft.why, "libnftables.so.1 not loadable: %s", e ? e : "unknown error");
    return;
  }
  struct nft_ctx *(*ctx_new)(uint32_t) = (struct nft_ctx * (*)(uint32_t)) dlsym(nft.lib, "nft_ctx_new");
  int (*buffer_error)(struct nft_ctx *) = (int (*)(struct nft_ctx *))dlsym(nft.lib, "nft_ctx_buffer_error");
  int (*buffer_output)(struct nft_ctx *) = (int (*)(struct nft_ctx *))dlsym(nft.lib, "nft_ctx_buffer_output");
  nft.run = (int (*)(struct nft_ctx *, const char *))dlsym(nft.lib, "nft_run_cmd_from_buffer");
  nft.error_buffer = (const char *(*)(struct nft_ctx *))dlsym(nft.lib, "nft_ctx_get_error_buffer");
  nft.output_buffer = (const char *(*)(struct nft_ctx *))dlsym(nft.lib, "nft_ctx_get_output_buffer");
  if (!ctx_new || !buffer_error || !buffer_output || !nft.run || !nft.error_buffer || !nft.output_buffer) {
    snprintf(nft.why, sizeof nft.why, "libnftables.so.1 lacks the nft_ctx/nft_run_cmd_from_buffer API");
    return;
  }
  nft.ctx = ctx_new(0); // NFT_CTX_DEFAULT
  if (nft.ctx == NULL || buffer_error(nft.ctx) != 0 || buffer_output(nft.ctx) != 0) {
    snprintf(nft.why, sizeof nft.why, "libnftables: cannot create a context");
    nft.ctx = NULL;
  }
}

static napi_value js_nft_available(napi_env env, napi_callback_info info) {
  (void)info;
  nft_load();
  napi_value out;
  napi_create_string_utf8(env, nft.ctx ? "" : nft.why, NAPI_AUTO_LENGTH, &out);
  return out;
}

static napi_value js_nft_run(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nft_load();
  if (nft.ctx == NULL) {
    napi_throw_error(env, NULL, nft.why);
    return NULL;
  }
  size_t len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "nftRun: want the commands as a string");
    return NULL;
  }
  char *text = malloc(len + 1);
  if (text == NULL) {
    napi_throw_error(env, NULL, "nftRun: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], text, len + 1, &len);
  int rc = nft.run(nft.ctx, text);
  free(text);
  // Reading a buffer rewinds it: both are read after every run so the next starts empty.
  (void)nft.output_buffer(nft.ctx);
  const char *err = nft.error_buffer(nft.ctx);
  napi_value out;
  if (rc == 0)
    napi_create_string_utf8(env, "", 0, &out);
  else
    napi_create_string_utf8(env, err && *err ? err : "nft: command failed (no message)", NAPI_AUTO_LENGTH, &out);
  return out;
}

void nft_run_register(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "nftAvailable", NAPI_AUTO_LENGTH, js_nft_available, NULL, &fn);
  napi_set_named_property(env, exports, "nftAvailable", fn);
  napi_create_function(env, "nftRun", NAPI_AUTO_LENGTH, js_nft_run, NULL, &fn);
  napi_set_named_property(env, exports, "nftRun", fn);
}
