// The fwknop client's key flags (--key-base64-rijndael, --key-rijndael, --key-base64-hmac,
// --key-hmac) turned into SpaKeys, shared by `knockgate spa` and `knockgate spa decode`.

import type { Command } from 'commander';
import { SpaKeyError, spaKeysFromSecretData, type SpaKeys } from '../sniffer/spa/keys.js';
import { DIGEST_TYPES, type DigestType, type EncryptionMode } from '../sniffer/spa/types.js';
import { CliError } from './errors.js';

export interface SpaKeyFlags {
  keyBase64Rijndael?: string;
  keyRijndael?: string;
  keyBase64Hmac?: string;
  keyHmac?: string;
}

export function addKeyOptions(cmd: Command): Command {
  return cmd
    .option('--key-base64-rijndael <key>', 'base64 encryption key (KEY_BASE64)')
    .option('--key-rijndael <passphrase>', 'encryption passphrase (KEY)')
    .option('--key-base64-hmac <key>', 'base64 HMAC key (HMAC_KEY_BASE64)')
    .option('--key-hmac <passphrase>', 'HMAC passphrase (HMAC_KEY)');
}

export function keysFromFlags(flags: SpaKeyFlags): SpaKeys {
  const data: Record<string, string> = {};
  if (flags.keyBase64Rijndael !== undefined) data.KEY_BASE64 = flags.keyBase64Rijndael;
  if (flags.keyRijndael !== undefined) data.KEY = flags.keyRijndael;
  if (flags.keyBase64Hmac !== undefined) data.HMAC_KEY_BASE64 = flags.keyBase64Hmac;
  if (flags.keyHmac !== undefined) data.HMAC_KEY = flags.keyHmac;
  try {
    return spaKeysFromSecretData(data);
  } catch (err) {
    if (err instanceof SpaKeyError)
      throw new CliError(
        err.message
          .replace(/\bKEY_BASE64\b/g, '--key-base64-rijndael')
          .replace(/\bHMAC_KEY_BASE64\b/g, '--key-base64-hmac')
          .replace(/\bHMAC_KEY\b/g, '--key-hmac')
          .replace(/\bKEY\b/g, '--key-rijndael'),
      );
    throw err;
  }
}

export function parseDigestType(flag: string, value: string): DigestType {
  const v = value.toLowerCase();
  if (!(DIGEST_TYPES as string[]).includes(v))
    throw new CliError(`${flag}: unknown digest "${value}", want one of ${DIGEST_TYPES.join(', ')}`);
  return v as DigestType;
}

export function parseEncryptionMode(value: string): EncryptionMode {
  const v = value.toLowerCase();
  if (v !== 'cbc' && v !== 'legacy')
    throw new CliError(`--encryption-mode: want cbc or legacy, got "${value}"`);
  return v;
}
