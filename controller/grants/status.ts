// Merging a status update into a grant's status the way a Kubernetes merge-patch of the status
// subresource does: scalar fields replace, the per-target maps (nodes, securityGroups) merge key by
// key so that each agent only touches its own entry, and conditions merge by type.

import type { AccessGrantStatus, Condition } from '../../api/types.js';

function mergeConditions(old: Condition[] = [], update: Condition[]): Condition[] {
  const byType = new Map(old.map((c) => [c.type, c]));
  for (const c of update) byType.set(c.type, c);
  return [...byType.values()];
}

export function mergeStatus(
  old: AccessGrantStatus | undefined,
  update: AccessGrantStatus,
): AccessGrantStatus {
  const merged: AccessGrantStatus = { ...old };
  if (update.phase !== undefined) merged.phase = update.phase;
  if (update.message !== undefined) merged.message = update.message;
  if (update.nodes) merged.nodes = { ...old?.nodes, ...update.nodes };
  if (update.securityGroups) merged.securityGroups = { ...old?.securityGroups, ...update.securityGroups };
  if (update.conditions) merged.conditions = mergeConditions(old?.conditions, update.conditions);
  return merged;
}

/** The status update that marks a grant Expired at `now`. */
export function expiredStatus(now: number): AccessGrantStatus {
  return {
    phase: 'Expired',
    conditions: [
      {
        type: 'Expired',
        status: 'True',
        reason: 'Expired',
        message: 'expiresAt passed',
        lastTransitionTime: new Date(now).toISOString(),
      },
    ],
  };
}
