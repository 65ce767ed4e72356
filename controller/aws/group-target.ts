// Security groups as a grant target, for a process that holds every grant of its cluster id (the
// standalone daemon, beside its local firewall target):
//   add(grant)     the grant's rules go into its groups; resolves with each group's state
//   remove(name)   the grant's rules go, unless a live grant still needs them (a later end)
//   sync(grants)   the whole set replaced; every region listed again (start, periodic resync)
// The rules are computed whole (desired.ts) and applied by RegionSync, the same region pass the
// controller runs, with graceMs 0: no informer lags behind this process's own grants, so a tagged
// rule of this cluster that no live grant needs goes at once — including, after a restart, the
// rules of grants that expired while the daemon was down.
//
// Cost: each pass works from the rules this target last listed with its own changes applied, so a
// grant costs one AuthorizeSecurityGroupIngress per group, one RevokeSecurityGroupIngress per group
// at its end (shared by the grants ending together) and no DescribeSecurityGroupRules. The listing
// is redone by sync() and whenever the cached view cannot explain an answer (a Duplicate, a revoke
// that failed, a failed listing). Changes made while a region's pass runs are applied together by
// the next pass; a pass that leaves something undone is retried with backoff.

import type { Clock, TimerHandle } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { AccessGrant, AwsSecurityGroupRef, SecurityGroupStatus } from '../../api/types.js';
import { expiresAtMs } from '../grants/phase.js';
import { awsErrorLine, type Ec2Clients } from './client.js';
import type { AwsMetrics } from './metrics.js';
import { desiredRules, groupKey, ruleKey, type DesiredRule, type SgGrant } from './desired.js';
import { RegionSync, reasonOf, type RegionSyncResult } from './region-sync.js';
import { listClusterRules, type ClusterRule } from './rules.js';
import { formatExpiresAt } from './tags.js';

export const GROUP_TARGET_RETRY = {
  /** First retry of a pass that left something undone; doubled up to maxMs. */
  minMs: 1_000,
  maxMs: 30_000,
} as const;

export interface SecurityGroupTargetOptions {
  clusterId: string;
  clients: Ec2Clients;
  clock: Clock;
  logger: Logger;
  /** knockgate_aws_calls_total, _rules_live, _revoke_lag_seconds (the controller's metrics). */
  metrics?: AwsMetrics;
}

/** What add() saw for one grant: each group's state (by groupKey) and, when not all Applied, why. */
export interface GroupTargetResult {
  groups: Record<string, SecurityGroupStatus>;
  /** One line naming the first group that failed and the AWS reason; undefined when all applied. */
  problem?: string;
}

interface Region {
  sync: RegionSync;
  /** This cluster's rules as last listed plus this target's changes; undefined: list next pass. */
  observed: ClusterRule[] | undefined;
  chain: Promise<unknown>;
  /** The pass asked for and not started yet: every request meanwhile shares it. */
  queued: Promise<RegionSyncResult> | undefined;
  retry: TimerHandle | undefined;
  retryMs: number;
}

const ruleKeyOf = (region: string, r: ClusterRule) =>
  ruleKey(region, r.groupId, r.protocol, r.fromPort === r.toPort ? r.fromPort : -1, r.cidr);

export function toSgGrant(grant: AccessGrant): SgGrant {
  return {
    name: grant.metadata.name,
    source: grant.spec.source,
    ports: grant.spec.ports,
    expiresAt: expiresAtMs(grant),
    groups: grant.spec.targets?.awsSecurityGroups ?? [],
  };
}

export class SecurityGroupTarget {
  private readonly live = new Map<string, SgGrant>();
  private readonly regions = new Map<string, Region>();
  private readonly calls = new Map<string, number>();
  private closed = false;

  constructor(private readonly opts: SecurityGroupTargetOptions) {}

  /** AWS calls made so far, by "Action/outcome". */
  callCounts(): Map<string, number> {
    return new Map(this.calls);
  }

  /** Put the grant's rules in its groups (or move their end later). Never throws. */
  async add(grant: AccessGrant): Promise<GroupTargetResult> {
    const sg = toSgGrant(grant);
    this.live.set(sg.name, sg);
    const results = new Map<string, RegionSyncResult>();
    for (const region of regionsOf([sg]))
      results.set(region, await this.request(region).catch((err: unknown) => failedPass(err)));
    return this.outcome(sg, results);
  }

  /** Take the grant's rules away (those no other live grant needs). Never throws. */
  async remove(name: string): Promise<void> {
    const sg = this.live.get(name);
    if (!sg) return;
    this.live.delete(name);
    await Promise.all(regionsOf([sg]).map((region) => this.request(region).catch(() => undefined)));
  }

  /**
   * Replace the live set with `grants` and list every region again: theirs, `regions` (those the
   * configuration names) and every region seen before. Resolves with each region's result.
   */
  async sync(grants: AccessGrant[], regions: string[] = []): Promise<Map<string, RegionSyncResult>> {
    this.live.clear();
    for (const g of grants) {
      const sg = toSgGrant(g);
      if (sg.groups.length > 0) this.live.set(sg.name, sg);
    }
    const all = new Set([...regionsOf([...this.live.values()]), ...regions, ...this.regions.keys()]);
    const out = new Map<string, RegionSyncResult>();
    await Promise.all(
      [...all].map(async (region) =>
        out.set(region, await this.request(region, true).catch((err: unknown) => failedPass(err))),
      ),
    );
    return out;
  }

  /** Wait for passes in flight; no retry after this. The rules stay (each carries its end). */
  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.regions.values()) r.retry?.cancel();
    await Promise.all([...this.regions.values()].map((r) => r.chain));
  }

  // --- passes ----------------------------------------------------------------------------------

  private region(name: string): Region {
    let r = this.regions.get(name);
    if (!r) {
      r = {
        sync: new RegionSync(this.opts.clients.get(name)),
        observed: undefined,
        chain: Promise.resolve(),
        queued: undefined,
        retry: undefined,
        retryMs: GROUP_TARGET_RETRY.minMs,
      };
      this.regions.set(name, r);
    }
    return r;
  }

  /** A pass over `name` that starts after any running one; `fresh` lists the rules again. */
  private request(name: string, fresh = false): Promise<RegionSyncResult> {
    const r = this.region(name);
    if (fresh) r.observed = undefined;
    if (r.queued) return r.queued;
    const queued = r.chain.then(() => {
      r.queued = undefined;
      return this.pass(name, r);
    });
    r.queued = queued;
    r.chain = queued.catch(() => undefined);
    return queued;
  }

  private async pass(name: string, r: Region): Promise<RegionSyncResult> {
    const { clusterId, logger } = this.opts;
    const now = this.opts.clock.now();
    const desired = [...desiredRules([...this.live.values()], now).values()].filter((d) => d.region === name);
    const cached = r.observed;
    let observed: ClusterRule[];
    try {
      observed = cached ?? (await listClusterRules(this.opts.clients.get(name), clusterId));
      if (!cached) this.count('DescribeSecurityGroupRules/ok');
    } catch (err) {
      this.count(`DescribeSecurityGroupRules/${reasonOf(err)}`);
      logger.error(
        { event: 'aws-error', region: name, action: 'DescribeSecurityGroupRules' },
        `security groups in ${name}: listing this cluster's rules failed, nothing changed: ${awsErrorLine(err)}`,
      );
      this.retryLater(name, r);
      return failedPass(err, desired);
    }
    const res = await r.sync.sync(desired, { clusterId, region: name, now, graceMs: 0, observed });
    for (const [k, n] of res.calls) this.count(k, n);
    const { next, stale } = this.applied(name, observed, desired, res, cached !== undefined);
    this.logRevoked(name, res);
    this.observe(name, res, stale ? undefined : next);
    if (stale && cached) {
      // The cached view missed something (a rule added or removed by someone else): list again now.
      r.observed = undefined;
      return this.pass(name, r);
    }
    if (stale) {
      r.observed = undefined;
      this.retryLater(name, r);
    } else {
      r.observed = next;
      r.retryMs = GROUP_TARGET_RETRY.minMs;
    }
    return res;
  }

  /** The rules after a pass (observed, minus revoked, plus added and extended), and whether the view is stale. */
  private applied(
    region: string,
    observed: ClusterRule[],
    desired: DesiredRule[],
    res: RegionSyncResult,
    fromCache: boolean,
  ): { next: ClusterRule[]; stale: boolean } {
    const gone = new Set(res.revoked.map((x) => x.ruleId));
    const next = new Map(observed.filter((x) => !gone.has(x.ruleId)).map((x) => [x.ruleId, x]));
    const wanted = new Set(desired.map((d) => d.key));
    // graceMs 0: every rule no live grant needs was to go; one still there is a failed revoke.
    let stale = [...next.values()].some((x) => !wanted.has(ruleKeyOf(region, x)));
    for (const d of desired) {
      const o = res.rules.get(d.key);
      if (o?.state === 'CoveredByExistingRule' && fromCache) stale = true;
      // Failed: nothing was added (all or nothing). A failed tag update keeps the old end, retried.
      if (o?.state !== 'Applied' || o.reason) continue;
      if (!o.ruleId) {
        stale = true;
        continue;
      }
      next.set(o.ruleId, {
        ruleId: o.ruleId,
        groupId: d.groupId,
        protocol: d.protocol,
        fromPort: d.port,
        toPort: d.port,
        cidr: d.cidr,
        grant: d.grant,
        expiresAt: Math.ceil(d.expiresAt / 1000) * 1000,
        expiresAtTag: formatExpiresAt(d.expiresAt),
      });
    }
    return { next: [...next.values()], stale };
  }

  private retryLater(name: string, r: Region): void {
    if (this.closed || r.retry) return;
    const ms = r.retryMs;
    r.retryMs = Math.min(ms * 2, GROUP_TARGET_RETRY.maxMs);
    r.retry = this.opts.clock.setTimeout(() => {
      r.retry = undefined;
      if (!this.closed) void this.request(name, true).catch(() => undefined);
    }, ms);
  }

  private logRevoked(region: string, res: RegionSyncResult): void {
    const byGroup = new Map<string, ClusterRule[]>();
    for (const x of res.revoked) byGroup.set(x.groupId, [...(byGroup.get(x.groupId) ?? []), x]);
    for (const [groupId, rules] of byGroup)
      this.opts.logger.info(
        {
          event: 'aws-revoke',
          region,
          groupId,
          ruleIds: rules.map((x) => x.ruleId),
          grants: [...new Set(rules.map((x) => x.grant ?? ''))],
        },
        `revoked ${rules.length} rule(s) of ${groupId} (${region}): ${rules.map((x) => `${x.cidr} ${x.protocol}/${x.fromPort}`).join(', ')}`,
      );
  }

  private count(key: string, n = 1): void {
    this.calls.set(key, (this.calls.get(key) ?? 0) + n);
    const [action, outcome] = key.split('/');
    this.opts.metrics?.calls.inc({ action, outcome }, n);
  }

  /** Rules live per group (when the view is known) and the revoke lag of what this pass revoked. */
  private observe(region: string, res: RegionSyncResult, rules: ClusterRule[] | undefined): void {
    const m = this.opts.metrics;
    if (!m) return;
    const now = this.opts.clock.now();
    for (const r of res.revoked)
      if (r.expiresAt !== undefined && r.expiresAt <= now + 1000)
        m.revokeLag.observe(Math.max(0, now - r.expiresAt) / 1000);
    if (!rules) return;
    const groups = new Map<string, number>();
    for (const r of rules) groups.set(r.groupId, (groups.get(r.groupId) ?? 0) + 1);
    for (const r of res.revoked) if (!groups.has(r.groupId)) groups.set(r.groupId, 0);
    for (const [group, n] of groups) m.rulesLive.set({ region, group }, n);
  }

  /** Each of the grant's groups: Applied with the rule id, or Failed with the AWS reason. */
  private outcome(sg: SgGrant, results: Map<string, RegionSyncResult>): GroupTargetResult {
    const since = new Date(this.opts.clock.now()).toISOString();
    const groups: Record<string, SecurityGroupStatus> = {};
    let problem: string | undefined;
    const now = this.opts.clock.now();
    const mine = desiredRules([{ ...sg, expiresAt: Math.max(sg.expiresAt, now + 1) }], now);
    for (const ref of sg.groups) {
      const rules = [...mine.values()].filter((d) => d.region === ref.region && d.groupId === ref.groupId);
      const res = results.get(ref.region);
      const outcomes = rules.map((d) => ({ d, o: res?.rules.get(d.key) }));
      const failed = outcomes.find(({ o }) => !o || o.state === 'Failed');
      if (failed) {
        const why = failed.o?.message ?? res?.listError?.message ?? 'no answer for this rule';
        const reason = failed.o?.reason ?? res?.listError?.reason ?? 'AwsError';
        groups[groupKey(ref)] = { state: 'Failed', since, reason, message: why };
        problem ??= `${describe(ref)} ${failed.d.protocol}/${failed.d.port}: ${reason}: ${why}`;
        continue;
      }
      // Every port covered by a rule knockgate does not own: access works, nothing to revoke.
      const allCovered = outcomes.every(({ o }) => o!.state === 'CoveredByExistingRule');
      const ruleIds = outcomes.flatMap(({ o }) => (o!.ruleId ? [o!.ruleId] : []));
      groups[groupKey(ref)] = {
        state: allCovered ? 'CoveredByExistingRule' : 'Applied',
        since,
        ...(ruleIds[0] ? { ruleId: ruleIds[0] } : {}),
        ...(ruleIds.length > 1 ? { ruleIds } : {}),
        ...(allCovered ? { reason: 'CoveredByExistingRule' } : {}),
      };
    }
    return problem === undefined ? { groups } : { groups, problem };
  }
}

function describe(ref: AwsSecurityGroupRef): string {
  return `security group ${ref.groupId} (${ref.region})`;
}

function regionsOf(grants: SgGrant[]): string[] {
  return [...new Set(grants.flatMap((g) => g.groups.map((ref) => ref.region)))];
}

/** A pass that could not run: every desired rule Failed with the reason, nothing changed. */
function failedPass(err: unknown, desired: DesiredRule[] = []): RegionSyncResult {
  const listError = { reason: reasonOf(err), message: awsErrorLine(err) };
  return {
    rules: new Map(desired.map((d) => [d.key, { state: 'Failed' as const, ...listError }])),
    revoked: [],
    calls: new Map(),
    listError,
  };
}
