// The HMAC that authenticates an SPA packet (lib/fko_hmac.c). fwknop computes it over the base64
// ciphertext *with* the "U2FsdGVkX1" prefix that the wire form then leaves out, and appends it as
// base64 without padding. The receiver recomputes it over the prefix plus the exact received text and
// compares the two base64 strings in constant time before it decrypts anything.

import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { b64EncodeNoPad } from './base64.js';
import { DIGESTS, digestB64Length } from './digest.js';
import { B64_SALTED_PREFIX, SPA_LIMITS } from './limits.js';
import type { HmacDigestType } from './types.js';

/** Length of the HMAC's base64 text at the end of a packet. */
export const hmacB64Length = digestB64Length;

/** An HMAC key bound to its digest type, prepared once per policy. */
export class SpaHmac {
  readonly b64Length: number;
  private readonly algorithm: string;
  private readonly key: KeyObject;
  /**
   * The prefix followed by the packet text, so the HMAC gets one update() instead of two (each
   * update is a call into OpenSSL; measured with npm run bench:spa). Reused: verify() is synchronous.
   */
  private readonly scratch = Buffer.alloc(B64_SALTED_PREFIX.length + SPA_LIMITS.maxEncodedMsgSize);

  constructor(
    readonly type: HmacDigestType,
    key: Uint8Array,
  ) {
    this.algorithm = DIGESTS[type].algorithm;
    this.key = createSecretKey(key);
    this.b64Length = hmacB64Length(type);
    this.scratch.write(B64_SALTED_PREFIX, 'latin1');
  }

  /** The HMAC (base64, unpadded) of a packet's wire text `body` (without the salted prefix). */
  compute(body: string): string {
    return b64EncodeNoPad(
      createHmac(this.algorithm, this.key).update(B64_SALTED_PREFIX).update(body, 'latin1').digest(),
    );
  }

  /**
   * Does `packet` end in the right HMAC? The HMAC covers packet[0, length - b64Length); the
   * comparison runs over every character whatever differs (no early exit).
   */
  verify(packet: Uint8Array): boolean {
    const bodyEnd = packet.length - this.b64Length;
    if (bodyEnd <= 0 || bodyEnd > SPA_LIMITS.maxEncodedMsgSize) return false;
    const prefixLength = B64_SALTED_PREFIX.length;
    this.scratch.set(packet.subarray(0, bodyEnd), prefixLength);
    const expected = createHmac(this.algorithm, this.key)
      .update(this.scratch.subarray(0, prefixLength + bodyEnd))
      .digest('base64');
    let diff = 0;
    for (let i = 0; i < this.b64Length; i++) diff |= expected.charCodeAt(i) ^ packet[bodyEnd + i]!;
    return diff === 0;
  }
}
