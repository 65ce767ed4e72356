// The username (fko_user.c validate_username): printable ASCII without " / \ [ ] : ; | = , + * ? < >,
// sent base64-encoded; at most MAX_SPA_USERNAME_SIZE characters.

import { SPA_LIMITS } from '../limits.js';
import { decodeB64Field } from './b64-field.js';

const USERNAME_RE = /^[^"/\\[\]:;|=,+*?<>]+$/;

export function isValidUsername(name: string): boolean {
  return (
    name.length >= 1 &&
    name.length < SPA_LIMITS.maxUsernameSize &&
    /^[\x20-\x7e]+$/.test(name) &&
    USERNAME_RE.test(name)
  );
}

export function parseUsername(text: string): string | undefined {
  const name = decodeB64Field(text, SPA_LIMITS.maxUsernameSize);
  return name !== undefined && isValidUsername(name) ? name : undefined;
}
