// The controller's security-group reconciler (leader work; controller/reconciler/manager.ts runs
// it, one work-queue key per region). Level-based, the kube-proxy way: every pass of a region
// computes the whole desired state from the grant cache and brings EC2 to it (region-sync.ts),
// then writes what it observed into each grant's status.securityGroups[groupId]:
//
//   live grant that passes the checks   its rules desired; per group Applied (rule id), Failed
//                                       (QuotaExceeded, GroupNotFound, Unauthorized, AuthFailure:
//                                       an Event, that group only, retried every pass), Pending
//                                       (Throttled, AwsError: the pass is retried with backoff) or
//                                       CoveredByExistingRule (an untagged rule allows it already);
//   ended grant (expired, terminal, being deleted, refused)   not desired; its rules are revoked at
//                                       once (no grace period: the cache holds the grant its tag
//                                       names) unless another live grant needs them,
//                                       then its groups say Removed — what the finalizer
//                                       knockgate.io/revoke waits for;
//   undecided (its policy not cached yet, node labels not listed)   neither desired nor revoked.
//
// Before any AWS call each grant is checked as the agent checks it (controller/agent/check.ts
// exceedsPolicy: policy valid, method, ports, duration, security groups ⊆ the policy's targets) and
// against the controller's bounds (bounds.ts); a grant failing either opens nothing. A rule of this
// cluster that no live grant needs and whose grant the cache does not know is revoked after the
// grace period (a grant just created, not yet in this replica's cache). Regions are passed only
// once the informers have synced (the manager feeds the queue after that), again at the next rule
// end, after a grace period while unneeded rules wait, and every sweep interval.

import { ALWAYS_NEVER_GRANT, CidrSet, parseCidr } from '../../api/addresses.js';
import type { Clock } from '../../api/clock.js';
import { DEFAULTS } from '../../api/limits.js';
import type { Logger } from '../../api/log.js';
import { parsePort, type PortRef } from '../../api/ports.js';
import type { AccessGrant, AwsSecurityGroupRef, KnockPolicy, SecurityGroupStatus } from '../../api/types.js';
import { exceedsPolicy } from '../agent/check.js';
import { expiresAtMs, isTerminal } from '../grants/phase.js';
import { KubeApiError } from '../kube/errors.js';
import type { CachedObject, KubeInformer } from '../kube/informer.js';
import type { ResourceClient } from '../kube/resource-client.js';
import { checkBoundsWithNodes } from '../reconciler/bounds.js';
import type { ControllerConfig } from '../reconciler/config.js';
import type { EventRecorder } from '../reconciler/events.js';
import type { ReconcileResult } from '../reconciler/queue.js';
import type { Ec2Clients } from './client.js';
import { desiredRules, ruleKey, type DesiredRule, type SgGrant } from './desired.js';
import type { AwsMetrics } from './metrics.js';
import type { ClusterRule } from './rules.js';
import { RegionSync, type RegionSyncResult, type RuleOutcome, type RuleReason } from './region-sync.js';

type Grant = AccessGrant & CachedObject;
type Policy = KnockPolicy & CachedObject;

/** What `knockgate controller --cluster-id --aws-region --aws-endpoint` configures. */
export interface AwsSettings {
  /** The knockgate.io/cluster tag value: required, no default. */
  clusterId: string;
  /** The regions this controller acts in (and sweeps). */
  regions: string[];
  clients: Ec2Clients;
  /** How long an unneeded rule of an unknown grant is kept (default 30 s). */
  graceMs?: number;
  /** Every region is passed at least this often (default 60 s). */
  sweepIntervalMs?: number;
}

export interface SecurityGroupReconcilerOptions {
  grants: KubeInformer<Grant>;
  policies: KubeInformer<Policy>;
  nodes?: KubeInformer<{ metadata: { name: string; labels?: Record<string, string> } } & CachedObject>;
  client: ResourceClient<AccessGrant>;
  events: EventRecorder;
  config: ControllerConfig;
  /** Undefined: no --cluster-id; every security-group target is Failed/NotConfigured. */
  aws?: AwsSettings;
  clock: Clock;
  logger?: Logger;
  /** Throws unless this instance may act (is the leader). */
  guard: () => void;
  metrics?: AwsMetrics;
}

type Verdict = 'live' | 'ended' | 'undecided';
type Entry = Omit<SecurityGroupStatus, 'since'>;

const SKEW_MS = DEFAULTS.replayClockSkewSeconds * 1000;
/** Reasons that pass with time (the pass is retried with backoff): the target stays Pending. */
const TRANSIENT: ReadonlySet<RuleReason> = new Set(['Throttled', 'AwsError']);
const NEVER = new CidrSet(ALWAYS_NEVER_GRANT);

/** The security groups a grant names in `region`. */
export function groupsIn(grant: AccessGrant, region: string): AwsSecurityGroupRef[] {
  return (grant.spec.targets?.awsSecurityGroups ?? []).filter((g) => g.region === region);
}

/** Every region a grant's targets name. */
export function regionsOf(grant: AccessGrant): string[] {
  return [...new Set((grant.spec.targets?.awsSecurityGroups ?? []).map((g) => g.region))];
}

export class SecurityGroupReconciler {
  private readonly syncs = new Map<string, RegionSync>();
  /** Rule id → the end it was held for in the last pass (where the revoke lag starts). */
  private readonly heldUntil = new Map<string, Map<string, number>>();
  /** Groups with a rules-live gauge, per region (set to 0 when their last rule goes). */
  private readonly gaugedGroups = new Map<string, Set<string>>();

  constructor(private readonly opts: SecurityGroupReconcilerOptions) {}

  /** The configured regions (each is passed at least every sweep interval). */
  get regions(): string[] {
    return this.opts.aws?.regions ?? [];
  }

  async reconcile(region: string): Promise<ReconcileResult | void> {
    const { aws, clock } = this.opts;
    const now = clock.now();
    const grants = this.opts.grants.list().filter((g) => groupsIn(g, region).length > 0);
    const verdicts = new Map(grants.map((g) => [g.metadata.name, this.verdict(g, now)]));
    if (!aws || !aws.regions.includes(region)) {
      const message = !aws
        ? 'the controller runs without --cluster-id and --aws-region: it opens no security group'
        : `region ${region} is not one of the controller's --aws-region (${aws.regions.join(', ')})`;
      // Only live grants get the entry: an ended one opened nothing anywhere.
      await this.writeStatuses(region, grants, verdicts, (g) =>
        verdicts.get(g.metadata.name) === 'live'
          ? { state: 'Failed', reason: 'NotConfigured', message }
          : undefined,
      );
      return;
    }

    const live = grants.filter((g) => verdicts.get(g.metadata.name) === 'live');
    const wanted: SgGrant[] = live.map((g) => ({
      name: g.metadata.name,
      source: g.spec.source,
      ports: g.spec.ports,
      expiresAt: expiresAtMs(g),
      groups: groupsIn(g, region),
    }));
    const desired = [...desiredRules(wanted, now).values()];
    let sync = this.syncs.get(region);
    if (!sync) {
      sync = new RegionSync(aws.clients.get(region));
      this.syncs.set(region, sync);
    }
    this.opts.guard(); // a replica that is not the leader calls no AWS API
    const graceMs = aws.graceMs ?? 30_000;
    const result = await sync.sync(desired, {
      clusterId: aws.clusterId,
      region,
      now,
      graceMs,
      // No grace for a rule whose grant (its description, or its tag) this cache holds: it is not
      // one made for a grant this replica has not seen yet.
      revokeNow: (r) => [ownerOf(r), r.grant].some((n) => n !== undefined && this.opts.grants.get(n)),
    });
    this.observe(region, result, desired, now);

    // Rules no live grant needs that are still there (grace period, a failed revoke), by key.
    const lingering = new Set(
      (result.kept ?? []).map((r) =>
        ruleKey(region, r.groupId, r.protocol, r.fromPort === r.toPort ? r.fromPort : -1, r.cidr),
      ),
    );
    await this.writeStatuses(region, grants, verdicts, (g, ref, prev) => {
      if (verdicts.get(g.metadata.name) === 'live') return liveEntry(g, ref, region, result, prev);
      // Ended: Removed once EC2 shows none of its rules left over (revoked, or held for another
      // live grant) — what the finalizer waits for.
      if (result.listError || !(prev?.state === 'Applied' || prev?.state === 'Pending')) return undefined;
      const left = g.spec.ports.some((spec) => {
        const p = parsePort(spec);
        return lingering.has(ruleKey(region, ref.groupId, p.proto, p.port, g.spec.source));
      });
      return left ? undefined : { state: 'Removed' };
    });

    const problems = transientProblems(result);
    if (problems.length > 0) throw new Error(`security groups in ${region}: ${problems.join('; ')}`);
    let next = aws.sweepIntervalMs ?? 60_000;
    for (const d of desired) next = Math.min(next, d.expiresAt - now);
    if ((result.kept ?? []).length > 0) next = Math.min(next, graceMs);
    return { requeueAfterMs: Math.max(1, next) };
  }

  /** live: its rules are desired; ended: its rules go; undecided: neither, for now. */
  private verdict(grant: AccessGrant, now: number): Verdict {
    if (grant.metadata.deletionTimestamp || isTerminal(grant) || !(expiresAtMs(grant) > now)) return 'ended';
    const policyName = grant.spec.policyRef?.name;
    const policy = policyName === undefined ? undefined : this.opts.policies.get(policyName);
    if (policyName !== undefined && !policy) return 'undecided'; // the grant reconciler waits, then fails it
    if (policy?.spec.grant.targets?.node?.mode === 'Selector' && this.opts.nodes && !this.opts.nodes.isSynced)
      return 'undecided';
    try {
      const refusal = checkBoundsWithNodes(grant, { now, config: this.opts.config, policy }, this.opts.nodes);
      if (refusal) return 'ended';
      if (policyName !== undefined) {
        const ports: PortRef[] = grant.spec.ports.map((p) => parsePort(p));
        const remaining = expiresAtMs(grant) - now;
        if (exceedsPolicy(grant, ports, remaining, policyName, policy, SKEW_MS) !== undefined) return 'ended';
      }
      if (NEVER.has(parseCidr(grant.spec.source).address)) return 'ended';
    } catch {
      return 'ended'; // a field the checks cannot read: fail closed
    }
    return 'live';
  }

  /** Metrics of one pass: calls, revoke lag, rules live per group. */
  private observe(region: string, result: RegionSyncResult, desired: DesiredRule[], now: number): void {
    const m = this.opts.metrics;
    if (m)
      for (const [key, n] of result.calls) {
        const [action, outcome] = key.split('/') as [string, string];
        m.calls.inc({ action, outcome }, n);
      }
    const held = this.heldUntil.get(region) ?? new Map<string, number>();
    for (const r of result.revoked) {
      const due = held.get(r.ruleId) ?? r.expiresAt;
      if (m && due !== undefined && due <= now) m.revokeLag.observe((now - due) / 1000);
    }
    if (result.listError) return;
    // Rebuilt each pass from what EC2 showed: rules gone some other way are forgotten.
    const next = new Map<string, number>();
    for (const r of result.kept ?? []) {
      const due = held.get(r.ruleId);
      if (due !== undefined) next.set(r.ruleId, due);
    }
    this.heldUntil.set(region, next);
    const perGroup = new Map<string, Set<string>>();
    const count = (group: string, id: string) =>
      perGroup.set(group, (perGroup.get(group) ?? new Set()).add(id));
    for (const d of desired) {
      const o = result.rules.get(d.key);
      if (o?.state !== 'Applied' || !o.ruleId) continue;
      next.set(o.ruleId, d.expiresAt);
      count(d.groupId, o.ruleId);
    }
    for (const r of result.kept ?? []) count(r.groupId, r.ruleId);
    if (!m) return;
    const known = this.gaugedGroups.get(region) ?? new Set<string>();
    for (const g of known) if (!perGroup.has(g)) m.rulesLive.set({ region, group: g }, 0);
    for (const [g, ids] of perGroup) m.rulesLive.set({ region, group: g }, ids.size);
    this.gaugedGroups.set(region, new Set([...known, ...perGroup.keys()]));
  }

  /**
   * Write each decided grant's entries for the groups of `region` (one merge patch per grant, its
   * own map keys only; other regions' and the agents' keys are untouched) and an Event per group
   * that is Failed. `entry` undefined: leave that group's entry as it is.
   */
  private async writeStatuses(
    region: string,
    grants: Grant[],
    verdicts: Map<string, Verdict>,
    entry: (g: Grant, ref: AwsSecurityGroupRef, prev: SecurityGroupStatus | undefined) => Entry | undefined,
  ): Promise<void> {
    const stamp = new Date(this.opts.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    for (const g of grants) {
      const verdict = verdicts.get(g.metadata.name);
      if (verdict === 'undecided') continue;
      const patch: Record<string, unknown> = {};
      const failed: [AwsSecurityGroupRef, Entry][] = [];
      for (const ref of groupsIn(g, region)) {
        const prev = g.status?.securityGroups?.[ref.groupId];
        const next = entry(g, ref, prev);
        if (!next) continue;
        if (next.state === 'Failed') failed.push([ref, next]);
        if (!entryDiffers(prev, next)) continue;
        patch[ref.groupId] = {
          state: next.state,
          since: prev?.state === next.state ? prev.since : stamp,
          ruleId: next.ruleId ?? null,
          ruleIds: next.ruleIds ?? null,
          reason: next.reason ?? null,
          message: next.message?.slice(0, 1024) ?? null,
        };
      }
      if (Object.keys(patch).length > 0) {
        this.opts.guard();
        try {
          await this.opts.client.mergePatchStatus(g.metadata.name, { status: { securityGroups: patch } });
        } catch (err) {
          if (err instanceof KubeApiError && err.status === 404) continue; // gone: nothing to report
          throw err;
        }
        this.opts.logger?.debug(
          { event: 'sg-status', grant: g.metadata.name, region, groups: patch },
          `security groups of ${g.metadata.name} in ${region}`,
        );
      }
      for (const [ref, e] of failed)
        await this.opts.events.record(
          g,
          'SecurityGroupFailed',
          `security group ${ref.groupId} (${region}): ${e.reason ?? 'Failed'}: ${e.message ?? ''}`,
          undefined,
          `${ref.groupId}.${e.reason ?? 'failed'}`,
        );
    }
  }
}

/** The grant a rule's description ("knockgate <grant>") names. */
function ownerOf(rule: ClusterRule): string | undefined {
  return /^knockgate (\S+)$/.exec(rule.description ?? '')?.[1];
}

/** A live grant's entry for one group, from the pass's outcomes for each of its ports. */
function liveEntry(
  grant: AccessGrant,
  ref: AwsSecurityGroupRef,
  region: string,
  result: RegionSyncResult,
  prev: SecurityGroupStatus | undefined,
): Entry | undefined {
  if (result.listError) {
    // EC2 could not be read: what was observed before still stands.
    if (prev?.state === 'Applied' || prev?.state === 'CoveredByExistingRule') return undefined;
    const { reason, message } = result.listError;
    return { state: TRANSIENT.has(reason) ? 'Pending' : 'Failed', reason, message };
  }
  const outcomes: RuleOutcome[] = grant.spec.ports.map((spec) => {
    const p = parsePort(spec);
    const key = ruleKey(region, ref.groupId, p.proto, p.port, grant.spec.source);
    return result.rules.get(key) ?? { state: 'Failed', reason: 'AwsError', message: 'no outcome' };
  });
  const failed = outcomes.find((o) => o.state === 'Failed');
  if (failed) {
    const reason = failed.reason ?? 'AwsError';
    return { state: TRANSIENT.has(reason) ? 'Pending' : 'Failed', reason, message: failed.message };
  }
  if (outcomes.every((o) => o.state === 'CoveredByExistingRule'))
    return {
      state: 'CoveredByExistingRule',
      reason: 'CoveredByExistingRule',
      message: outcomes[0]!.message,
    };
  const ids = outcomes.map((o) => o.ruleId).filter((id): id is string => id !== undefined);
  const covered = grant.spec.ports.filter((_, i) => outcomes[i]!.state === 'CoveredByExistingRule');
  const note = outcomes.find((o) => o.state === 'Applied' && o.message)?.message;
  return {
    state: 'Applied',
    ...(ids[0] !== undefined ? { ruleId: ids[0] } : {}),
    ...(ids.length > 1 ? { ruleIds: ids } : {}),
    ...(covered.length > 0
      ? { message: `${covered.join(', ')}: covered by a rule knockgate does not own` }
      : note
        ? { message: note }
        : {}),
  };
}

function entryDiffers(prev: SecurityGroupStatus | undefined, next: Entry): boolean {
  return (
    prev?.state !== next.state ||
    prev.ruleId !== next.ruleId ||
    JSON.stringify(prev.ruleIds) !== JSON.stringify(next.ruleIds) ||
    prev.reason !== next.reason ||
    prev.message !== next.message?.slice(0, 1024)
  );
}

/** What makes the pass worth retrying soon (with backoff): throttling, EC2 errors, a failed revoke. */
function transientProblems(result: RegionSyncResult): string[] {
  const out: string[] = [];
  if (result.listError) out.push(`listing rules: ${result.listError.message}`);
  const outcomes = [...result.rules.values()].filter((o) => o.reason && TRANSIENT.has(o.reason));
  if (outcomes.length > 0) out.push(`${outcomes.length} rules not applied: ${outcomes[0]!.message ?? ''}`);
  for (const [key, n] of result.calls)
    if (key.startsWith('RevokeSecurityGroupIngress/') && !key.endsWith('/ok'))
      out.push(`${n} revoke calls failed (${key.split('/')[1]})`);
  return out;
}
