// The audit trail: every open, extend, expire, revoke and refusal is one structured log line with
// the same fields, so `grep '"event":"open"'` or a log pipeline can follow who had access to what.

import type { Logger } from '../../api/log.js';
import type { AccessGrant } from '../../api/types.js';
import type { Refusal } from '../../sniffer/decision.js';

export type AuditEvent = 'open' | 'extend' | 'expire' | 'revoke' | 'refuse';

export interface AuditFields {
  event: AuditEvent;
  grant?: string;
  source?: string;
  ports?: string[];
  policy?: string;
  method?: string;
  expiresAt?: string;
  reason?: string;
}

/** One audit line about a grant (open, extend, expire, revoke; or a refusal to open it). */
export function auditGrant(logger: Logger, event: AuditEvent, grant: AccessGrant, reason?: string): void {
  const fields: AuditFields = {
    event,
    grant: grant.metadata.name,
    source: grant.spec.source,
    ports: grant.spec.ports,
    policy: grant.spec.policyRef?.name,
    method: grant.spec.method,
    expiresAt: grant.spec.expiresAt,
  };
  if (reason !== undefined) fields.reason = reason;
  const what = `${event} ${grant.metadata.name}: ${grant.spec.source} ${grant.spec.ports.join(',')}`;
  logger.info(
    fields,
    event === 'expire' || event === 'revoke' ? what : `${what} until ${grant.spec.expiresAt}`,
  );
}

/** One audit line for a refused knock or packet (`source` as seen on the wire, when known). */
export function auditRefusal(logger: Logger, refusal: Refusal, source?: string): void {
  const fields: AuditFields = { event: 'refuse', reason: refusal.reason };
  if (refusal.policy !== undefined) fields.policy = refusal.policy;
  if (source !== undefined) fields.source = source;
  logger.info(fields, `refuse: ${refusal.message}`);
}
