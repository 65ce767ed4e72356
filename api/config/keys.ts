// SPA key material from a config file: checked where it is written (so a bad key is a FILE:LINE
// error, not a refused packet hours later) and resolved to bytes for the daemon.
//
// Names are fwknop's (and the Secret's): KEY is a passphrase (its UTF-8 bytes), KEY_BASE64 a
// base64 key (fwknop --key-gen); likewise HMAC_KEY / HMAC_KEY_BASE64. Bounds are fwknop 2.6's:
// RIJNDAEL_MAX_KEYSIZE (32 bytes) for the encryption key, 128 bytes for the HMAC key. knockgate adds
// one of its own: a *base64* key is generated material, and one shorter than 16 bytes (128 bits) is
// refused as too weak. Passphrases keep fwknop's rules (the article's `KEY: key;` imports), with a
// warning when they are short.
//
// Messages name the variable, never its value: keys never reach logs.

import type { SecretData } from './types.js';

export const KEY_VARS = ['KEY', 'KEY_BASE64', 'HMAC_KEY', 'HMAC_KEY_BASE64'] as const;
export type KeyVar = (typeof KEY_VARS)[number];

export const KEY_BOUNDS = {
  /** RIJNDAEL_MAX_KEYSIZE. */
  maxKeyBytes: 32,
  /** Longest HMAC key the fwknop 2.6 client sends with. */
  maxHmacKeyBytes: 128,
  /** Shortest base64 (generated) key knockgate accepts. */
  minBase64KeyBytes: 16,
  /** Passphrases shorter than this get a warning. */
  weakPassphraseChars: 12,
} as const;

/** The placeholder value of the access.conf fwknop-server ships. */
export const KEY_PLACEHOLDER = '__CHANGEME__';

/** Key bytes of one SPA policy, in memory only (the shape of the sniffer's SpaKeys). */
export interface ResolvedKeys {
  key: Buffer;
  /** Absent: the policy takes packets without an HMAC (spa.allowMissingHmac). */
  hmacKey?: Buffer;
}

export function isKeyVar(name: string): name is KeyVar {
  return (KEY_VARS as readonly string[]).includes(name);
}

export function isPlaceholder(value: string): boolean {
  return value.trim().toUpperCase() === KEY_PLACEHOLDER;
}

/** Canonical padded base64 (what fwknop --key-gen prints); undefined when `text` is not. */
function decodeBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, 'base64');
  // Reject non-canonical forms (unused low bits set), so one key has one text form.
  return bytes.length > 0 && bytes.toString('base64') === text ? bytes : undefined;
}

/** Bytes of one key variable, or what is wrong with it (the message never holds the value). */
export function keyVarBytes(name: KeyVar, value: string): { bytes: Buffer } | { error: string } {
  const hmac = name.startsWith('HMAC_');
  const max = hmac ? KEY_BOUNDS.maxHmacKeyBytes : KEY_BOUNDS.maxKeyBytes;
  if (value === '') return { error: `${name} is empty` };
  if (isPlaceholder(value)) {
    return {
      error: `${name} is still the placeholder ${KEY_PLACEHOLDER}: generate keys with "fwknop --key-gen" or "knockgate keygen"`,
    };
  }
  if (name.endsWith('_BASE64')) {
    const bytes = decodeBase64(value);
    if (!bytes) return { error: `${name} is not valid base64` };
    if (bytes.length < KEY_BOUNDS.minBase64KeyBytes) {
      return {
        error: `${name} is too short: ${bytes.length} bytes, at least ${KEY_BOUNDS.minBase64KeyBytes} (fwknop --key-gen makes ${hmac ? 64 : 32})`,
      };
    }
    if (bytes.length > max) return { error: `${name} is too long: ${bytes.length} bytes, at most ${max}` };
    return { bytes };
  }
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > max) return { error: `${name} is too long: ${bytes.length} bytes, at most ${max}` };
  return { bytes };
}

/** A warning for a weak passphrase, or undefined. */
export function weakKeyWarning(name: KeyVar, value: string): string | undefined {
  if (name.endsWith('_BASE64') || value.length >= KEY_BOUNDS.weakPassphraseChars) return undefined;
  return `${name} is a ${value.length}-character passphrase: easy to guess from one sniffed packet; prefer KEY_BASE64/HMAC_KEY_BASE64 from "knockgate keygen"`;
}

/**
 * Check a whole set of keys (a stanza's or a Secret's): one of KEY / KEY_BASE64, at most one of
 * HMAC_KEY / HMAC_KEY_BASE64, and the two keys different (fwknopd refuses identical keys).
 * Returns the bytes, or the first problem.
 */
export function resolveKeys(data: SecretData): { keys: ResolvedKeys } | { error: string } {
  const pick = (plain: KeyVar, b64: KeyVar): { bytes?: Buffer } | { error: string } => {
    if (data[plain] !== undefined && data[b64] !== undefined)
      return { error: `both ${plain} and ${b64} are set: give one` };
    const name = data[b64] !== undefined ? b64 : plain;
    const value = data[name];
    return value === undefined ? {} : keyVarBytes(name, value);
  };
  const key = pick('KEY', 'KEY_BASE64');
  if ('error' in key) return key;
  if (!key.bytes) return { error: 'no KEY or KEY_BASE64' };
  const hmac = pick('HMAC_KEY', 'HMAC_KEY_BASE64');
  if ('error' in hmac) return hmac;
  if (hmac.bytes?.equals(key.bytes)) {
    return { error: 'the encryption key and the HMAC key must differ (fwknopd refuses identical keys)' };
  }
  return { keys: hmac.bytes ? { key: key.bytes, hmacKey: hmac.bytes } : { key: key.bytes } };
}
