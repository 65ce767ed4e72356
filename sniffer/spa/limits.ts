// Every bound of the fwknop SPA wire format in one place, named as in fwknop's lib/fko_limits.h,
// lib/cipher_funcs.h and lib/digest.h (fwknop 2.6.10, FKO protocol 3.0.0).

export const SPA_LIMITS = {
  /** MIN_SPA_ENCODED_MSG_SIZE: shorter base64 text is not SPA data ("somewhat arbitrary" in fwknop). */
  minEncodedMsgSize: 36,
  /** MAX_SPA_ENCODED_MSG_SIZE (= MAX_SPA_ENCRYPTED_SIZE): longest packet text and longest plaintext. */
  maxEncodedMsgSize: 1500,
  /** MAX_SPA_USERNAME_SIZE, counted on the base64 text of the field as fwknopd does. */
  maxUsernameSize: 64,
  /** MAX_SPA_MESSAGE_SIZE: access message, NAT access, server auth, client timeout (base64 text). */
  maxMessageSize: 256,
  /** MAX_SPA_TIMESTAMP_SIZE (digits). */
  maxTimestampSize: 12,
  /** MAX_SPA_VERSION_SIZE ("12.34.56"). */
  maxVersionSize: 8,
  /** MAX_SPA_MESSAGE_TYPE_SIZE (digits). */
  maxMessageTypeSize: 2,
  /** FKO_RAND_VAL_SIZE: the random value is exactly 16 decimal digits. */
  randValueSize: 16,
  /** MIN_SPA_FIELDS: colons a decrypted message must hold at least (7 fields incl. the digest). */
  minFields: 6,
  /** MAX_SPA_FIELDS: colons counted at most. */
  maxFields: 9,
  /** The client timeout is parsed with an upper bound of 2 << 15 in fko_decode.c. */
  maxClientTimeout: 2 << 15,
  /** RIJNDAEL_MAX_KEYSIZE: longest encryption key (bytes) and the AES-256 key derived from it. */
  maxKeyBytes: 32,
  /** RIJNDAEL_MIN_KEYSIZE: legacy mode pads shorter passphrases with '0' up to this length. */
  legacyMinKeyBytes: 16,
  /** MAX_DIGEST_BLOCK_LEN as enforced by the 2.6.10 client: longest HMAC key (bytes). */
  maxHmacKeyBytes: 128,
  /** RIJNDAEL_BLOCKSIZE. */
  blockSize: 16,
  /** SALT_LEN: "Salted__" and the salt that follows are 8 bytes each. */
  saltSize: 8,
  /** MD5 output used by the key/IV derivation. */
  md5Size: 16,
  /** Length of a fwknop key printed by `fwknop --key-gen` (bytes). */
  keygenKeyBytes: 32,
  /** Length of the HMAC key `fwknop --key-gen` prints for its default sha256 HMAC (SHA256_BLOCK_LEN). */
  keygenHmacKeyBytes: 64,
  /** Default fwknopd UDP port. */
  defaultPort: 62201,
} as const;

/** base64("Salted__") without its last, salt-dependent character: stripped on the wire, re-added to decrypt. */
export const B64_SALTED_PREFIX = 'U2FsdGVkX1';
/** The OpenSSL-compatible header fwknop puts in front of the salt. */
export const SALTED_MAGIC = 'Salted__';
/** FKO_PROTOCOL_VERSION sent by fwknop 2.6.x. */
export const FKO_PROTOCOL_VERSION = '3.0.0';

/**
 * Bounds of the native SPA gate (native/spa_limits.h, checked equal by test/spa-native-gate.test.ts):
 * keys checked per SPA port (one bit each in a u32 match mask whose top bit means "inspected") and
 * SPA ports per capture handle. A port with more keys is not gated natively: JavaScript checks every
 * packet there, as before.
 */
export const SPA_GATE_LIMITS = {
  maxKeysPerPort: 31,
  maxPorts: 64,
} as const;
