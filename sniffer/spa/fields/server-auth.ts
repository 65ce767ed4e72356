// The optional server-auth field (fko_server_auth.c): free printable text, base64-encoded.

import { SPA_LIMITS } from '../limits.js';
import { decodeB64Field } from './b64-field.js';

export function decodeServerAuth(text: string): string | undefined {
  return decodeB64Field(text, SPA_LIMITS.maxMessageSize);
}
