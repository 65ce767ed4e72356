// Building an SPA packet the way the fwknop 2.6 client does (lib/fko_encode.c, fko_funcs.c
// fko_spa_data_final); the wire format is written down in decode.ts.

import { encodeB64Field } from './fields/b64-field.js';
import { formatAccessMessage, parseAccessMessage } from './fields/access-message.js';
import { messageTypeCode } from './fields/message-type.js';
import { generateRandValue, isRandValue } from './fields/rand-value.js';
import { isValidUsername } from './fields/username.js';
import { digestB64 } from './digest.js';
import { encryptSpa } from './encryption.js';
import { SpaHmac } from './hmac.js';
import { FKO_PROTOCOL_VERSION, SPA_LIMITS } from './limits.js';
import {
  hasClientTimeout,
  isNatType,
  type DigestType,
  type EncryptionMode,
  type HmacDigestType,
  type MessageType,
} from './types.js';

export class SpaEncodeError extends Error {}

export interface SpaRequest {
  /** Allow IP ("0.0.0.0" = the packet's source, fwknop -s). */
  allowIp: string;
  /** "tcp/22" entries, fwknop -A order. */
  access: string[];
  username: string;
  /** Seconds since the epoch. */
  timestamp: number;
  /** -f: 0 = none (an access message), otherwise a client-timeout access message. */
  clientTimeout?: number;
  /** NAT access ("IP,port"): knockgate's verifier refuses these; kept for decode tests. */
  natAccess?: string;
  serverAuth?: string;
  /** Fixed for tests; random otherwise. */
  randValue?: string;
}

export interface SpaEncodeOptions {
  key: Uint8Array;
  /** Absent = no HMAC (as fwknop without --use-hmac). */
  hmacKey?: Uint8Array;
  hmacType?: HmacDigestType;
  digestType?: DigestType;
  encryptionMode?: EncryptionMode;
  /** Fixed for tests; random otherwise. */
  salt?: Uint8Array;
}

function messageTypeFor(req: SpaRequest): MessageType {
  const timeout = (req.clientTimeout ?? 0) > 0;
  if (req.natAccess !== undefined) return timeout ? 'client-timeout-nat-access' : 'nat-access';
  return timeout ? 'client-timeout-access' : 'access';
}

/** The plaintext fields joined by ":" (fko_encode_spa_data), before the digest is appended. */
export function encodeFields(req: SpaRequest): string {
  const randValue = req.randValue ?? generateRandValue();
  if (!isRandValue(randValue)) throw new SpaEncodeError('random value must be 16 decimal digits');
  if (!isValidUsername(req.username) || encodeB64Field(req.username).length > SPA_LIMITS.maxUsernameSize)
    throw new SpaEncodeError(`invalid username "${req.username}"`);
  if (
    !Number.isInteger(req.timestamp) ||
    req.timestamp < 0 ||
    String(req.timestamp).length > SPA_LIMITS.maxTimestampSize
  )
    throw new SpaEncodeError(`invalid timestamp ${req.timestamp}`);
  const message = formatAccessMessage(req.allowIp, req.access);
  if (!parseAccessMessage(message)) throw new SpaEncodeError(`invalid access request "${message}"`);
  const timeout = req.clientTimeout ?? 0;
  if (!Number.isInteger(timeout) || timeout < 0 || timeout > SPA_LIMITS.maxClientTimeout)
    throw new SpaEncodeError(`client timeout must be 0-${SPA_LIMITS.maxClientTimeout} seconds`);

  const type = messageTypeFor(req);
  const parts = [
    randValue,
    encodeB64Field(req.username),
    String(req.timestamp),
    FKO_PROTOCOL_VERSION,
    String(messageTypeCode(type)),
    encodeB64Field(message),
  ];
  if (isNatType(type)) parts.push(encodeB64Field(req.natAccess!));
  if (req.serverAuth !== undefined) parts.push(encodeB64Field(req.serverAuth));
  if (hasClientTimeout(type)) parts.push(String(timeout));
  for (const p of parts.slice(5)) {
    if (p.length > SPA_LIMITS.maxMessageSize) throw new SpaEncodeError('access request too long');
  }
  return parts.join(':');
}

/** A complete packet, as the text to send in one datagram. Throws SpaEncodeError on bad input. */
export function encodeSpa(req: SpaRequest, opts: SpaEncodeOptions): string {
  const encoded = encodeFields(req);
  const plaintext = `${encoded}:${digestB64(opts.digestType ?? 'sha256', encoded)}`;
  if (plaintext.length > SPA_LIMITS.maxEncodedMsgSize) throw new SpaEncodeError('SPA message too long');
  if (opts.key.length < 1 || opts.key.length > SPA_LIMITS.maxKeyBytes)
    throw new SpaEncodeError(`encryption key must be 1-${SPA_LIMITS.maxKeyBytes} bytes`);
  const body = encryptSpa(plaintext, opts.key, opts.encryptionMode ?? 'cbc', opts.salt);
  if (!opts.hmacKey) return body;
  // As the fwknop client: "Legacy encryption mode is incompatible with HMAC usage."
  if (opts.encryptionMode === 'legacy')
    throw new SpaEncodeError('legacy encryption mode cannot be used with an HMAC');
  if (opts.hmacKey.length < 1 || opts.hmacKey.length > SPA_LIMITS.maxHmacKeyBytes)
    throw new SpaEncodeError(`HMAC key must be 1-${SPA_LIMITS.maxHmacKeyBytes} bytes`);
  const packet = body + new SpaHmac(opts.hmacType ?? 'sha256', opts.hmacKey).compute(body);
  if (packet.length > SPA_LIMITS.maxEncodedMsgSize) throw new SpaEncodeError('SPA packet too long');
  return packet;
}
