// Giving memory back after start-up (mem_trim.cc).
#ifndef KNOCKGATE_MEM_TRIM_H
#define KNOCKGATE_MEM_TRIM_H

#include <node_api.h>

#ifdef __cplusplus
extern "C" {
#endif

// Adds releaseMemory() to the addon's exports.
void mem_trim_register(napi_env env, napi_value exports);

#ifdef __cplusplus
}
#endif

#endif
