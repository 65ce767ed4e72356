// Decoding an SPA packet, fwknop 2.6 wire format (FKO protocol 3.0.0), as fwknopd does it
// (lib/fko_funcs.c fko_new_with_data, fko_hmac.c, fko_encryption.c, fko_decode.c).
//
// Wire (one UDP datagram, printable base64 text, no trailing newline):
//
//   packet     = ciphertext-b64 [ hmac-b64 ]
//   ciphertext-b64 = base64("Salted__" | salt | AES-256-CBC(plaintext)) minus its first 10 chars
//                    ("U2FsdGVkX1") and minus "=" padding            (see encryption.ts)
//   hmac-b64   = base64(HMAC-<type>(hmac key, "U2FsdGVkX1" | ciphertext-b64)) minus "="
//                (22 chars md5, 27 sha1, 43 sha256/sha3_256, 64 sha384, 86 sha512/sha3_512; the type
//                is configured on both ends, the packet does not name it)
//   plaintext  = encoded ":" digest-b64
//   encoded    = rand ":" b64(user) ":" timestamp ":" version ":" type ":" b64(message)
//                [ ":" b64(nat access) ] [ ":" b64(server auth) ] [ ":" client timeout ]
//   digest-b64 = base64(<digest type>(encoded)) minus "=", type known from its length
//
// Order of checks (cheap and unauthenticated first, nothing decrypted before the HMAC matched):
// length bounds; the "U2FsdGVkX1" prefix refused (fwknopd: an attacker prepending it to a seen
// packet would dodge the replay cache); base64 characters only; the HMAC over the exact received
// text, compared in constant time; decryption; printable plaintext and field count; the message
// digest; each field. Nothing here throws on bad data: every failure is a reason.
//
// Everything up to the plaintext (the checks, the HMAC, the decryption) is openSpa here, the
// reference; a verifier may hand it to the capture addon's SpaOpener instead (native-open.ts), which
// must give the same result for every packet (test/spa-native-open.test.ts).

import { B64_SALTED_PREFIX, SPA_LIMITS } from './limits.js';
import { isB64Text } from './base64.js';
import { digestB64, digestTypesForB64Length } from './digest.js';
import { decryptSpaBytes } from './encryption.js';
import type { SpaHmac } from './hmac.js';
import { parseAccessMessage, decodeAccessMessage } from './fields/access-message.js';
import { decodeB64Field } from './fields/b64-field.js';
import { parseClientTimeout } from './fields/client-timeout.js';
import { parseMessageType } from './fields/message-type.js';
import { decodeNatAccess } from './fields/nat-access.js';
import { isRandValue } from './fields/rand-value.js';
import { decodeServerAuth } from './fields/server-auth.js';
import { parseTimestamp } from './fields/timestamp.js';
import { parseUsername } from './fields/username.js';
import { parseVersion } from './fields/version.js';
import type { SpaRefusalReason } from './reasons.js';
import {
  hasClientTimeout,
  isNatType,
  type DecodedSpa,
  type EncryptionMode,
  type SpaFields,
} from './types.js';

export interface SpaDecodeOptions {
  /** Encryption key bytes (passphrase bytes or the decoded base64 key). */
  key: Uint8Array;
  /** The HMAC to require; absent = the packet carries none (only when allowMissingHmac). */
  hmac?: SpaHmac;
  encryptionMode: EncryptionMode;
  /** Accept a packet without HMAC when no HMAC key is configured (old access.conf files). */
  allowMissingHmac: boolean;
  /** Does what openSpa does (checks, HMAC, decryption) for these keys: the native opener. */
  opener?: SpaOpener;
}

/** A packet's plaintext, or why there is none. */
export type SpaOpenResult = string | { readonly ok: false; readonly reason: SpaRefusalReason };

export interface SpaOpener {
  open(packet: Uint8Array): SpaOpenResult;
}

export type SpaDecodeResult = { ok: true; packet: DecodedSpa } | { ok: false; reason: SpaRefusalReason };

type Failure = { ok: false; reason: SpaRefusalReason };
/** One frozen object per reason: the refusal path allocates nothing. */
const failures = new Map<SpaRefusalReason, Failure>();
function fail(reason: SpaRefusalReason): Failure {
  let f = failures.get(reason);
  if (!f) failures.set(reason, (f = Object.freeze({ ok: false as const, reason })));
  return f;
}

const PREFIX_BYTES = Buffer.from(B64_SALTED_PREFIX, 'latin1');
const COLON = 0x3a;

/** Decode one packet (the UDP payload as received). Never throws. */
export function decodeSpa(packet: Uint8Array, opts: SpaDecodeOptions): SpaDecodeResult {
  const plain = opts.opener ? opts.opener.open(packet) : openSpa(packet, opts);
  if (typeof plain !== 'string') return plain;
  if (
    !isRandValue(plain.slice(0, SPA_LIMITS.randValueSize)) ||
    plain.charCodeAt(SPA_LIMITS.randValueSize) !== COLON
  )
    return fail('decrypt-failed');

  const parsed = parsePlaintext(plain);
  if (typeof parsed === 'string') return fail(parsed);
  // Built field by field: an object spread of the fields cost more than the AES decryption
  // (profiled with npm run bench:spa).
  const f = parsed.fields;
  const decoded: DecodedSpa = {
    randValue: f.randValue,
    username: f.username,
    timestamp: f.timestamp,
    version: f.version,
    messageType: f.messageType,
    accessMessage: f.accessMessage,
    clientTimeout: f.clientTimeout,
    digestType: parsed.digestType,
    digest: parsed.digest,
    hmacType: opts.hmac ? opts.hmac.type : 'none',
    encryptionMode: opts.encryptionMode,
  };
  if (f.natAccess !== undefined) decoded.natAccess = f.natAccess;
  if (f.serverAuth !== undefined) decoded.serverAuth = f.serverAuth;
  return { ok: true, packet: decoded };
}

/**
 * The packet's plaintext, or the refusal: length, prefix, alphabet, the HMAC before anything is
 * decrypted, then the decryption (encryption.ts).
 */
export function openSpa(packet: Uint8Array, opts: SpaDecodeOptions): SpaOpenResult {
  const len = packet.length;
  if (len < SPA_LIMITS.minEncodedMsgSize || len > SPA_LIMITS.maxEncodedMsgSize) return fail('not-spa');
  if (startsWithPrefix(packet)) return fail('salted-prefix');
  if (!isB64Text(packet, 0, len)) return fail('not-spa');

  let bodyEnd = len;
  if (opts.hmac) {
    bodyEnd = len - opts.hmac.b64Length;
    if (bodyEnd < SPA_LIMITS.minEncodedMsgSize) return fail('not-spa');
    if (!opts.hmac.verify(packet)) return fail('bad-hmac');
  } else if (!opts.allowMissingHmac) {
    return fail('missing-hmac');
  }
  let plain: string | undefined;
  try {
    plain = decryptSpaBytes(packet, bodyEnd, opts.key, opts.encryptionMode);
  } catch {
    plain = undefined;
  }
  return plain ?? fail('decrypt-failed');
}

function startsWithPrefix(packet: Uint8Array): boolean {
  for (let i = 0; i < PREFIX_BYTES.length; i++) if (packet[i] !== PREFIX_BYTES[i]) return false;
  return true;
}

interface ParsedPlaintext {
  fields: SpaFields;
  digestType: DecodedSpa['digestType'];
  digest: string;
}

/** fko_decode_spa_data: the decrypted text → fields, or the reason it is refused. */
export function parsePlaintext(plain: string): ParsedPlaintext | SpaRefusalReason {
  if (plain.length > SPA_LIMITS.maxEncodedMsgSize || !/^[\x20-\x7e]+$/.test(plain)) return 'malformed';
  const lastColon = plain.lastIndexOf(':');
  const encoded = plain.slice(0, lastColon);
  const digest = plain.slice(lastColon + 1);
  const parts = encoded.split(':');
  if (parts.length < SPA_LIMITS.minFields || parts.length > SPA_LIMITS.maxFields) return 'malformed';

  const candidates = digestTypesForB64Length(digest.length);
  if (candidates.length === 0) return 'malformed';
  const digestType = candidates.find((t) => digestB64(t, encoded) === digest);
  if (!digestType) return 'bad-digest';

  const [randValue, userText, tsText, versionText, typeText, messageText, ...extra] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    ...string[],
  ];
  const username = parseUsername(userText);
  const timestamp = parseTimestamp(tsText);
  const version = parseVersion(versionText);
  const messageType = parseMessageType(typeText);
  if (!isRandValue(randValue) || username === undefined || timestamp === undefined || version === undefined)
    return 'malformed';
  if (messageType === undefined) return 'malformed';

  const accessMessage =
    messageType === 'command' ? decodeCommandMessage(messageText) : decodeAccessMessage(messageText);
  if (accessMessage === undefined) return 'malformed';

  // What may follow the message, in this order: NAT access (NAT types), server auth (optional),
  // client timeout (client-timeout types).
  let natAccess: string | undefined;
  let serverAuth: string | undefined;
  let clientTimeout = 0;
  if (isNatType(messageType)) {
    natAccess = decodeNatAccess(extra.shift() ?? '');
    if (natAccess === undefined) return 'malformed';
  }
  if (hasClientTimeout(messageType)) {
    const timeout = parseClientTimeout(extra.pop() ?? '');
    if (timeout === undefined) return 'malformed';
    clientTimeout = timeout;
  }
  if (extra.length > 1) return 'malformed';
  if (extra.length === 1) {
    serverAuth = decodeServerAuth(extra[0]!);
    if (serverAuth === undefined) return 'malformed';
  }

  const fields: SpaFields = {
    randValue,
    username,
    timestamp,
    version,
    messageType,
    accessMessage,
    clientTimeout,
  };
  if (natAccess !== undefined) fields.natAccess = natAccess;
  if (serverAuth !== undefined) fields.serverAuth = serverAuth;
  return { fields, digestType, digest };
}

/** validate_cmd_msg: "ALLOW_IP,command" with something after the comma. */
function decodeCommandMessage(text: string): string | undefined {
  const message = decodeB64Field(text, SPA_LIMITS.maxMessageSize);
  if (message === undefined) return undefined;
  const comma = message.indexOf(',');
  if (comma < 1 || comma === message.length - 1) return undefined;
  return parseAccessMessage(`${message.slice(0, comma)},none/0`) ? message : undefined;
}
