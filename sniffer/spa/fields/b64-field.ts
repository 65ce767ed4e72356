// The base64-encoded text fields of an SPA message (username, access message, NAT access, server
// auth): bounded in length on the wire, decoded strictly, printable ASCII once decoded.

import { b64DecodeStrict, b64EncodeNoPad } from '../base64.js';

const PRINTABLE = /^[\x20-\x7e]+$/;

export function encodeB64Field(value: string): string {
  return b64EncodeNoPad(value);
}

/** Decode a field's base64 text of at most `maxText` characters; undefined when invalid. */
export function decodeB64Field(text: string, maxText: number): string | undefined {
  if (text.length < 1 || text.length > maxText) return undefined;
  const raw = b64DecodeStrict(text);
  if (!raw) return undefined;
  const value = raw.toString('latin1');
  return PRINTABLE.test(value) ? value : undefined;
}
