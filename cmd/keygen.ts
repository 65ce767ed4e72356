// `knockgate keygen`: new SPA keys, printed exactly as `fwknop --key-gen` prints them.

import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { SPA_LIMITS } from '../sniffer/spa/limits.js';
import { CliError } from './errors.js';

function byteCount(flag: string, value: string, max: number): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > max)
    throw new CliError(`${flag}: want a whole number 1-${max}, got "${value}"`);
  return Number(value);
}

export function register(program: Command): void {
  program
    .command('keygen')
    .description('print a new KEY_BASE64 and HMAC_KEY_BASE64 (as fwknop --key-gen)')
    .option('--key-len <bytes>', 'encryption key length', String(SPA_LIMITS.keygenKeyBytes))
    .option('--hmac-key-len <bytes>', 'HMAC key length', String(SPA_LIMITS.keygenHmacKeyBytes))
    .action((flags: { keyLen: string; hmacKeyLen: string }) => {
      const key = randomBytes(byteCount('--key-len', flags.keyLen, SPA_LIMITS.maxKeyBytes));
      const hmacKey = randomBytes(byteCount('--hmac-key-len', flags.hmacKeyLen, SPA_LIMITS.maxHmacKeyBytes));
      process.stdout.write(
        `KEY_BASE64: ${key.toString('base64')}\nHMAC_KEY_BASE64: ${hmacKey.toString('base64')}\n`,
      );
    });
}
