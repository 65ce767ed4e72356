// The native SPA gate: the checks decodeSpa (sniffer/spa/decode.ts) makes before it decrypts
// anything - length, the "U2FsdGVkX1" prefix, the base64 alphabet, the HMAC - for each key of an
// SPA port, in C, so that packets no key authenticates never reach JavaScript.

#ifndef KNOCKGATE_SPA_GATE_H
#define KNOCKGATE_SPA_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "spa_limits.h"

// fko_hmac_type_t codes (sniffer/spa/types.ts DIGEST_CODES); 0 = the policy has no HMAC key.
#define SPA_HMAC_NONE 0
#define SPA_HMAC_SHA3_512 7

// Why the gate refused a packet: the reasons of sniffer/spa/reasons.ts it can reach.
typedef enum {
  SPA_NOT_SPA = 0,
  SPA_SALTED_PREFIX,
  SPA_MISSING_HMAC,
  SPA_BAD_HMAC,
  SPA_REASONS
} spa_reason;

extern const char *const spa_reason_names[SPA_REASONS];

// Top bit of a match mask: the packet was inspected (and some key matched).
#define SPA_INSPECTED 0x80000000u

typedef struct spa_table spa_table;

spa_table *spa_table_new(void);
// Add a key to `port` (keys keep the order they are added in: bit i of a match mask is the i-th
// key of the port). NULL on success, else a one-line message that never holds key material.
const char *spa_table_add(spa_table *t, uint16_t port, int hmac_type, const uint8_t *key, size_t key_len,
                          int allow_missing_hmac);
// Frees the table; the key-derived state is cleansed first.
void spa_table_free(spa_table *t);
// Length of the base64 text of an `hmac_type` HMAC at the end of a packet (0 for SPA_HMAC_NONE).
size_t spa_hmac_b64_len(int hmac_type);
// Is `port` gated by the table?
int spa_table_has_port(const spa_table *t, uint16_t port);
// Check one UDP payload sent to a gated `port`: returns SPA_INSPECTED | (bit i for each key i that
// authenticates it), or 0 with *reason set when none does.
uint32_t spa_check(spa_table *t, uint16_t port, const uint8_t *payload, size_t len, spa_reason *reason);

#endif
