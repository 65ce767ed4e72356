// `knockgate sweep`: revoke this cluster's security-group rules whose knockgate.io/expires-at tag
// has passed, with no Kubernetes at all — for a cron job or a Lambda, so access closes even when the
// cluster that opened it is gone. Per region: list the rules tagged knockgate.io/cluster=ID (rules.ts),
// pick the expired ones, read those again just before revoking (a rule whose expiry the controller
// extended meanwhile is kept), and revoke them by id, one call per group.
//
// Which rules it touches: ingress rules tagged for this cluster whose expires-at has passed, or that
// carry no readable expires-at (knockgate writes it with every rule it adds, atomically, so such a rule
// has no known end: closing it is the fail-closed choice). Never an untagged rule, never another
// cluster's, never an egress rule.

import { RevokeSecurityGroupIngressCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { awsErrorLine, type Ec2Clients } from './client.js';
import { listClusterRules, type ClusterRule } from './rules.js';

/** Rule ids per RevokeSecurityGroupIngress call. */
export const REVOKE_BATCH = 100;

export interface SweepOptions {
  clusterId: string;
  regions: string[];
  clients: Ec2Clients;
  now: () => number;
  /** Report what would be revoked, change nothing. */
  dryRun?: boolean;
}

export interface RevokedRule extends ClusterRule {
  region: string;
  /** Why it went: "expired 2026-...", or "no valid expires-at tag". */
  reason: string;
}

export interface RegionSweep {
  region: string;
  revoked: RevokedRule[];
  /** This cluster's rules left in place because they have not expired. */
  kept: number;
  /** Revoked meanwhile by someone else (InvalidSecurityGroupRuleId.NotFound): nothing left to do. */
  alreadyGone: number;
  /** Set when the region could not be swept completely: the one-line reason. */
  error?: string;
}

function dueReason(rule: ClusterRule, now: number): string | undefined {
  if (rule.expiresAt === undefined)
    return rule.expiresAtTag === undefined
      ? 'no expires-at tag'
      : `unreadable expires-at tag "${rule.expiresAtTag}"`;
  if (rule.expiresAt <= now) return `expired ${new Date(rule.expiresAt).toISOString()}`;
  return undefined;
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && err.name === 'InvalidSecurityGroupRuleId.NotFound';
}

async function revokeIds(
  client: EC2Client,
  groupId: string,
  ids: string[],
): Promise<{ revoked: string[]; gone: string[] }> {
  try {
    await client.send(new RevokeSecurityGroupIngressCommand({ GroupId: groupId, SecurityGroupRuleIds: ids }));
    return { revoked: ids, gone: [] };
  } catch (err) {
    // The call is all-or-nothing: one id revoked meanwhile fails the batch. Go one by one then.
    if (!isNotFound(err) || ids.length === 1) {
      if (isNotFound(err)) return { revoked: [], gone: ids };
      throw err;
    }
  }
  const out = { revoked: [] as string[], gone: [] as string[] };
  for (const id of ids) {
    const r = await revokeIds(client, groupId, [id]);
    out.revoked.push(...r.revoked);
    out.gone.push(...r.gone);
  }
  return out;
}

export async function sweepRegion(options: SweepOptions, region: string): Promise<RegionSweep> {
  const result: RegionSweep = { region, revoked: [], kept: 0, alreadyGone: 0 };
  try {
    const client = options.clients.get(region);
    const listed = await listClusterRules(client, options.clusterId);
    const due = listed.filter((r) => dueReason(r, options.now()) !== undefined);
    result.kept = listed.length - due.length;
    if (due.length === 0) return result;
    const byGroup = new Map<string, ClusterRule[]>();
    for (const r of due) byGroup.set(r.groupId, [...(byGroup.get(r.groupId) ?? []), r]);
    for (const [groupId, rules] of byGroup) {
      for (let i = 0; i < rules.length; i += REVOKE_BATCH) {
        const batch = rules.slice(i, i + REVOKE_BATCH);
        // Read again just before revoking: keep what was extended or untagged meanwhile.
        const fresh = new Map(
          (await listClusterRules(client, options.clusterId, { ruleIds: batch.map((r) => r.ruleId) })).map(
            (r) => [r.ruleId, r],
          ),
        );
        const now = options.now();
        const still = batch.flatMap((r) => {
          const f = fresh.get(r.ruleId);
          const reason = f && dueReason(f, now);
          return f && reason ? [{ ...f, region, reason }] : [];
        });
        result.kept += batch.filter((r) => fresh.has(r.ruleId)).length - still.length;
        result.alreadyGone += batch.filter((r) => !fresh.has(r.ruleId)).length;
        if (still.length === 0) continue;
        if (options.dryRun) {
          result.revoked.push(...still);
          continue;
        }
        const { revoked, gone } = await revokeIds(
          client,
          groupId,
          still.map((r) => r.ruleId),
        );
        result.revoked.push(...still.filter((r) => revoked.includes(r.ruleId)));
        result.alreadyGone += gone.length;
      }
    }
  } catch (err) {
    result.error = awsErrorLine(err);
  }
  return result;
}

/** Sweep every region (one after another: each has its own client and its own request quota). */
export async function sweep(options: SweepOptions): Promise<RegionSweep[]> {
  const results: RegionSweep[] = [];
  for (const region of [...new Set(options.regions)]) results.push(await sweepRegion(options, region));
  return results;
}

function ports(r: ClusterRule): string {
  if (r.protocol === '-1') return 'all';
  return r.fromPort === r.toPort ? `${r.protocol}/${r.fromPort}` : `${r.protocol}/${r.fromPort}-${r.toPort}`;
}

/** What `knockgate sweep` prints: one line per revoked rule, one summary line per region. */
export function formatSweep(results: RegionSweep[], dryRun = false): { stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  for (const r of results) {
    for (const rule of r.revoked)
      stdout += `${dryRun ? 'would revoke' : 'revoked'} ${rule.ruleId} ${r.region} ${rule.groupId} ${ports(rule)} ${rule.cidr} grant=${rule.grant ?? '-'} (${rule.reason})\n`;
    const summary = `${r.region}: ${r.revoked.length} ${dryRun ? 'to revoke' : 'revoked'}, ${r.kept} not expired kept${r.alreadyGone ? `, ${r.alreadyGone} already gone` : ''}`;
    if (r.error) stderr += `sweep ${r.region}: ${r.error} (${summary})\n`;
    else stdout += `${summary}\n`;
  }
  return { stdout, stderr };
}
