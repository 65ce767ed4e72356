// Logging: JSON lines with pino (one structured line per event); human-readable when stdout is a
// terminal. Keys never reach logs: every logger redacts the fields that could hold them.

import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'key',
  'hmacKey',
  'keys',
  '*.key',
  '*.hmacKey',
  '*.keys',
  'secret',
  '*.secret',
  'passphrase',
  '*.passphrase',
];

export function createLogger(
  opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  const level = opts.level ?? process.env.KNOCKGATE_LOG_LEVEL ?? 'info';
  const pretty = !opts.destination && process.stdout.isTTY;
  const base = {
    level,
    name: opts.name ?? 'knockgate',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino(base, (opts.destination as pino.DestinationStream | undefined) ?? pino.destination(1));
}
