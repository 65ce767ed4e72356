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

import { createCipheriv, createDecipheriv, hash, randomBytes } from 'node:crypto';
import { b64DecodeBytes, b64EncodeNoPad } from './base64.js';
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
  // [D(i-1) | pw | salt] in one buffer, each MD5 one-shot (crypto.hash: no Hash object per step,
  // about half the cost of createHash here; see npm run bench:spa).
  const material = Buffer.allocUnsafe(md5Size + pw.length + salt.length);
  pw.copy(material, md5Size);
  material.set(salt, md5Size + pw.length);
  const out = Buffer.allocUnsafe(maxKeyBytes + blockSize);
  hash('md5', material.subarray(md5Size), 'buffer').copy(out, 0);
  for (let filled = md5Size; filled < out.length; filled += md5Size) {
    out.copy(material, 0, filled - md5Size, filled);
    hash('md5', material, 'buffer').copy(out, filled);
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

/** The salted prefix followed by the packet text, decoded in one pass (decryptSpaBytes is synchronous). */
const scratch = Buffer.alloc(B64_SALTED_PREFIX.length + SPA_LIMITS.maxEncodedMsgSize);
scratch.write(B64_SALTED_PREFIX, 'latin1');

/**
 * Decrypt a packet's wire text, packet[0, bodyEnd) (the HMAC after it already checked and left
 * out). Returns the plaintext, or undefined when the text is not a well-formed ciphertext or does
 * not decrypt with this key (bad padding). Never throws for bad data; throws SpaKeyLengthError only
 * for a key that could never work.
 */
export function decryptSpaBytes(
  packet: Uint8Array,
  bodyEnd: number,
  key: Uint8Array,
  mode: EncryptionMode,
): string | undefined {
  if (bodyEnd < 0 || bodyEnd > SPA_LIMITS.maxEncodedMsgSize) return undefined;
  const prefixLength = B64_SALTED_PREFIX.length;
  scratch.set(packet.subarray(0, bodyEnd), prefixLength);
  const raw = b64DecodeBytes(scratch, 0, prefixLength + bodyEnd);
  if (!raw || raw.length < 2 * blockSize || raw.length % blockSize !== 0) return undefined;
  if (!raw.subarray(0, saltSize).equals(MAGIC)) return undefined;
  const derived = deriveKeyIv(key, raw.subarray(saltSize, 2 * saltSize), mode);
  // Without automatic padding, update() returns every block of block-aligned input and final()
  // has nothing left to add; the padding is checked here, as fwknop checks it.
  const decipher = createDecipheriv('aes-256-cbc', derived.key, derived.iv).setAutoPadding(false);
  const plain = decipher.update(raw.subarray(2 * saltSize));
  if (plain.length !== raw.length - 2 * saltSize) return undefined;
  const pad = plain[plain.length - 1]!;
  if (pad < 1 || pad > blockSize) return undefined;
  for (let i = plain.length - pad; i < plain.length; i++) if (plain[i] !== pad) return undefined;
  return plain.toString('latin1', 0, plain.length - pad);
}

/** decryptSpaBytes for wire text held in a string. */
export function decryptSpa(wireText: string, key: Uint8Array, mode: EncryptionMode): string | undefined {
  if (wireText.length > SPA_LIMITS.maxEncodedMsgSize) return undefined;
  const bytes = Buffer.from(wireText, 'latin1');
  return decryptSpaBytes(bytes, bytes.length, key, mode);
}
