// The capture addon's SpaOpener (native/spa_open.c): the checks, the HMAC and the decryption of
// openSpa (decode.ts) for one policy's keys, in C. A verifier uses it where the addon loads. Why:
// SPA packets come one at a time after idle spells, and then the JavaScript path runs cold (a new
// Hmac and Decipher object, base64 and MD5 key derivation through node:crypto). npm run bench:spa,
// one valid packet every 5 ms, six runs: verify() p99 139-578 µs in JavaScript, 104-296 µs with the
// opener (5.9 against 18.2 µs back to back; bench/README.md, part 4). openSpa stays the reference:
// test/spa-native-open.test.ts requires the same result from both on real fwknop packets and the
// fuzz corpus. The opener holds key bytes in C memory, cleansed when it is garbage collected; never
// log it.

import { pcapAddon, type NativeSpaOpener } from '../capture/addon.js';
import type { SpaOpener, SpaOpenResult } from './decode.js';
import type { SpaRefusalReason } from './reasons.js';
import type { EncryptionMode } from './types.js';

/** The opener's refusal codes (native/spa_open.h: the gate's spa_reason, then decrypt-failed). */
const REASONS: readonly SpaRefusalReason[] = [
  'not-spa',
  'salted-prefix',
  'missing-hmac',
  'bad-hmac',
  'decrypt-failed',
];
const FAILURES = REASONS.map((reason) => Object.freeze({ ok: false as const, reason }));
const UNKNOWN = Object.freeze({ ok: false as const, reason: 'malformed' as SpaRefusalReason });

export interface NativeOpenKeys {
  key: Uint8Array;
  encryptionMode: EncryptionMode;
  /** fko_hmac_type_t code (types.ts DIGEST_CODES); 0 = no HMAC key. */
  hmacType: number;
  hmacKey?: Uint8Array;
  allowMissingHmac: boolean;
}

/**
 * A native opener for these keys, or undefined when the addon cannot be loaded (the JavaScript
 * path then runs; it is the reference, so nothing is lost but time). Throws one line for keys the
 * addon refuses (createSpaVerifier has checked their lengths before).
 */
export function nativeSpaOpener(keys: NativeOpenKeys): SpaOpener | undefined {
  let addon: ReturnType<typeof pcapAddon>;
  try {
    addon = pcapAddon();
  } catch {
    return undefined;
  }
  const native: NativeSpaOpener = new addon.SpaOpener(
    keys.key,
    keys.encryptionMode === 'legacy',
    keys.hmacType,
    keys.hmacType === 0 ? undefined : keys.hmacKey,
    keys.allowMissingHmac,
  );
  return {
    open(packet: Uint8Array): SpaOpenResult {
      const r = native.open(packet);
      return typeof r === 'string' ? r : (FAILURES[r] ?? UNKNOWN);
    },
  };
}
