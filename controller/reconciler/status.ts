// What a grant's status should say, from what is observed (pure; the reconciler writes it):
//   Pending → Active   when every targeted node reports Applied and every security group Applied
//                      (or CoveredByExistingRule: a rule knockgate does not own allows it);
//   Failed             when a node reports Failed, or the grant is refused (bounds.ts);
//   Pending            while a security group is Failed (a full group, an unknown group, a refused
//                      call): that target is retried every pass, the others stay as they are;
//   Expired            at expiresAt;
//   Revoked            when it is being deleted (kubectl delete) while it was live.
// Conditions (metav1.Condition): Ready, Expired, Revoked, Refused, Failed; a condition keeps its
// lastTransitionTime while its status does not change.

import type { AccessGrant, AccessGrantStatus, Condition, GrantPhase } from '../../api/types.js';

export type ConditionType = 'Ready' | 'Expired' | 'Revoked' | 'Refused' | 'Failed';

export interface TargetReport {
  /** "node node-a: <message>" of the first node that reports Failed. */
  failed?: string;
  /** "security group sg-...: QuotaExceeded: <message>" of the first group that reports Failed. */
  groupFailed?: string;
  /** Targets not yet Applied. */
  waiting: string[];
  /** Targets that reported Applied or Pending and not yet Removed (or Failed). */
  notRemoved: string[];
}

/** Every target of the grant (nodes, security groups) and what each reports. */
export function reportTargets(grant: AccessGrant): TargetReport {
  const report: TargetReport = { waiting: [], notRemoved: [] };
  type Entry = [string, { state: string; reason?: string; message?: string } | undefined, boolean];
  const entries: Entry[] = [
    ...(grant.spec.targets?.nodes ?? []).map((n): Entry => [`node ${n}`, grant.status?.nodes?.[n], false]),
    ...(grant.spec.targets?.awsSecurityGroups ?? []).map((g): Entry => [
      `security group ${g.groupId}`,
      grant.status?.securityGroups?.[g.groupId],
      true,
    ]),
  ];
  for (const [what, s, group] of entries) {
    if (s?.state === 'Failed' && !group && report.failed === undefined)
      report.failed = `${what}: ${s.message ?? 'failed'}`;
    if (s?.state === 'Failed' && group && report.groupFailed === undefined)
      report.groupFailed = `${what}: ${s.reason ? `${s.reason}: ` : ''}${s.message ?? 'failed'}`;
    const applied = s?.state === 'Applied' || (group && s?.state === 'CoveredByExistingRule');
    if (!applied) report.waiting.push(what);
    // Only a target that said it applied (or is applying) has something to take away; one that
    // never reported opened nothing, and closes on the deletion anyway.
    if (s?.state === 'Applied' || s?.state === 'Pending') report.notRemoved.push(what);
  }
  return report;
}

/** `conditions` with `type` set; the lastTransitionTime moves only when the status changes. */
export function setCondition(
  conditions: Condition[] | undefined,
  type: ConditionType,
  status: Condition['status'],
  reason: string,
  message: string,
  now: number,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === type);
  const old = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type,
    status,
    reason,
    message: message.slice(0, 1024),
    lastTransitionTime:
      old && old.status === status
        ? old.lastTransitionTime
        : new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export interface DesiredStatus {
  phase: GrantPhase;
  message: string;
  conditions: Condition[];
}

/** The status for a phase change (or confirmation) with the condition that explains it. */
export function statusFor(
  grant: AccessGrant,
  phase: GrantPhase,
  reason: string,
  message: string,
  now: number,
): DesiredStatus {
  let c = grant.status?.conditions;
  c = setCondition(
    c,
    'Ready',
    phase === 'Active' ? 'True' : 'False',
    phase === 'Active' ? 'Applied' : reason,
    message,
    now,
  );
  if (phase === 'Expired') c = setCondition(c, 'Expired', 'True', reason, message, now);
  if (phase === 'Revoked') c = setCondition(c, 'Revoked', 'True', reason, message, now);
  if (phase === 'Failed')
    c = setCondition(c, reason === 'TargetFailed' ? 'Failed' : 'Refused', 'True', reason, message, now);
  return { phase, message, conditions: c };
}

/** Whether writing `desired` would change the grant's status. */
export function differs(grant: AccessGrant, desired: DesiredStatus): boolean {
  const s: AccessGrantStatus = grant.status ?? {};
  return (
    s.phase !== desired.phase ||
    s.message !== desired.message ||
    JSON.stringify(s.conditions ?? []) !== JSON.stringify(desired.conditions)
  );
}

/** When the grant's current phase began (its condition's transition), for Events and retention. */
export function phaseSince(grant: AccessGrant): number | undefined {
  const type: ConditionType | undefined =
    grant.status?.phase === 'Active'
      ? 'Ready'
      : grant.status?.phase === 'Expired'
        ? 'Expired'
        : grant.status?.phase === 'Revoked'
          ? 'Revoked'
          : grant.status?.phase === 'Failed'
            ? grant.status.conditions?.some((c) => c.type === 'Failed' && c.status === 'True')
              ? 'Failed'
              : 'Refused'
            : undefined;
  const c = grant.status?.conditions?.find((x) => x.type === type);
  const t = c ? Date.parse(c.lastTransitionTime) : NaN;
  return Number.isFinite(t) ? t : undefined;
}

/** History ends `retentionMs` after the grant ended: its expiry, or its last transition if later. */
export function retainUntil(grant: AccessGrant, retentionMs: number, now: number): number {
  let end = Date.parse(grant.spec.expiresAt);
  for (const c of grant.status?.conditions ?? [])
    end = Math.max(end, Date.parse(c.lastTransitionTime) || -Infinity);
  return (Number.isFinite(end) ? end : now) + retentionMs;
}
