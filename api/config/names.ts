// Turning knockd section names and file names into KnockPolicy names (DNS-1123 labels).

import { DNS1123_LABEL_MAX } from '../validate-fields.js';

/** "SSH" → "ssh", "Open Web_2" → "open-web-2"; "" when nothing usable is left. */
export function toDnsLabel(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, DNS1123_LABEL_MAX)
    .replace(/-+$/, '');
}

/** `base` shortened so that `base-suffix` is still a label. */
export function withSuffix(base: string, suffix: string): string {
  const room = DNS1123_LABEL_MAX - suffix.length - 1;
  return `${base.slice(0, room).replace(/-+$/, '')}-${suffix}`;
}
