// The enumerations of the fwknop wire format (lib/fko.h) and the decoded packet's shape.

import type { EncryptionMode, HmacDigestType } from '../../api/types.js';

export type { EncryptionMode, HmacDigestType };

/** Message digest types (--digest-type); the same names as the HMAC types. */
export type DigestType = HmacDigestType;

/** fko_digest_type_t / fko_hmac_type_t codes (the HMAC enum uses the same numbers). */
export const DIGEST_CODES: Record<DigestType, number> = {
  md5: 1,
  sha1: 2,
  sha256: 3,
  sha384: 4,
  sha512: 5,
  sha3_256: 6,
  sha3_512: 7,
};

export const DIGEST_TYPES = Object.keys(DIGEST_CODES) as DigestType[];

/** fko_encryption_mode_t codes for the two Rijndael modes the fwknop client sends by name. */
export const ENCRYPTION_MODE_CODES: Record<EncryptionMode, number> = { cbc: 2, legacy: 8 };

/** fko_message_type_t. */
export const MESSAGE_TYPES = [
  'command',
  'access',
  'nat-access',
  'client-timeout-access',
  'client-timeout-nat-access',
  'local-nat-access',
  'client-timeout-local-nat-access',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export function hasClientTimeout(t: MessageType): boolean {
  return t.startsWith('client-timeout-');
}

export function isNatType(t: MessageType): boolean {
  return t.endsWith('nat-access');
}

/** The fields of one SPA message, as the client put them in. */
export interface SpaFields {
  /** 16 decimal digits. */
  randValue: string;
  username: string;
  /** Seconds since the epoch, as the client's clock saw it. */
  timestamp: number;
  version: string;
  messageType: MessageType;
  /** "10.1.2.3,tcp/22,udp/53": the allow IP, then the requested proto/port list. */
  accessMessage: string;
  /** "192.168.1.5,22" for the NAT message types. */
  natAccess?: string;
  serverAuth?: string;
  /** Seconds (-f); 0 when the message type carries none. */
  clientTimeout: number;
}

/** A decoded and authenticated packet. */
export interface DecodedSpa extends SpaFields {
  digestType: DigestType;
  /** The message digest as sent (base64, no padding). */
  digest: string;
  /** 'none' when the packet carried no HMAC (accepted only where allowed). */
  hmacType: HmacDigestType | 'none';
  encryptionMode: EncryptionMode;
}
