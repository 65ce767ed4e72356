// Opening an authenticated SPA packet in C (spa_open.h).
//
//   packet     = ciphertext-b64 hmac-b64                       (spa_gate.c checks length, prefix,
//                                                               alphabet and the HMAC)
//   ciphertext = base64-decode("U2FsdGVkX1" | ciphertext-b64)  (canonical: no spare bits set)
//              = "Salted__" | salt (8) | AES-256-CBC(plaintext, PKCS#7 padding)
//   key | iv   = D1 | D2 | D3, D1 = MD5(pw | salt), Di = MD5(Di-1 | pw | salt)
//                (pw: the key; in legacy mode a key under 16 bytes padded with '0' to 16)
//
// Refused, as decryptSpaBytes refuses it (sniffer/spa/encryption.ts): text whose length is 1 mod 4
// or that is not canonical, fewer than two blocks or not whole blocks, no "Salted__", padding that
// is not 1-16 bytes of its own length. The plaintext's fields are parsed in JavaScript.

#define OPENSSL_SUPPRESS_DEPRECATED // MD5_*: a plain struct, no provider lookup per packet (spa_gate.c)
#include "spa_open.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <stdlib.h>
#include <string.h>

#define GATE_PORT 1 // the opener's one-key gate table uses a port of its own
#define BLOCK SPA_BLOCK_SIZE
#define SALT_SIZE SPA_SALT_SIZE
#define MAX_KEY_BYTES SPA_MAX_KEY_BYTES
#define MAX_TEXT (SPA_B64_SALTED_PREFIX_LEN + SPA_MAX_ENCODED_MSG_SIZE)
#define MAX_RAW (MAX_TEXT / 4 * 3 + 2)

struct spa_opener {
  spa_table *gate;
  size_t hmac_b64_len; // 0: the packet carries no HMAC
  uint8_t pw[MAX_KEY_BYTES];
  size_t pw_len;
  EVP_CIPHER_CTX *cipher;
  EVP_CIPHER *aes; // fetched once: EVP_aes_256_cbc() would be looked up in the provider per packet
};

static uint8_t b64_value[256];

static void init_b64(void) {
  static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (b64_value[0] == 0xff) return;
  memset(b64_value, 0xff, sizeof b64_value);
  for (int i = 0; i < 64; i++) b64_value[(uint8_t)A[i]] = (uint8_t)i;
}

const char *spa_opener_new(spa_opener **out, const uint8_t *key, size_t key_len, int legacy, int hmac_type,
                           const uint8_t *hmac_key, size_t hmac_key_len, int allow_missing_hmac) {
  if (key_len < 1 || key_len > MAX_KEY_BYTES) return "encryption key must be 1-32 bytes";
  init_b64();
  spa_opener *o = calloc(1, sizeof *o);
  if (o == NULL) return "out of memory";
  o->gate = spa_table_new();
  o->cipher = EVP_CIPHER_CTX_new();
  o->aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
  const char *err = o->gate && o->cipher ? NULL : "out of memory";
  if (!err && o->aes == NULL) err = "AES-256-CBC is not available in OpenSSL";
  if (!err) err = spa_table_add(o->gate, GATE_PORT, hmac_type, hmac_key, hmac_key_len, allow_missing_hmac);
  if (err) {
    spa_opener_free(o);
    return err;
  }
  o->hmac_b64_len = spa_hmac_b64_len(hmac_type);
  memcpy(o->pw, key, key_len);
  o->pw_len = key_len;
  if (legacy && key_len < SPA_LEGACY_MIN_KEY_BYTES) {
    memset(o->pw + key_len, '0', SPA_LEGACY_MIN_KEY_BYTES - key_len);
    o->pw_len = SPA_LEGACY_MIN_KEY_BYTES;
  }
  *out = o;
  return NULL;
}

void spa_opener_free(spa_opener *o) {
  if (o == NULL) return;
  spa_table_free(o->gate);
  EVP_CIPHER_CTX_free(o->cipher); // cleanses the key schedule
  EVP_CIPHER_free(o->aes);
  OPENSSL_cleanse(o, sizeof *o);
  free(o);
}

// Canonical unpadded base64 of text[0, n) into out; its length, or -1.
static int b64_decode(const uint8_t *text, size_t n, uint8_t *out) {
  size_t rest = n % 4, o = 0, i = 0;
  if (rest == 1) return -1;
  uint8_t bad = 0;
  for (; i + 4 <= n; i += 4) {
    uint8_t a = b64_value[text[i]], b = b64_value[text[i + 1]], c = b64_value[text[i + 2]], d = b64_value[text[i + 3]];
    bad |= a | b | c | d;
    uint32_t v = ((uint32_t)a << 18) | ((uint32_t)b << 12) | ((uint32_t)c << 6) | d;
    out[o++] = (uint8_t)(v >> 16);
    out[o++] = (uint8_t)(v >> 8);
    out[o++] = (uint8_t)v;
  }
  if (rest == 2) {
    uint8_t a = b64_value[text[i]], b = b64_value[text[i + 1]];
    bad |= a | b | ((b & 0x0f) ? 0xff : 0);
    out[o++] = (uint8_t)((a << 2) | (b >> 4));
  } else if (rest == 3) {
    uint8_t a = b64_value[text[i]], b = b64_value[text[i + 1]], c = b64_value[text[i + 2]];
    bad |= a | b | c | ((c & 0x03) ? 0xff : 0);
    out[o++] = (uint8_t)((a << 2) | (b >> 4));
    out[o++] = (uint8_t)(((b & 0x0f) << 4) | (c >> 2));
  }
  return (bad & 0xc0) ? -1 : (int)o; // 0xff (not in the alphabet) is the only value with a top bit
}

// fwknop's rij_salt_and_iv: 32 key bytes and 16 IV bytes from pw and the salt.
static void derive(const spa_opener *o, const uint8_t *salt, uint8_t out[MAX_KEY_BYTES + BLOCK]) {
  MD5_CTX md5;
  for (size_t filled = 0; filled < MAX_KEY_BYTES + BLOCK; filled += MD5_DIGEST_LENGTH) {
    MD5_Init(&md5);
    if (filled > 0) MD5_Update(&md5, out + filled - MD5_DIGEST_LENGTH, MD5_DIGEST_LENGTH);
    MD5_Update(&md5, o->pw, o->pw_len);
    MD5_Update(&md5, salt, SALT_SIZE);
    MD5_Final(out + filled, &md5);
  }
  OPENSSL_cleanse(&md5, sizeof md5);
}

static int decrypt(spa_opener *o, const uint8_t *body, size_t body_len, uint8_t *plain) {
  uint8_t text[MAX_TEXT], raw[MAX_RAW], key_iv[MAX_KEY_BYTES + BLOCK];
  if (body_len > SPA_MAX_ENCODED_MSG_SIZE) return -1;
  memcpy(text, SPA_B64_SALTED_PREFIX, SPA_B64_SALTED_PREFIX_LEN);
  memcpy(text + SPA_B64_SALTED_PREFIX_LEN, body, body_len);
  int raw_len = b64_decode(text, SPA_B64_SALTED_PREFIX_LEN + body_len, raw);
  if (raw_len < 2 * BLOCK || raw_len % BLOCK != 0 || memcmp(raw, "Salted__", SALT_SIZE) != 0) return -1;
  derive(o, raw + SALT_SIZE, key_iv);
  int n = 0, len = raw_len - 2 * SALT_SIZE;
  int ok = EVP_DecryptInit_ex2(o->cipher, o->aes, key_iv, key_iv + MAX_KEY_BYTES, NULL) &&
           EVP_CIPHER_CTX_set_padding(o->cipher, 0) && EVP_DecryptUpdate(o->cipher, plain, &n, raw + 2 * SALT_SIZE, len) &&
           n == len;
  OPENSSL_cleanse(key_iv, sizeof key_iv);
  if (!ok) return -1;
  uint8_t pad = plain[len - 1];
  if (pad < 1 || pad > BLOCK) return -1;
  for (int i = len - pad; i < len; i++)
    if (plain[i] != pad) return -1;
  return len - pad;
}

int spa_open(spa_opener *o, const uint8_t *packet, size_t len, uint8_t *plain) {
  spa_reason reason = SPA_NOT_SPA;
  if (spa_check(o->gate, GATE_PORT, packet, len, &reason) == 0) return -1 - (int)reason;
  int n = decrypt(o, packet, len - o->hmac_b64_len, plain);
  return n < 0 ? -1 - SPA_OPEN_DECRYPT_FAILED : n;
}

// --- JavaScript: new SpaOpener(key, legacy, hmacType, hmacKey | undefined, allowMissingHmac) ----

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  spa_opener_free(data);
}

static int bytes_of(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array) return 0;
  *data = p;
  return 1;
}

static napi_value js_construct(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  uint8_t *key = NULL, *hmac_key = NULL;
  size_t key_len = 0, hmac_key_len = 0;
  bool legacy = false, allow_missing = false;
  int32_t hmac_type = 0;
  napi_valuetype hk;
  if (argc < 5 || !bytes_of(env, argv[0], &key, &key_len) || napi_get_value_bool(env, argv[1], &legacy) != napi_ok ||
      napi_get_value_int32(env, argv[2], &hmac_type) != napi_ok || napi_typeof(env, argv[3], &hk) != napi_ok ||
      (hk != napi_undefined && !bytes_of(env, argv[3], &hmac_key, &hmac_key_len)) ||
      napi_get_value_bool(env, argv[4], &allow_missing) != napi_ok) {
    napi_throw_error(env, NULL, "SpaOpener(key, legacy, hmacType, hmacKey, allowMissingHmac)");
    return NULL;
  }
  spa_opener *o = NULL;
  const char *err = spa_opener_new(&o, key, key_len, legacy, hmac_type, hmac_key, hmac_key_len, allow_missing);
  if (err) {
    napi_throw_error(env, NULL, err);
    return NULL;
  }
  if (napi_wrap(env, self, o, finalize, NULL, NULL) != napi_ok) {
    spa_opener_free(o);
    napi_throw_error(env, NULL, "cannot create an SPA opener");
    return NULL;
  }
  return self;
}

// open(packet): the plaintext (latin1 string), or the refusal's code (number, spa_open.h).
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self, out = NULL; // NULL (undefined in JavaScript) if napi fails: refused
  void *data = NULL;
  uint8_t *packet = NULL;
  size_t len = 0;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL || argc < 1 || !bytes_of(env, argv[0], &packet, &len)) {
    napi_throw_error(env, NULL, "SpaOpener.open(packet: Uint8Array)");
    return NULL;
  }
  uint8_t plain[SPA_MAX_ENCODED_MSG_SIZE];
  int n = spa_open(data, packet, len, plain);
  if (n < 0)
    napi_create_int32(env, -1 - n, &out);
  else
    napi_create_string_latin1(env, (const char *)plain, (size_t)n, &out);
  return out;
}

void spa_open_register(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {{"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL}};
  napi_value cls;
  napi_define_class(env, "SpaOpener", NAPI_AUTO_LENGTH, js_construct, NULL, 1, methods, &cls);
  napi_set_named_property(env, exports, "SpaOpener", cls);
}
