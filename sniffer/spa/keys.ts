// SPA key material: raw bytes, never logged. KEY is a passphrase (its UTF-8 bytes), KEY_BASE64 a
// base64-encoded key (fwknop --key-gen); likewise HMAC_KEY / HMAC_KEY_BASE64. The names are those of
// fwknopd's access.conf and of the Kubernetes Secret a KnockPolicy's keySecretRef names.

import { b64DecodeStrict } from './base64.js';
import { SPA_LIMITS } from './limits.js';

export interface SpaKeys {
  /** Encryption key bytes, 1-32. */
  key: Buffer;
  /** HMAC key bytes, 1-128; absent = packets carry no HMAC (refused unless allowMissingHmac). */
  hmacKey?: Buffer;
}

/** Bad key material; the message names the field, never its value. */
export class SpaKeyError extends Error {}

function decodeBase64Key(field: string, value: string): Buffer {
  const bytes = b64DecodeStrict(value.trim());
  if (!bytes || bytes.length === 0) throw new SpaKeyError(`${field} is not valid base64`);
  return bytes;
}

function pick(
  data: Record<string, string>,
  plainField: string,
  base64Field: string,
  maxBytes: number,
): Buffer | undefined {
  const plain = data[plainField];
  const b64 = data[base64Field];
  if (plain !== undefined && b64 !== undefined)
    throw new SpaKeyError(`give one of ${plainField} and ${base64Field}, not both`);
  let bytes: Buffer | undefined;
  let field = plainField;
  if (b64 !== undefined) {
    field = base64Field;
    bytes = decodeBase64Key(base64Field, b64);
  } else if (plain !== undefined) {
    bytes = Buffer.from(plain, 'utf8');
  }
  if (bytes && (bytes.length < 1 || bytes.length > maxBytes))
    throw new SpaKeyError(`${field} must be 1-${maxBytes} bytes, got ${bytes.length}`);
  return bytes;
}

/** Keys from Secret data (stringData form) or access.conf values. Throws SpaKeyError. */
export function spaKeysFromSecretData(data: Record<string, string>): SpaKeys {
  const key = pick(data, 'KEY', 'KEY_BASE64', SPA_LIMITS.maxKeyBytes);
  if (!key) throw new SpaKeyError('no SPA key: set KEY_BASE64 (or KEY, a passphrase)');
  const hmacKey = pick(data, 'HMAC_KEY', 'HMAC_KEY_BASE64', SPA_LIMITS.maxHmacKeyBytes);
  return hmacKey ? { key, hmacKey } : { key };
}
