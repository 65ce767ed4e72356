// Which grants hold a door open. A grant is live while its phase is not terminal and its expiresAt
// lies ahead; Expired, Revoked and Failed grants open nothing and are kept only as history.

import type { AccessGrant, GrantPhase } from '../../api/types.js';

const TERMINAL: ReadonlySet<GrantPhase> = new Set(['Expired', 'Revoked', 'Failed']);

export function isTerminal(grant: AccessGrant): boolean {
  const phase = grant.status?.phase;
  return phase !== undefined && TERMINAL.has(phase);
}

export function expiresAtMs(grant: AccessGrant): number {
  return Date.parse(grant.spec.expiresAt);
}

/** Live at `now`: should be open. An unparsable expiresAt counts as expired (fail closed). */
export function isLive(grant: AccessGrant, now: number): boolean {
  const end = expiresAtMs(grant);
  return !isTerminal(grant) && Number.isFinite(end) && end > now;
}
