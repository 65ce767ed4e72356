// The random value (fko_rand_value.c): 16 decimal digits that make every packet unique.

import { randomInt } from 'node:crypto';
import { SPA_LIMITS } from '../limits.js';

const RAND_RE = new RegExp(`^[0-9]{${SPA_LIMITS.randValueSize}}$`);

export function generateRandValue(): string {
  let digits = '';
  while (digits.length < SPA_LIMITS.randValueSize) digits += String(randomInt(0, 10));
  return digits;
}

export function isRandValue(text: string): boolean {
  return RAND_RE.test(text);
}
