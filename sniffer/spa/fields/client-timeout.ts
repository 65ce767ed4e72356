// The client timeout (fko_client_timeout.c, -f/--fw-timeout): decimal seconds, only in the
// client-timeout message types, bounded as fko_decode.c bounds it.

import { SPA_LIMITS } from '../limits.js';

export function parseClientTimeout(text: string): number | undefined {
  if (!/^[0-9]{1,6}$/.test(text)) return undefined;
  const value = Number(text);
  return value <= SPA_LIMITS.maxClientTimeout ? value : undefined;
}
