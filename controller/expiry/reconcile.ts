// Reconcile on start: before capturing, the daemon must know which grants still hold a door open.
// `live` ones are reapplied to the firewall; everything else (expired, revoked, failed, or live-phased
// but past expiresAt after downtime) must have no firewall entry, and entries that belong to no live
// grant are removed. The expiry engine then marks the overdue ones Expired.

import type { Clock } from '../../api/clock.js';
import type { AccessGrant } from '../../api/types.js';
import { isLive } from '../grants/phase.js';

export interface StartState {
  /** Grants to (re)apply: not terminal and expiresAt still ahead. */
  live: AccessGrant[];
  /** Grants that must hold no firewall entry. */
  expired: AccessGrant[];
}

export function reconcileOnStart(grants: readonly AccessGrant[], clock: Clock): StartState {
  const now = clock.now();
  const state: StartState = { live: [], expired: [] };
  for (const grant of grants) (isLive(grant, now) ? state.live : state.expired).push(grant);
  return state;
}
