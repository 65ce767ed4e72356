// Bounds of the native SPA gate, in one place. The wire-format bounds mirror sniffer/spa/limits.ts
// (SPA_LIMITS, from fwknop's lib/fko_limits.h); the gate's own bounds are SPA_GATE_LIMITS there. The
// addon exports all of them (spaLimits()) and test/spa-native-gate.test.ts checks that both agree.

#ifndef KNOCKGATE_SPA_LIMITS_H
#define KNOCKGATE_SPA_LIMITS_H

// MIN_SPA_ENCODED_MSG_SIZE / MAX_SPA_ENCODED_MSG_SIZE: the UDP payload's length bounds.
#define SPA_MIN_ENCODED_MSG_SIZE 36
#define SPA_MAX_ENCODED_MSG_SIZE 1500
// MAX_DIGEST_BLOCK_LEN as the 2.6.10 client enforces it: longest HMAC key in bytes.
#define SPA_MAX_HMAC_KEY_BYTES 128
// The cipher's bounds (encryption.ts): key bytes, the legacy mode's padded minimum, AES block, salt.
#define SPA_MAX_KEY_BYTES 32
#define SPA_LEGACY_MIN_KEY_BYTES 16
#define SPA_BLOCK_SIZE 16
#define SPA_SALT_SIZE 8
// The base64 text of "Salted_" that the wire form leaves out (B64_SALTED_PREFIX in limits.ts).
#define SPA_B64_SALTED_PREFIX "U2FsdGVkX1"
#define SPA_B64_SALTED_PREFIX_LEN 10
// Keys checked per port (policies sharing one SPA port): the match mask is one u32 whose top bit
// says "inspected", so at most 31.
#define SPA_GATE_MAX_KEYS_PER_PORT 31
// SPA ports gated per capture handle.
#define SPA_GATE_MAX_PORTS 64

#endif
