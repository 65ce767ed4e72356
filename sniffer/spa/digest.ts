// Message digests of the SPA plaintext (lib/fko_digest.c): the digest of the encoded fields is
// appended as its last field, base64 without padding. The receiver learns the type from the length
// of that text; SHA-256 and SHA3-256 (43 chars), SHA-512 and SHA3-512 (86 chars) share a length, so
// the SHA-2 digest is tried first and then the SHA-3 one, as fwknopd does.

import { hash } from 'node:crypto';
import { b64Length } from './base64.js';
import type { DigestType } from './types.js';

interface DigestInfo {
  /** node:crypto (OpenSSL) algorithm name. */
  algorithm: string;
  /** Output size in bytes. */
  bytes: number;
}

export const DIGESTS: Record<DigestType, DigestInfo> = {
  md5: { algorithm: 'md5', bytes: 16 },
  sha1: { algorithm: 'sha1', bytes: 20 },
  sha256: { algorithm: 'sha256', bytes: 32 },
  sha384: { algorithm: 'sha384', bytes: 48 },
  sha512: { algorithm: 'sha512', bytes: 64 },
  sha3_256: { algorithm: 'sha3-256', bytes: 32 },
  sha3_512: { algorithm: 'sha3-512', bytes: 64 },
};

/** Length of the unpadded base64 text of a `type` digest. */
export function digestB64Length(type: DigestType): number {
  return b64Length(DIGESTS[type].bytes);
}

/** Digest types whose base64 text has `length` characters, in the order fwknopd tries them. */
const BY_B64_LENGTH = new Map<number, DigestType[]>();
for (const type of Object.keys(DIGESTS) as DigestType[]) {
  const len = digestB64Length(type);
  BY_B64_LENGTH.set(len, [...(BY_B64_LENGTH.get(len) ?? []), type]);
}

export function digestTypesForB64Length(length: number): readonly DigestType[] {
  return BY_B64_LENGTH.get(length) ?? [];
}

/**
 * The digest of `data` as fwknop writes it: base64 without padding. `data` is printable ASCII (the
 * encoded fields; decode.ts checks the plaintext before it gets here), so its UTF-8 bytes, which
 * the one-shot crypto.hash digests, are its latin1 bytes.
 */
export function digestB64(type: DigestType, data: string): string {
  const text = hash(DIGESTS[type].algorithm, data, 'base64');
  const pad = text.indexOf('=');
  return pad === -1 ? text : text.slice(0, pad);
}
