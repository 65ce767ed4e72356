// In-process nftables commands through libnftables (nft_run.c).
#ifndef KNOCKGATE_NFT_RUN_H
#define KNOCKGATE_NFT_RUN_H

#include <node_api.h>

// Adds nftAvailable() and nftRun(text) to the addon's exports.
void nft_run_register(napi_env env, napi_value exports);

#endif
