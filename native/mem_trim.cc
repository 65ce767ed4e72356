// releaseMemory(): give back what start-up left behind, once the daemon is running.
//
// Loading the program grows V8's young generation to ~16 MiB and leaves pooled heap pages, and
// glibc keeps the freed start-up allocations (parsers, compiler zones) in its arenas. V8's memory
// reducer returns the heap part on its own, but only once it judges the isolate idle: 14-40 s after
// start, differently each run. Called once after start-up, this does at that moment what the
// reducer would later do:
//
//   1. Isolate::LowMemoryNotification(): full garbage collections with memory reduction (shrinks
//      the young generation, compacts, releases pooled pages). Synchronous, ~10-30 ms on this
//      program's heap, on the JavaScript thread: only call it when no packet is waiting.
//   2. malloc_trim(0): returns the free pages of every glibc arena to the kernel (not only the top
//      of the main heap, which is all free() does by itself).
//
// It is the one part of the addon that uses the V8 API rather than N-API (there is no N-API call
// for it); the addon is built for the node that runs it (node-gyp against its headers), so the V8
// ABI is the one it was compiled with.
//
//   releaseMemory() -> { trimmed: boolean }   trimmed: malloc_trim released something

#include "mem_trim.h"

#include <v8.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value js_release_memory(napi_env env, napi_callback_info info) {
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
  bool trimmed = false;
#if defined(__GLIBC__)
  trimmed = malloc_trim(0) != 0;
#endif
  napi_value result, flag;
  napi_create_object(env, &result);
  napi_get_boolean(env, trimmed, &flag);
  napi_set_named_property(env, result, "trimmed", flag);
  return result;
}

extern "C" void mem_trim_register(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "releaseMemory", NAPI_AUTO_LENGTH, js_release_memory, nullptr, &fn);
  napi_set_named_property(env, exports, "releaseMemory", fn);
}
