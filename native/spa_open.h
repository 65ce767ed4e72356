// Opening an authenticated SPA packet in C: the gate's checks and HMAC (spa_gate.h) for one policy's
// key, then fwknop's decryption (lib/cipher_funcs.c), so that a packet reaches JavaScript as its
// plaintext. decodeSpa (sniffer/spa/decode.ts) does the same in JavaScript; that stays the
// reference, and test/spa-native-open.test.ts requires both to give the same result.

#ifndef KNOCKGATE_SPA_OPEN_H
#define KNOCKGATE_SPA_OPEN_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#include "spa_gate.h"

// What spa_open gives besides a plaintext: the gate's reasons (spa_reason), then this one.
#define SPA_OPEN_DECRYPT_FAILED SPA_REASONS

typedef struct spa_opener spa_opener;

// NULL on success (*out set), else a one-line message that never holds key material.
// `key`: the encryption passphrase or decoded KEY_BASE64 (1-32 bytes); `legacy`: ENCRYPTION_MODE
// legacy (a key shorter than 16 bytes padded with '0'); hmac_type 0 = no HMAC key.
const char *spa_opener_new(spa_opener **out, const uint8_t *key, size_t key_len, int legacy, int hmac_type,
                           const uint8_t *hmac_key, size_t hmac_key_len, int allow_missing_hmac);
// Cleanses the key material, then frees.
void spa_opener_free(spa_opener *o);
// The plaintext's length (>= 0, written to `plain`, room for SPA_MAX_ENCODED_MSG_SIZE bytes), or
// -1 - code (code: a spa_reason, or SPA_OPEN_DECRYPT_FAILED).
int spa_open(spa_opener *o, const uint8_t *packet, size_t len, uint8_t *plain);

// Exports SpaOpener (sniffer/spa/native-open.ts).
void spa_open_register(napi_env env, napi_value exports);

#endif
