// Option value parsers shared by the subcommands; each error is one line naming the flag.

import { CliError } from './errors.js';

/** A whole number in [min, max], or CliError. */
export function intFlag(flag: string, value: string, min: number, max: number): number {
  if (!/^[0-9]{1,10}$/.test(value) || Number(value) < min || Number(value) > max)
    throw new CliError(`${flag}: want a whole number ${min}-${max}, got "${value}"`);
  return Number(value);
}

/** intFlag as a commander option parser. */
export function intOption(flag: string, min: number, max: number): (value: string) => number {
  return (value) => intFlag(flag, value, min, max);
}

/** --request-timeout of the cluster roles: seconds, the deadline of each API request but watches. */
export const REQUEST_TIMEOUT_OPTION = {
  flags: '--request-timeout <seconds>',
  description: 'deadline of each Kubernetes API request, watches excepted (1-600)',
  parse: intOption('--request-timeout', 1, 600),
  defaultSeconds: 10,
} as const;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function logLevel(value: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(value))
    throw new CliError(`--log-level: want one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return value;
}
