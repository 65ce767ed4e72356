// Set element changes over nfnetlink, without libnftables (nft_elements.c).
#pragma once
#include <node_api.h>

void nft_elements_register(napi_env env, napi_value exports);
