// The NAT access field (fko_nat_access.c): "INTERNAL_IP,port". knockgate decodes it for
// `spa decode` and refuses every NAT message type when granting (it does no NAT).

import { SPA_LIMITS } from '../limits.js';
import { decodeB64Field } from './b64-field.js';

const NAT_RE = /^[0-9A-Za-z.:-]+,[0-9]{1,5}$/;

export function decodeNatAccess(text: string): string | undefined {
  const value = decodeB64Field(text, SPA_LIMITS.maxMessageSize);
  return value !== undefined && NAT_RE.test(value) ? value : undefined;
}
