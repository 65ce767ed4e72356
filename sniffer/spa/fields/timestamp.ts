// The client's timestamp (fko_timestamp.c): decimal seconds since the epoch, at most 12 digits.

import { SPA_LIMITS } from '../limits.js';

const TS_RE = new RegExp(`^[0-9]{1,${SPA_LIMITS.maxTimestampSize}}$`);

export function parseTimestamp(text: string): number | undefined {
  return TS_RE.test(text) ? Number(text) : undefined;
}
