// Base64 as fwknop writes it: the standard alphabet with the trailing "=" padding stripped
// (lib/base64.c b64_encode + strip_b64_eq). Decoding here is stricter than fwknop's: every character
// must be in the alphabet and the unused low bits of the last character must be zero, so that one
// byte string has exactly one text form and any changed character changes the decoded bytes.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const INVALID = 0xff;
const EQUALS = 0x3d;

/** Character code → 6-bit value, or 0xff. */
export const B64_VALUE: Uint8Array = (() => {
  const table = new Uint8Array(256).fill(INVALID);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

/** True when bytes [start, end) are all base64 alphabet characters (no padding). */
export function isB64Text(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (B64_VALUE[buf[i]!] === INVALID) return false;
  return true;
}

/** Unpadded base64 length of `bytes` bytes. */
export function b64Length(bytes: number): number {
  return Math.ceil((bytes * 4) / 3);
}

/** Standard base64 without "=" padding. */
export function b64EncodeNoPad(data: Uint8Array | string): string {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  const text = buf.toString('base64');
  const pad = text.indexOf('=');
  return pad === -1 ? text : text.slice(0, pad);
}

/** Decode unpadded (or padded) base64; undefined when it is not the canonical form of some bytes. */
export function b64DecodeStrict(text: string): Buffer | undefined {
  let end = text.length;
  if (end > 0 && text.charCodeAt(end - 1) === EQUALS) end--;
  if (end > 0 && text.charCodeAt(end - 1) === EQUALS) end--;
  const body = end === text.length ? text : text.slice(0, end);
  const rest = body.length % 4;
  if (rest === 1) return undefined;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c > 255 || B64_VALUE[c] === INVALID) return undefined;
  }
  if (rest !== 0) {
    // 2 chars carry 1 byte (4 spare bits), 3 chars carry 2 bytes (2 spare bits).
    const last = B64_VALUE[body.charCodeAt(body.length - 1)]!;
    const spareMask = rest === 2 ? 0x0f : 0x03;
    if ((last & spareMask) !== 0) return undefined;
  }
  return Buffer.from(body, 'base64');
}

/**
 * Decode unpadded base64 text held as bytes, text[start, end), into a new Buffer; undefined unless
 * every byte is in the alphabet and the text is the canonical form of its bytes (as
 * b64DecodeStrict). The packet path uses this: no string is built from the packet to decode it.
 */
export function b64DecodeBytes(text: Uint8Array, start: number, end: number): Buffer | undefined {
  const n = end - start;
  const rest = n % 4;
  if (n < 0 || rest === 1) return undefined;
  const out = Buffer.allocUnsafe((n * 3) >> 2);
  let o = 0;
  let i = start;
  for (const full = end - rest; i < full; i += 4) {
    const a = B64_VALUE[text[i]!]!;
    const b = B64_VALUE[text[i + 1]!]!;
    const c = B64_VALUE[text[i + 2]!]!;
    const d = B64_VALUE[text[i + 3]!]!;
    // INVALID (0xff) is the only table value with either of the two top bits set.
    if ((a | b | c | d) & 0xc0) return undefined;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >> 16;
    out[o++] = (v >> 8) & 0xff;
    out[o++] = v & 0xff;
  }
  if (rest === 2) {
    const a = B64_VALUE[text[i]!]!;
    const b = B64_VALUE[text[i + 1]!]!;
    if ((a | b) & 0xc0 || b & 0x0f) return undefined;
    out[o++] = (a << 2) | (b >> 4);
  } else if (rest === 3) {
    const a = B64_VALUE[text[i]!]!;
    const b = B64_VALUE[text[i + 1]!]!;
    const c = B64_VALUE[text[i + 2]!]!;
    if ((a | b | c) & 0xc0 || c & 0x03) return undefined;
    out[o++] = (a << 2) | (b >> 4);
    out[o++] = ((b & 0x0f) << 4) | (c >> 2);
  }
  return out;
}
