// The protocol version ("3.0.0" from fwknop 2.6): free text of at most 8 characters.

import { SPA_LIMITS } from '../limits.js';

export function parseVersion(text: string): string | undefined {
  return text.length >= 1 && text.length <= SPA_LIMITS.maxVersionSize ? text : undefined;
}
