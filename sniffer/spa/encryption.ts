// Rijndael (AES-256-CBC) as fwknop uses it (lib/cipher_funcs.c, lib/fko_encryption.c).
//
//   ciphertext bytes = "Salted__" | salt (8 random bytes) | AES-256-CBC(plaintext, PKCS#7 padding)
//   key | iv         = D1 | D2 | D3, D1 = MD5(pw | salt), Di = MD5(Di-1 | pw | salt)   (OpenSSL's
//                      EVP_BytesToKey with MD5 and one round; 32 key bytes, 16 IV bytes)
//   wire text        = base64(ciphertext bytes) without "=" and without its first 10 characters
//                      ("U2FsdGVkX1", the constant part of base64("Salted__")), re-added to decrypt
//
// `pw` is the passphrase's bytes (--key-rijndael / KEY) or the decoded base64 key (KEY_BASE64), at
// most 32 bytes. In legacy mode (ENCRYPTION_MODE legacy, fwknop before 2.5) a pw shorter than 16
// bytes is first padded with '0' characters to 16.

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { b64DecodeStrict, b64EncodeNoPad } from './base64.js';
import { B64_SALTED_PREFIX, SALTED_MAGIC, SPA_LIMITS } from './limits.js';
import type { EncryptionMode } from './types.js';

const { blockSize, saltSize, maxKeyBytes, legacyMinKeyBytes, md5Size } = SPA_LIMITS;
const MAGIC = Buffer.from(SALTED_MAGIC, 'latin1');
const LEGACY_PAD = 0x30; // '0'

export class SpaKeyLengthError extends Error {}

function passphraseBytes(key: Uint8Array, mode: EncryptionMode): Buffer {
  if (key.length < 1 || key.length > maxKeyBytes)
    throw new SpaKeyLengthError(`encryption key must be 1-${maxKeyBytes} bytes, got ${key.length}`);
  if (mode === 'legacy' && key.length < legacyMinKeyBytes) {
    return Buffer.concat([key, Buffer.alloc(legacyMinKeyBytes - key.length, LEGACY_PAD)]);
  }
  return Buffer.from(key);
}

/** fwknop's salt-based key and IV derivation (rij_salt_and_iv). */
export function deriveKeyIv(
  key: Uint8Array,
  salt: Uint8Array,
  mode: EncryptionMode,
): { key: Buffer; iv: Buffer } {
  const pw = passphraseBytes(key, mode);
  const material = Buffer.concat([pw, salt]);
  const out = Buffer.alloc(maxKeyBytes + blockSize);
  let prev = Buffer.alloc(0);
  for (let filled = 0; filled < out.length; filled += md5Size) {
    prev = createHash('md5').update(prev).update(material).digest();
    prev.copy(out, filled);
  }
  return { key: out.subarray(0, maxKeyBytes), iv: out.subarray(maxKeyBytes) };
}

/** Encrypt `plaintext`; returns the wire text (no salted prefix, no padding). */
export function encryptSpa(
  plaintext: string,
  key: Uint8Array,
  mode: EncryptionMode,
  salt: Uint8Array = randomBytes(saltSize),
): string {
  const derived = deriveKeyIv(key, salt, mode);
  const cipher = createCipheriv('aes-256-cbc', derived.key, derived.iv);
  const body = Buffer.concat([cipher.update(plaintext, 'latin1'), cipher.final()]);
  const text = b64EncodeNoPad(Buffer.concat([MAGIC, salt, body]));
  return text.slice(B64_SALTED_PREFIX.length);
}

/**
 * Decrypt a packet's wire text (HMAC already removed). Returns the plaintext, or undefined when the
 * text is not a well-formed ciphertext or does not decrypt with this key (bad padding). Never throws
 * for bad data; throws SpaKeyLengthError only for a key that could never work.
 */
export function decryptSpa(wireText: string, key: Uint8Array, mode: EncryptionMode): string | undefined {
  const raw = b64DecodeStrict(B64_SALTED_PREFIX + wireText);
  if (!raw || raw.length < 2 * blockSize || raw.length % blockSize !== 0) return undefined;
  if (!raw.subarray(0, saltSize).equals(MAGIC)) return undefined;
  const derived = deriveKeyIv(key, raw.subarray(saltSize, 2 * saltSize), mode);
  const decipher = createDecipheriv('aes-256-cbc', derived.key, derived.iv).setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(raw.subarray(2 * saltSize)), decipher.final()]);
  const pad = plain[plain.length - 1]!;
  if (pad < 1 || pad > blockSize) return undefined;
  for (let i = plain.length - pad; i < plain.length; i++) if (plain[i] !== pad) return undefined;
  return plain.toString('latin1', 0, plain.length - pad);
}
