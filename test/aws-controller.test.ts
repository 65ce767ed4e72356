// The controller's security-group reconciler (controller/aws/sg-reconciler.ts) in the controller
// manager, on a FakeClock: the Kubernetes API emulator (the controller's own RBAC) and the EC2
// emulator through the real @aws-sdk/client-ec2. A policy's groups opened for a grant (rule ids in
// status, Active), revoked at expiry (Removed, Expired) and at once on delete (the finalizer waits
// for it); two grants of one source and port share one rule until the later end; a full group, an
// unknown group, a refused call, an unconfigured region: that target Failed with a reason and an
// Event, the others opened; a grant naming a group its policy does not list opens nothing; after a
// restart expired rules go at once and unknown tagged rules after the grace period, while untagged
// rules and other clusters' rules are never touched; EC2 failing beyond the SDK retries leaves the
// target Pending and the pass retried with backoff until it is Applied. Metrics in the registry.

import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeSecurityGroupRulesCommand,
  EC2Client,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AccessGrant, AwsSecurityGroupRef, KnockPolicy } from '../api/types.js';
import { Ec2Clients } from '../controller/aws/client.js';
import type { AwsSettings } from '../controller/aws/sg-reconciler.js';
import { ruleTags } from '../controller/aws/tags.js';
import { createControllerMetrics, type ControllerMetrics } from '../controller/reconciler/metrics.js';
import { DEFAULT_CREDENTIAL, Ec2Emulator } from './emulators/ec2/server.js';
import { ControllerBench } from './helpers/k8s-controller-harness.js';

const R1 = 'eu-west-1';
const R2 = 'us-east-1';
const CLUSTER = 'prod';

let bench: ControllerBench;
let ec2: Ec2Emulator;
let clients: Ec2Clients;
const sdk = new Map<string, EC2Client>();

beforeEach(async () => {
  bench = new ControllerBench();
  await bench.start();
  ec2 = new Ec2Emulator();
  await ec2.start();
  clients = new Ec2Clients({ endpoint: ec2.url, credentials: DEFAULT_CREDENTIAL, maxAttempts: 2 });
});

afterEach(async () => {
  await bench.stop();
  clients.destroy();
  for (const c of sdk.values()) c.destroy();
  sdk.clear();
  await ec2.stop();
});

function client(region: string): EC2Client {
  let c = sdk.get(region);
  if (!c) {
    c = new EC2Client({ endpoint: ec2.url, region, credentials: DEFAULT_CREDENTIAL, maxAttempts: 1 });
    sdk.set(region, c);
  }
  return c;
}

async function newGroup(region: string, name: string): Promise<AwsSecurityGroupRef> {
  const r = await client(region).send(new CreateSecurityGroupCommand({ GroupName: name, Description: 'b' }));
  return { groupId: r.GroupId!, region };
}

async function rulesOf(g: AwsSecurityGroupRef): Promise<SecurityGroupRule[]> {
  const r = await client(g.region).send(
    new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [g.groupId] }] }),
  );
  return (r.SecurityGroupRules ?? []).filter((x) => !x.IsEgress);
}

function addRule(g: AwsSecurityGroupRef, cidr: string, tags?: { Key: string; Value: string }[]) {
  return client(g.region).send(
    new AuthorizeSecurityGroupIngressCommand({
      GroupId: g.groupId,
      IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: cidr }] }],
      ...(tags ? { TagSpecifications: [{ ResourceType: 'security-group-rule', Tags: tags }] } : {}),
    }),
  );
}

function settings(over: Partial<AwsSettings> = {}): AwsSettings {
  return { clusterId: CLUSTER, regions: [R1, R2], clients, graceMs: 10_000, ...over };
}

async function start(metrics?: ControllerMetrics, aws: AwsSettings | null = settings()) {
  const m = bench.manager('ctl-a', bench.config(), undefined, metrics, { aws: aws ?? undefined });
  await bench.until(() => m.isLeader(), 'the controller to lead');
  return m;
}

function policy(name: string, groups: AwsSecurityGroupRef[], ports = ['22/tcp']): KnockPolicy {
  return bench.createPolicy(name, {
    ports,
    durationSeconds: 120,
    targets: { node: { mode: 'None' }, awsSecurityGroups: groups },
  });
}

/** A knock grant of `p` that targets only security groups (the policy's unless told). */
function grant(
  p: KnockPolicy,
  source: string,
  opts: { seconds?: number; ports?: string[]; groups?: AwsSecurityGroupRef[]; name?: string } = {},
): AccessGrant {
  const g = bench.knockGrant(p, source, { seconds: opts.seconds ?? 60, ports: opts.ports });
  if (opts.name) g.metadata.name = opts.name;
  g.spec.targets = { awsSecurityGroups: opts.groups ?? p.spec.grant.targets!.awsSecurityGroups! };
  return bench.createGrant(g);
}

const sg = (name: string, groupId: string) => bench.grant(name)?.status?.securityGroups?.[groupId];
const phase = (name: string) => bench.grant(name)?.status?.phase;
const tag = (r: SecurityGroupRule, key: string) => r.Tags?.find((t) => t.Key === key)?.Value;

async function metric(m: ControllerMetrics, name: string): Promise<string> {
  return (await m.registry.getSingleMetricAsString(name)).trim();
}

/** Poll EC2 (real time, bounded) until `cond` holds for the rules of `g`. */
async function untilRules(g: AwsSecurityGroupRef, cond: (r: SecurityGroupRule[]) => boolean, what: string) {
  const end = Date.now() + 10_000;
  for (;;) {
    const rules = await rulesOf(g);
    if (cond(rules)) return rules;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(rules)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('security groups in the controller', () => {
  it("opens the policy's groups for a grant (rule ids in status, Active) and revokes them at expiry", async () => {
    const metrics = createControllerMetrics(new Registry(), false);
    await start(metrics);
    const a = await newGroup(R1, 'a');
    const b = await newGroup(R2, 'b');
    const p = policy('bastion', [a, b], ['22/tcp', '3389/tcp']);
    const g = grant(p, '10.1.0.2', { ports: ['22/tcp', '3389/tcp'] });
    const name = g.metadata.name;
    await bench.until(() => phase(name) === 'Active', 'Active');
    const ra = await rulesOf(a);
    expect(ra.map((r) => r.FromPort).sort()).toEqual([22, 3389]);
    expect(ra.every((r) => r.CidrIpv4 === '10.1.0.2/32' && r.Description === `knockgate ${name}`)).toBe(true);
    expect(ra.every((r) => tag(r, 'knockgate.io/cluster') === CLUSTER)).toBe(true);
    expect(sg(name, a.groupId)).toMatchObject({
      state: 'Applied',
      ruleId: ra.find((r) => r.FromPort === 22)!.SecurityGroupRuleId,
    });
    expect([...sg(name, a.groupId)!.ruleIds!].sort()).toEqual(ra.map((r) => r.SecurityGroupRuleId).sort());
    expect(sg(name, b.groupId)).toMatchObject({ state: 'Applied' });
    expect(await rulesOf(b)).toHaveLength(2);
    // One Authorize per grant and group, both ports in it.
    expect(ec2.requests.filter((r) => r.action === 'AuthorizeSecurityGroupIngress')).toHaveLength(2);
    expect(await metric(metrics, 'knockgate_aws_calls_total')).toContain(
      'knockgate_aws_calls_total{action="AuthorizeSecurityGroupIngress",outcome="ok"} 2',
    );
    expect(await metric(metrics, 'knockgate_aws_rules_live')).toContain(
      `knockgate_aws_rules_live{region="${R1}",group="${a.groupId}"} 2`,
    );

    bench.clock.advance(60_000);
    await untilRules(a, (r) => r.length === 0, 'the rules of a revoked at expiry');
    await untilRules(b, (r) => r.length === 0, 'the rules of b revoked at expiry');
    await bench.until(() => phase(name) === 'Expired', 'Expired');
    await bench.until(() => sg(name, a.groupId)?.state === 'Removed', 'a Removed');
    expect(sg(name, a.groupId)!.ruleId).toBeUndefined();
    expect(await metric(metrics, 'knockgate_aws_revoke_lag_seconds')).toMatch(
      /knockgate_aws_revoke_lag_seconds_count 4/,
    );
    expect(bench.forbidden()).toEqual([]);
  });

  it('two grants of one source and port share a rule until the later end; delete revokes at once', async () => {
    await start();
    const a = await newGroup(R1, 'shared');
    const p = policy('shared', [a]);
    const first = grant(p, '10.1.0.3', { seconds: 30, name: 'first' });
    const second = grant(p, '10.1.0.3', { seconds: 90, name: 'second' });
    await bench.until(() => phase('first') === 'Active' && phase('second') === 'Active', 'both Active');
    const [rule] = await rulesOf(a);
    expect(await rulesOf(a)).toHaveLength(1);
    expect(sg('first', a.groupId)!.ruleId).toBe(rule!.SecurityGroupRuleId);
    expect(sg('second', a.groupId)!.ruleId).toBe(rule!.SecurityGroupRuleId);
    bench.clock.advance(31_000);
    await bench.until(() => phase(first.metadata.name) === 'Expired', 'first Expired');
    await bench.until(() => sg('first', a.groupId)?.state === 'Removed', 'first Removed');
    const kept = await rulesOf(a);
    expect(kept.map((r) => r.SecurityGroupRuleId)).toEqual([rule!.SecurityGroupRuleId]);
    expect(tag(kept[0]!, 'knockgate.io/grant')).toBe('second');
    // kubectl delete: revoked now (no grace period, the fake clock does not move), then let go.
    bench.deleteGrant(second.metadata.name);
    await untilRules(a, (r) => r.length === 0, 'the shared rule revoked on delete');
    await bench.until(() => !bench.grant('second'), 'the deleted grant gone (finalizer released)');
  });

  it('a full group, an unknown group, a refused call, an unconfigured region: that target Failed with an Event', async () => {
    await start();
    const full = await newGroup(R1, 'full');
    const ok = await newGroup(R1, 'ok');
    await addRule(full, '10.9.9.9/32'); // the group's own rule fills it
    ec2.setSettings({ inboundRulesPerFamily: 1 });
    const unknown = { groupId: 'sg-0000000000000dead', region: R1 };
    const elsewhere = await newGroup('ap-south-1', 'elsewhere');
    const p = policy('mixed', [full, ok, unknown, elsewhere]);
    const g = grant(p, '10.1.0.4');
    const name = g.metadata.name;
    await bench.until(() => sg(name, ok.groupId)?.state === 'Applied', 'ok Applied');
    await bench.until(() => sg(name, full.groupId)?.state === 'Failed', 'full Failed');
    expect(sg(name, full.groupId)).toMatchObject({ reason: 'QuotaExceeded' });
    expect((await rulesOf(full)).map((r) => r.CidrIpv4)).toEqual(['10.9.9.9/32']); // nothing partial
    await bench.until(() => sg(name, unknown.groupId)?.reason === 'GroupNotFound', 'unknown: GroupNotFound');
    await bench.until(
      () => sg(name, elsewhere.groupId)?.reason === 'NotConfigured',
      'elsewhere: NotConfigured',
    );
    expect(sg(name, elsewhere.groupId)!.message).toContain('ap-south-1 is not one of');
    expect(await rulesOf(elsewhere)).toEqual([]);
    expect(await rulesOf(ok)).toHaveLength(1);
    await bench.until(
      () =>
        bench.events().filter((e) => e.reason === 'SecurityGroupFailed' && e.object === `AccessGrant/${name}`)
          .length === 3,
      'three SecurityGroupFailed events',
    );
    const quota = bench
      .events()
      .find((e) => e.reason === 'SecurityGroupFailed' && e.message.includes(full.groupId))!;
    expect(quota).toMatchObject({ type: 'Warning' });
    expect(quota.message).toContain('QuotaExceeded');
    // The grant stays Pending (its other targets open until its end), saying why.
    expect(phase(name)).toBe('Pending');
    await bench.until(
      () => bench.grant(name)?.status?.message?.includes('QuotaExceeded'),
      'the reason in the message',
    );

    // A refused call (no ec2:AuthorizeSecurityGroupIngress): reason Unauthorized, nothing open.
    ec2.setSettings({
      inboundRulesPerFamily: 60,
      deny: { [DEFAULT_CREDENTIAL.accessKeyId]: ['AuthorizeSecurityGroupIngress'] },
    });
    const denied = await newGroup(R1, 'denied');
    const q = policy('denied', [denied]);
    const d = grant(q, '10.1.0.5');
    await bench.until(() => sg(d.metadata.name, denied.groupId)?.reason === 'Unauthorized', 'Unauthorized');
    expect(sg(d.metadata.name, denied.groupId)!.message).toContain('UnauthorizedOperation');
    await bench.until(() => bench.hasEvent('SecurityGroupFailed', d.metadata.name), 'its Event');
    expect(await rulesOf(denied)).toEqual([]);
  });

  it('EC2 errors beyond the SDK retries: the target Pending with the reason, the pass retried with backoff until Applied', async () => {
    await start();
    const a = await newGroup(R1, 'flaky');
    ec2.faults.fail({ status: 503, count: 6, action: 'AuthorizeSecurityGroupIngress' });
    const g = grant(policy('flaky', [a]), '10.1.0.9');
    const name = g.metadata.name;
    await bench.until(() => sg(name, a.groupId)?.state === 'Pending', 'Pending while EC2 fails');
    expect(sg(name, a.groupId)).toMatchObject({ reason: 'AwsError' });
    expect(sg(name, a.groupId)!.message).toContain('Unavailable');
    // The work queue's backoff runs on the fake clock; no grant is dropped.
    await bench.advanceUntil(
      () => sg(name, a.groupId)?.state === 'Applied',
      1000,
      60,
      'Applied after the faults',
    );
    expect(phase(name)).not.toBe('Failed');
    await bench.until(() => phase(name) === 'Active', 'Active');
    expect(await rulesOf(a)).toHaveLength(1);
  });

  it('re-validates against the policy before any AWS call: a group the policy does not list opens nothing', async () => {
    await start();
    const listed = await newGroup(R1, 'listed');
    const other = await newGroup(R1, 'other');
    const p = policy('strict', [listed]);
    const g = grant(p, '10.1.0.6', { groups: [listed, other] });
    await bench.until(() => phase(g.metadata.name) === 'Failed', 'refused');
    await new Promise((r) => setTimeout(r, 200));
    expect(await rulesOf(listed)).toEqual([]);
    expect(await rulesOf(other)).toEqual([]);
    expect(ec2.requests.filter((r) => r.action === 'AuthorizeSecurityGroupIngress')).toEqual([]);
    expect(bench.grant(g.metadata.name)!.status!.securityGroups).toBeUndefined();
  });

  it('without --cluster-id a security-group target is Failed/NotConfigured and AWS is never called', async () => {
    await start(undefined, null);
    const a = await newGroup(R1, 'unconfigured');
    const g = grant(policy('none', [a]), '10.1.0.7');
    await bench.until(() => sg(g.metadata.name, a.groupId)?.reason === 'NotConfigured', 'NotConfigured');
    expect(sg(g.metadata.name, a.groupId)!.message).toContain('without --cluster-id');
    expect(ec2.requests.filter((r) => r.action !== 'CreateSecurityGroup')).toEqual([]);
  });

  it('after a restart: expired rules go at once, unknown tagged ones after the grace period; untagged and other clusters never', async () => {
    const a = await newGroup(R1, 'restart');
    const first = await start();
    const p = policy('restart', [a]);
    const g = grant(p, '10.1.0.8', { seconds: 20 });
    await bench.until(() => phase(g.metadata.name) === 'Active', 'Active');
    await first.stop(); // the controller is gone with a live grant (the Lease is not released)
    const t = bench.clock.now();
    await addRule(a, '10.2.0.1/32'); // the bastion's own
    await addRule(a, '10.2.0.2/32', ruleTags('staging', 'x', t + 3_600_000));
    await addRule(a, '10.2.0.3/32', ruleTags(CLUSTER, 'ghost', t + 3_600_000)); // no grant behind it
    bench.clock.advance(25_000);
    await start(); // same identity: takes its own Lease back
    await untilRules(
      a,
      (r) => !r.some((x) => x.CidrIpv4 === '10.1.0.8/32'),
      'the expired rule revoked on start',
    );
    expect((await rulesOf(a)).map((r) => r.CidrIpv4).sort()).toEqual([
      '10.2.0.1/32',
      '10.2.0.2/32',
      '10.2.0.3/32',
    ]);
    await bench.until(() => phase(g.metadata.name) === 'Expired', 'Expired');
    bench.clock.advance(10_000); // the grace period of the unknown tagged rule
    await untilRules(a, (r) => r.length === 2, 'the unknown tagged rule swept');
    expect((await rulesOf(a)).map((r) => r.CidrIpv4).sort()).toEqual(['10.2.0.1/32', '10.2.0.2/32']);
  });
});

describe('knockgate controller: AWS flags', () => {
  const cli = resolve(import.meta.dirname, '../dist/cmd/knockgate.js');
  const run = (args: string[]) =>
    spawnSync('node', [cli, 'controller', '--kubeconfig', '/nonexistent', ...args], { encoding: 'utf8' });

  it('refuses regions without a cluster id, or a bad region in the list, in one line with exit status 2', () => {
    // (clusterIdProblem, regionProblem and endpointProblem are tested with `knockgate sweep`.)
    const cases: [string[], string][] = [
      [['--aws-region', R1], '--cluster-id is required with --aws-region'],
      [['--cluster-id', CLUSTER, '--aws-region', `${R1},mars-1`], 'region "mars-1"'],
    ];
    for (const [args, text] of cases) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(text);
    }
  });
});
