// One region brought to the desired rules, level-based: list this cluster's tagged rules
// (rules.ts), then
//   - a desired rule that exists is Applied (its expires-at tag moved later with CreateTags when a
//     later grant needs it);
//   - the missing ones in one group with one end (whole seconds) are added by ONE
//     AuthorizeSecurityGroupIngress with their tags, whichever grants they are for (all-or-nothing
//     on EC2's side, so a failure leaves nothing half-applied; a Duplicate or a full group is
//     retried one grant at a time). The grant tag names the first grant of the call; each rule's
//     description names its own;
//   - a rule no live grant needs is revoked by id — unless it was first seen less than `graceMs`
//     ago and its own expiry has not passed (a rule this controller just added for a grant the
//     informer has not shown yet).
// An existing rule without this cluster's tag (InvalidPermission.Duplicate) is recorded as
// CoveredByExistingRule and never touched. Errors become a reason per rule, never an exception:
// the caller writes them into status and requeues.

import {
  AuthorizeSecurityGroupIngressCommand,
  CreateTagsCommand,
  RevokeSecurityGroupIngressCommand,
  type EC2Client,
  type IpPermission,
} from '@aws-sdk/client-ec2';
import { awsErrorLine } from './client.js';
import type { DesiredRule } from './desired.js';
import { ruleKey } from './desired.js';
import { listClusterRules, type ClusterRule } from './rules.js';
import { formatExpiresAt, ruleDescription, ruleTags, TAG_EXPIRES_AT, TAG_GRANT } from './tags.js';

export type RuleState = 'Applied' | 'Failed' | 'CoveredByExistingRule';

/** Why a rule is not Applied: the status reason (and the Event's). */
export type RuleReason =
  | 'QuotaExceeded'
  | 'GroupNotFound'
  | 'Unauthorized'
  | 'AuthFailure'
  | 'Throttled'
  | 'AwsError'
  | 'CoveredByExistingRule';

export interface RuleOutcome {
  state: RuleState;
  ruleId?: string;
  reason?: RuleReason;
  message?: string;
}

export interface RegionSyncResult {
  /** By DesiredRule.key. */
  rules: Map<string, RuleOutcome>;
  /** Rule ids revoked in this pass. */
  revoked: ClusterRule[];
  /** This cluster's rules no live grant needs, still there: in their grace period, or not revoked. */
  kept?: ClusterRule[];
  /** Calls made, by action and outcome ("AuthorizeSecurityGroupIngress/ok"). */
  calls: Map<string, number>;
  /** Set when the listing itself failed: nothing was changed. */
  listError?: { reason: RuleReason; message: string };
}

export interface RegionSyncOptions {
  clusterId: string;
  region: string;
  now: number;
  /** How long a rule nobody needs is kept after it was first seen (default 30 s). */
  graceMs?: number;
  /**
   * Rules nobody needs that go at once, without the grace period: e.g. the controller knows the
   * grant its tag names and that grant has ended (deleted, expired, refused).
   */
  revokeNow?: (rule: ClusterRule) => boolean;
  /**
   * This cluster's rules as the caller last saw them (a previous pass's listing plus what that pass
   * changed): the listing is skipped. For a caller that owns every rule of its cluster id and
   * lists again periodically (the standalone daemon), so a grant costs no DescribeSecurityGroupRules.
   */
  observed?: ClusterRule[];
}

/** Rules per AuthorizeSecurityGroupIngress call (a bound on the request size). */
export const MAX_RULES_PER_CALL = 100;

/** The EC2 error code → the status reason. */
export function reasonOf(err: unknown): RuleReason {
  const code = err instanceof Error ? err.name : '';
  if (code === 'RulesPerSecurityGroupLimitExceeded') return 'QuotaExceeded';
  if (code === 'InvalidGroup.NotFound' || code === 'InvalidGroupId.Malformed') return 'GroupNotFound';
  if (code === 'UnauthorizedOperation') return 'Unauthorized';
  if (code === 'AuthFailure' || code === 'CredentialsProviderError') return 'AuthFailure';
  if (code === 'RequestLimitExceeded' || code === 'Throttling') return 'Throttled';
  return 'AwsError';
}

const isDuplicate = (err: unknown) => err instanceof Error && err.name === 'InvalidPermission.Duplicate';

function permission(r: DesiredRule): IpPermission {
  const range = { Description: ruleDescription(r.grant) };
  return {
    IpProtocol: r.protocol,
    FromPort: r.port,
    ToPort: r.port,
    ...(r.cidr.includes(':')
      ? { Ipv6Ranges: [{ ...range, CidrIpv6: r.cidr }] }
      : { IpRanges: [{ ...range, CidrIp: r.cidr }] }),
  };
}

/** Keeps, across passes, when each unneeded rule was first seen (the grace period). */
export class RegionSync {
  private readonly firstSeen = new Map<string, number>();

  constructor(private readonly client: EC2Client) {}

  async sync(desired: DesiredRule[], opts: RegionSyncOptions): Promise<RegionSyncResult> {
    const calls = new Map<string, number>();
    const count = (action: string, outcome: string) =>
      calls.set(`${action}/${outcome}`, (calls.get(`${action}/${outcome}`) ?? 0) + 1);
    const rules = new Map<string, RuleOutcome>();
    let observed: ClusterRule[];
    try {
      observed = opts.observed ?? (await listClusterRules(this.client, opts.clusterId));
      if (!opts.observed) count('DescribeSecurityGroupRules', 'ok');
    } catch (err) {
      count('DescribeSecurityGroupRules', reasonOf(err));
      const listError = { reason: reasonOf(err), message: awsErrorLine(err) };
      for (const d of desired) rules.set(d.key, { state: 'Failed', ...listError });
      return { rules, revoked: [], kept: [], calls, listError };
    }

    const byKey = new Map<string, ClusterRule>();
    const extra: ClusterRule[] = [];
    for (const r of observed) {
      const port = r.fromPort === r.toPort ? r.fromPort : -1;
      const key = ruleKey(opts.region, r.groupId, r.protocol, port, r.cidr);
      if (byKey.has(key)) extra.push(r);
      else byKey.set(key, r);
    }
    const wanted = new Set(desired.map((d) => d.key));

    // Existing rules: Applied; a later end moves the tag.
    const missing: DesiredRule[] = [];
    for (const d of desired) {
      const have = byKey.get(d.key);
      if (!have) {
        missing.push(d);
        continue;
      }
      this.firstSeen.delete(have.ruleId);
      if (have.expiresAt === undefined || have.expiresAt < Math.ceil(d.expiresAt / 1000) * 1000) {
        try {
          await this.client.send(
            new CreateTagsCommand({
              Resources: [have.ruleId],
              Tags: [
                { Key: TAG_EXPIRES_AT, Value: formatExpiresAt(d.expiresAt) },
                { Key: TAG_GRANT, Value: d.grant },
              ],
            }),
          );
          count('CreateTags', 'ok');
        } catch (err) {
          count('CreateTags', reasonOf(err));
          // The rule is there (access works); the tag only tells a sweep when to remove it.
          rules.set(d.key, {
            state: 'Applied',
            ruleId: have.ruleId,
            reason: reasonOf(err),
            message: `expiry tag not updated: ${awsErrorLine(err)}`,
          });
          continue;
        }
      }
      rules.set(d.key, { state: 'Applied', ruleId: have.ruleId });
    }

    // Missing rules: one Authorize per group and end (the expires-at tag, whole seconds) for every
    // grant that needs one — 40 grants made in one second cost one call per group, not 40 — in
    // chunks of MAX_RULES_PER_CALL.
    const batches = new Map<string, DesiredRule[]>();
    for (const d of missing) {
      const k = `${d.groupId} ${formatExpiresAt(d.expiresAt)}`;
      const batch = batches.get(k) ?? [];
      batch.push(d);
      batches.set(k, batch);
    }
    for (const batch of batches.values())
      for (let i = 0; i < batch.length; i += MAX_RULES_PER_CALL)
        await this.authorize(batch.slice(i, i + MAX_RULES_PER_CALL), opts, rules, count);

    // Rules no live grant needs.
    const revoke: ClusterRule[] = [...extra];
    const graceMs = opts.graceMs ?? 30_000;
    for (const [key, r] of byKey) {
      if (wanted.has(key)) continue;
      const seen = this.firstSeen.get(r.ruleId) ?? opts.now;
      this.firstSeen.set(r.ruleId, seen);
      const expired = r.expiresAt === undefined || r.expiresAt <= opts.now;
      if (expired || opts.now - seen >= graceMs || opts.revokeNow?.(r)) revoke.push(r);
    }
    const revoked: ClusterRule[] = [];
    const byGroup = new Map<string, ClusterRule[]>();
    for (const r of revoke) byGroup.set(r.groupId, [...(byGroup.get(r.groupId) ?? []), r]);
    for (const [groupId, group] of byGroup) {
      try {
        await this.client.send(
          new RevokeSecurityGroupIngressCommand({
            GroupId: groupId,
            SecurityGroupRuleIds: group.map((r) => r.ruleId),
          }),
        );
        count('RevokeSecurityGroupIngress', 'ok');
        for (const r of group) this.firstSeen.delete(r.ruleId);
        revoked.push(...group);
      } catch (err) {
        // Left for the next pass (the rule's own expiry tag also lets `knockgate sweep` take it).
        count('RevokeSecurityGroupIngress', reasonOf(err));
      }
    }
    for (const id of [...this.firstSeen.keys()])
      if (!observed.some((r) => r.ruleId === id)) this.firstSeen.delete(id);
    const gone = new Set(revoked.map((r) => r.ruleId));
    const kept = [...byKey].filter(([k, r]) => !wanted.has(k) && !gone.has(r.ruleId)).map(([, r]) => r);
    kept.push(...extra.filter((r) => !gone.has(r.ruleId)));
    return { rules, revoked, kept, calls, listError: undefined };
  }

  private async authorize(
    batch: DesiredRule[],
    opts: RegionSyncOptions,
    rules: Map<string, RuleOutcome>,
    count: (action: string, outcome: string) => void,
  ): Promise<void> {
    const first = batch[0]!;
    try {
      const res = await this.client.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: first.groupId,
          IpPermissions: batch.map(permission),
          TagSpecifications: [
            {
              ResourceType: 'security-group-rule',
              Tags: ruleTags(opts.clusterId, first.grant, first.expiresAt),
            },
          ],
        }),
      );
      count('AuthorizeSecurityGroupIngress', 'ok');
      for (const d of batch) {
        const made = (res.SecurityGroupRules ?? []).find(
          (r) =>
            r.IpProtocol === d.protocol &&
            r.FromPort === d.port &&
            (r.CidrIpv4 ?? r.CidrIpv6 ?? '').toLowerCase() === d.cidr,
        );
        rules.set(d.key, {
          state: 'Applied',
          ...(made?.SecurityGroupRuleId ? { ruleId: made.SecurityGroupRuleId } : {}),
        });
      }
    } catch (err) {
      count('AuthorizeSecurityGroupIngress', isDuplicate(err) ? 'Duplicate' : reasonOf(err));
      const grants = [...new Set(batch.map((d) => d.grant))];
      if (grants.length > 1 && (isDuplicate(err) || reasonOf(err) === 'QuotaExceeded')) {
        // All or nothing, for several grants: again one call per grant, so that one grant's
        // covered rule or a group with room for some grants fails only what it must.
        for (const g of grants)
          await this.authorize(
            batch.filter((d) => d.grant === g),
            opts,
            rules,
            count,
          );
        return;
      }
      if (isDuplicate(err) && batch.length > 1) {
        // All or nothing: find which one an existing (untagged) rule covers, one at a time.
        for (const d of batch) await this.authorize([d], opts, rules, count);
        return;
      }
      for (const d of batch)
        rules.set(
          d.key,
          isDuplicate(err)
            ? {
                state: 'CoveredByExistingRule',
                reason: 'CoveredByExistingRule',
                message: 'a rule knockgate does not own already allows this source; it is never revoked',
              }
            : { state: 'Failed', reason: reasonOf(err), message: awsErrorLine(err) },
        );
    }
  }
}
