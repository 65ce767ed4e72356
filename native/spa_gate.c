// The native SPA gate (spa_gate.h): fwknop's HMAC (lib/fko_hmac.c) recomputed for each key of the
// port a packet was sent to, with OpenSSL's EVP digests, before any JavaScript sees the packet.
//
//   packet = ciphertext-b64 hmac-b64
//   hmac-b64 = base64 without "=" of HMAC-<type>(key, "U2FsdGVkX1" | ciphertext-b64)
//              (22 chars md5, 27 sha1, 43 sha256/sha3-256, 64 sha384, 86 sha512/sha3-512)
//
// Per packet and port, in decodeSpa's order: length 36-1500 (not-spa); starts with "U2FsdGVkX1"
// (salted-prefix); a character outside the base64 alphabet (not-spa). Then per key: no HMAC key ->
// accepted only when the policy allows packets without one (else missing-hmac); text before the HMAC
// shorter than 36 (not-spa); the HMAC's base64 text compared with CRYPTO_memcmp (bad-hmac). A packet
// passes when any key accepts it; when none does, the reason counted is the furthest one reached
// (bad-hmac, then missing-hmac, then not-spa).
//
// HMAC state per key is prepared once: the inner digest after key^ipad and the 10-character prefix,
// the outer after key^opad; a packet costs two state copies and the digest of its own text. Keys
// longer than the digest's block are hashed first (RFC 2104), as OpenSSL's HMAC does.
//
// MD5, SHA-1 and SHA-2 keep that state in OpenSSL's plain digest structs (MD5_CTX, SHA_CTX,
// SHA256_CTX, SHA512_CTX), so a copy is a struct assignment. OpenSSL 3 deprecates those functions
// but ships them; EVP_MD_CTX_copy_ex duplicates a provider context on the heap on every copy. With
// the structs and the vectorized alphabet check below, spa_check on a 200-byte base64 packet went
// from ~400 to ~270 ns (a gcc loop over spa_check, 5M packets; the rest is SHA-256 itself, five
// blocks with the SHA extensions). SHA3 has no such struct and stays on EVP.

#define OPENSSL_SUPPRESS_DEPRECATED // MD5_*, SHA*_ : see above
#include "spa_gate.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCK 144 // largest EVP block size used here: SHA3-256's rate, 136

const char *const spa_reason_names[SPA_REASONS] = {"not-spa", "salted-prefix", "missing-hmac", "bad-hmac"};

// One prepared digest state: a plain struct for MD5, SHA-1 and SHA-2, an EVP context for SHA3.
typedef union {
  MD5_CTX md5;
  SHA_CTX sha1;
  SHA256_CTX sha256;
  SHA512_CTX sha512; // SHA-384 too
} plain_ctx;

typedef struct {
  plain_ctx inner, outer;
} plain_hmac;

typedef struct {
  int hmac_type;
  int allow_missing;
  size_t md_len;
  size_t b64_len;
  plain_hmac *plain; // MD5, SHA-1, SHA-2 (heap: a SHA512_CTX pair is 432 bytes, the table has 1,984 keys)
  EVP_MD_CTX *inner; // SHA3
  EVP_MD_CTX *outer;
} spa_key;

typedef struct {
  uint16_t port;
  uint32_t nkeys;
  spa_key keys[SPA_GATE_MAX_KEYS_PER_PORT];
} spa_port;

struct spa_table {
  uint32_t nports;
  spa_port ports[SPA_GATE_MAX_PORTS];
  EVP_MD_CTX *work;
};

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Every byte in the base64 alphabet (no "=")? Range tests without branches or table lookups, over
// the whole text (no early exit): gcc -O3 turns the loop into vector compares, 17 ns for 200 bytes
// against 70-110 for a table lookup per byte - on a flood of base64 text this runs for every packet.
static int is_b64_text(const uint8_t *p, size_t n) {
  uint8_t good = 1;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    uint8_t upper = (uint8_t)(c - 'A') < 26, lower = (uint8_t)(c - 'a') < 26, digit = (uint8_t)(c - '0') < 10;
    good &= upper | lower | digit | (c == '+') | (c == '/');
  }
  return good;
}

static const EVP_MD *digest_of(int hmac_type) {
  switch (hmac_type) {
    case 1: return EVP_md5();
    case 2: return EVP_sha1();
    case 3: return EVP_sha256();
    case 4: return EVP_sha384();
    case 5: return EVP_sha512();
    case 6: return EVP_sha3_256();
    case 7: return EVP_sha3_512();
    default: return NULL;
  }
}

// Unpadded base64 of `n` bytes into `out` (room for 4 * ceil(n / 3)); returns its length.
static size_t b64_encode(const uint8_t *in, size_t n, char *out) {
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = B64[(v >> 6) & 63];
    out[o++] = B64[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
  } else if (n - i == 2) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = B64[(v >> 6) & 63];
  }
  return o;
}

spa_table *spa_table_new(void) {
  spa_table *t = calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  t->work = EVP_MD_CTX_new();
  if (t->work == NULL) {
    free(t);
    return NULL;
  }
  return t;
}

void spa_table_free(spa_table *t) {
  if (t == NULL) return;
  for (uint32_t p = 0; p < t->nports; p++)
    for (uint32_t k = 0; k < t->ports[p].nkeys; k++) {
      spa_key *key = &t->ports[p].keys[k];
      EVP_MD_CTX_free(key->inner); // frees and cleanses the digest state
      EVP_MD_CTX_free(key->outer);
      if (key->plain) OPENSSL_cleanse(key->plain, sizeof *key->plain);
      free(key->plain);
    }
  EVP_MD_CTX_free(t->work);
  OPENSSL_cleanse(t, sizeof *t);
  free(t);
}

static spa_port *find_port(const spa_table *t, uint16_t port) {
  for (uint32_t p = 0; p < t->nports; p++)
    if (t->ports[p].port == port) return (spa_port *)&t->ports[p];
  return NULL;
}

size_t spa_hmac_b64_len(int hmac_type) {
  const EVP_MD *md = digest_of(hmac_type);
  return md == NULL ? 0 : ((size_t)EVP_MD_get_size(md) * 4 + 2) / 3;
}

int spa_table_has_port(const spa_table *t, uint16_t port) { return t != NULL && find_port(t, port) != NULL; }

static int is_plain(int hmac_type) { return hmac_type >= 1 && hmac_type <= 5; }

static int plain_init(int hmac_type, plain_ctx *c) {
  switch (hmac_type) {
    case 1: return MD5_Init(&c->md5);
    case 2: return SHA1_Init(&c->sha1);
    case 3: return SHA256_Init(&c->sha256);
    case 4: return SHA384_Init(&c->sha512);
    case 5: return SHA512_Init(&c->sha512);
    default: return 0;
  }
}

static int plain_update(int hmac_type, plain_ctx *c, const void *data, size_t len) {
  switch (hmac_type) {
    case 1: return MD5_Update(&c->md5, data, len);
    case 2: return SHA1_Update(&c->sha1, data, len);
    case 3: return SHA256_Update(&c->sha256, data, len);
    case 4: return SHA384_Update(&c->sha512, data, len);
    case 5: return SHA512_Update(&c->sha512, data, len);
    default: return 0;
  }
}

static int plain_final(int hmac_type, plain_ctx *c, uint8_t *out) {
  switch (hmac_type) {
    case 1: return MD5_Final(out, &c->md5);
    case 2: return SHA1_Final(out, &c->sha1);
    case 3: return SHA256_Final(out, &c->sha256);
    case 4: return SHA384_Final(out, &c->sha512);
    case 5: return SHA512_Final(out, &c->sha512);
    default: return 0;
  }
}

// The inner and outer digest contexts of HMAC(key) after the padded key block; the inner one has
// also digested the salted prefix the wire form leaves out.
static const char *prepare(spa_key *k, const EVP_MD *md, const uint8_t *key, size_t key_len) {
  uint8_t block[MAX_BLOCK], pad[MAX_BLOCK];
  size_t bs = (size_t)EVP_MD_get_block_size(md);
  const char *err = NULL;
  if (bs == 0 || bs > MAX_BLOCK) return "HMAC digest has an unexpected block size";
  memset(block, 0, sizeof block);
  if (key_len > bs) {
    unsigned int n = 0;
    if (!EVP_Digest(key, key_len, block, &n, md, NULL)) return "cannot digest the HMAC key";
  } else {
    memcpy(block, key, key_len);
  }
  for (size_t i = 0; i < bs; i++) pad[i] = block[i] ^ 0x36;
  if (is_plain(k->hmac_type)) {
    plain_hmac *h = calloc(1, sizeof *h);
    k->plain = h;
    if (h == NULL) {
      err = "out of memory";
      goto done;
    }
    int ok = plain_init(k->hmac_type, &h->inner) && plain_update(k->hmac_type, &h->inner, pad, bs) &&
             plain_update(k->hmac_type, &h->inner, SPA_B64_SALTED_PREFIX, SPA_B64_SALTED_PREFIX_LEN);
    for (size_t i = 0; i < bs; i++) pad[i] = block[i] ^ 0x5c;
    if (!ok || !plain_init(k->hmac_type, &h->outer) || !plain_update(k->hmac_type, &h->outer, pad, bs))
      err = "cannot prepare the HMAC";
    goto done;
  }
  k->inner = EVP_MD_CTX_new();
  k->outer = EVP_MD_CTX_new();
  if (k->inner == NULL || k->outer == NULL) {
    err = "out of memory";
    goto done;
  }
  if (!EVP_DigestInit_ex(k->inner, md, NULL) || !EVP_DigestUpdate(k->inner, pad, bs) ||
      !EVP_DigestUpdate(k->inner, SPA_B64_SALTED_PREFIX, SPA_B64_SALTED_PREFIX_LEN)) {
    err = "cannot prepare the HMAC";
    goto done;
  }
  for (size_t i = 0; i < bs; i++) pad[i] = block[i] ^ 0x5c;
  if (!EVP_DigestInit_ex(k->outer, md, NULL) || !EVP_DigestUpdate(k->outer, pad, bs)) err = "cannot prepare the HMAC";
done:
  OPENSSL_cleanse(block, sizeof block);
  OPENSSL_cleanse(pad, sizeof pad);
  if (err) {
    EVP_MD_CTX_free(k->inner);
    EVP_MD_CTX_free(k->outer);
    if (k->plain) OPENSSL_cleanse(k->plain, sizeof *k->plain);
    free(k->plain);
    k->inner = k->outer = NULL;
    k->plain = NULL;
  }
  return err;
}

const char *spa_table_add(spa_table *t, uint16_t port, int hmac_type, const uint8_t *key, size_t key_len,
                          int allow_missing_hmac) {
  if (port == 0) return "SPA port must be 1-65535";
  spa_port *p = find_port(t, port);
  if (p == NULL) {
    if (t->nports == SPA_GATE_MAX_PORTS) return "too many SPA ports for the native gate";
    p = &t->ports[t->nports++];
    p->port = port;
    p->nkeys = 0;
  }
  if (p->nkeys == SPA_GATE_MAX_KEYS_PER_PORT) return "too many keys on one SPA port for the native gate";
  spa_key *k = &p->keys[p->nkeys];
  memset(k, 0, sizeof *k);
  k->hmac_type = hmac_type;
  k->allow_missing = allow_missing_hmac != 0;
  if (hmac_type != SPA_HMAC_NONE) {
    const EVP_MD *md = digest_of(hmac_type);
    if (md == NULL) return "unknown HMAC digest type";
    if (key_len < 1 || key_len > SPA_MAX_HMAC_KEY_BYTES) return "HMAC key must be 1-128 bytes";
    k->md_len = (size_t)EVP_MD_get_size(md);
    k->b64_len = spa_hmac_b64_len(hmac_type);
    const char *err = prepare(k, md, key, key_len);
    if (err) return err;
  }
  p->nkeys++;
  return NULL;
}

// 1 when the packet's trailing HMAC text is that of key `k`.
static int hmac_matches(spa_table *t, const spa_key *k, const uint8_t *payload, size_t body_len) {
  uint8_t inner[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
  char text[(EVP_MAX_MD_SIZE * 4 + 2) / 3 + 4];
  int ok;
  if (k->plain) {
    plain_ctx w = k->plain->inner;
    ok = plain_update(k->hmac_type, &w, payload, body_len) && plain_final(k->hmac_type, &w, inner);
    w = k->plain->outer;
    ok = ok && plain_update(k->hmac_type, &w, inner, k->md_len) && plain_final(k->hmac_type, &w, mac);
    OPENSSL_cleanse(&w, sizeof w);
  } else {
    unsigned int n = 0;
    ok = EVP_MD_CTX_copy_ex(t->work, k->inner) && EVP_DigestUpdate(t->work, payload, body_len) &&
         EVP_DigestFinal_ex(t->work, inner, &n) && EVP_MD_CTX_copy_ex(t->work, k->outer) &&
         EVP_DigestUpdate(t->work, inner, n) && EVP_DigestFinal_ex(t->work, mac, &n) && n == k->md_len;
  }
  // An OpenSSL failure is a refusal (fail closed), compared all the same so the time does not say.
  size_t len = ok ? b64_encode(mac, k->md_len, text) : 0;
  int same = CRYPTO_memcmp(text, payload + body_len, k->b64_len) == 0;
  return ok && len == k->b64_len && same;
}

uint32_t spa_check(spa_table *t, uint16_t port, const uint8_t *payload, size_t len, spa_reason *reason) {
  const spa_port *p = find_port(t, port);
  if (p == NULL) {
    *reason = SPA_NOT_SPA; // not reached: callers check spa_table_has_port first
    return 0;
  }
  if (len < SPA_MIN_ENCODED_MSG_SIZE || len > SPA_MAX_ENCODED_MSG_SIZE) {
    *reason = SPA_NOT_SPA;
    return 0;
  }
  if (memcmp(payload, SPA_B64_SALTED_PREFIX, SPA_B64_SALTED_PREFIX_LEN) == 0) {
    *reason = SPA_SALTED_PREFIX;
    return 0;
  }
  if (!is_b64_text(payload, len)) {
    *reason = SPA_NOT_SPA;
    return 0;
  }
  uint32_t mask = 0;
  spa_reason furthest = SPA_NOT_SPA;
  for (uint32_t i = 0; i < p->nkeys; i++) {
    const spa_key *k = &p->keys[i];
    if (k->hmac_type == SPA_HMAC_NONE) {
      if (k->allow_missing)
        mask |= 1u << i;
      else if (furthest != SPA_BAD_HMAC)
        furthest = SPA_MISSING_HMAC;
      continue;
    }
    if (len < k->b64_len + SPA_MIN_ENCODED_MSG_SIZE) continue; // not-spa for this key
    if (hmac_matches(t, k, payload, len - k->b64_len))
      mask |= 1u << i;
    else
      furthest = SPA_BAD_HMAC;
  }
  if (mask == 0) {
    *reason = furthest;
    return 0;
  }
  return SPA_INSPECTED | mask;
}
