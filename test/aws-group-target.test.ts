// controller/aws/group-target.ts (the standalone daemon's security-group target) against the EC2
// emulator through the real SDK: one Authorize per grant and group and no Describe per grant, the
// later end kept, revoke at the end, a restart's sync revoking the rules of grants gone meanwhile,
// a cached view that missed an outside change recovered by listing again, and every failure a
// Failed group with the AWS reason and nothing left in the groups.

import {
  AuthorizeSecurityGroupIngressCommand,
  EC2Client,
  RevokeSecurityGroupIngressCommand,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import { createLogger } from '../api/log.js';
import type { AccessGrant } from '../api/types.js';
import { Registry } from 'prom-client';
import { Ec2Clients } from '../controller/aws/client.js';
import { createAwsMetrics, type AwsMetrics } from '../controller/aws/metrics.js';
import { SecurityGroupTarget } from '../controller/aws/group-target.js';
import { ruleTags } from '../controller/aws/tags.js';
import { DEFAULT_CREDENTIAL, Ec2Emulator } from './emulators/ec2/server.js';
import { createGroup, ingressRules } from './helpers/ec2-sdk.js';

const REGION = 'eu-west-1';
const CLUSTER = 'host-a';
const logger = createLogger({ level: 'silent' });
let ec2: Ec2Emulator;
let client: EC2Client;
let clients: Ec2Clients;

beforeAll(async () => {
  ec2 = new Ec2Emulator();
  await ec2.start();
  clients = new Ec2Clients({ endpoint: ec2.url, credentials: DEFAULT_CREDENTIAL, maxAttempts: 1 });
  client = new EC2Client({ endpoint: ec2.url, region: REGION, credentials: DEFAULT_CREDENTIAL });
});
afterAll(async () => {
  clients?.destroy();
  client?.destroy();
  await ec2?.stop();
});

const newGroup = (name: string) => createGroup(client, name);
const ingress = (groupId: string) => ingressRules(client, groupId);

function grant(name: string, source: string, endsAt: number, groupIds: string[], ports = ['22/tcp']) {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'AccessGrant',
    metadata: { name },
    spec: {
      source,
      ports,
      expiresAt: new Date(endsAt).toISOString(),
      method: 'spa',
      targets: { awsSecurityGroups: groupIds.map((groupId) => ({ groupId, region: REGION })) },
    },
  } as AccessGrant;
}

/** Requests the emulator got since `from`, by action. */
function actions(from: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of ec2.requests.slice(from)) out[r.action] = (out[r.action] ?? 0) + 1;
  return out;
}

function target(clock: FakeClock, metrics?: AwsMetrics) {
  return new SecurityGroupTarget({
    clusterId: CLUSTER,
    clients,
    clock,
    logger,
    ...(metrics ? { metrics } : {}),
  });
}

describe('security groups as a standalone grant target', () => {
  it('per grant one Authorize and one Revoke per group, no Describe; the later end holds the rule', async () => {
    const clock = new FakeClock(Date.now());
    const [a, b] = [await newGroup('t-a'), await newGroup('t-b')];
    const registry = new Registry();
    const t = target(clock, createAwsMetrics(registry));
    await t.sync([], [REGION]);
    const mark = ec2.requests.length;
    const grants = Array.from({ length: 10 }, (_, i) =>
      grant(`g${i}`, `10.7.0.${i + 1}/32`, clock.now() + 60_000, [a, b]),
    );
    const results = await Promise.all(grants.map((g) => t.add(g)));
    for (const r of results) {
      expect(r.problem).toBeUndefined();
      expect(r.groups[`${REGION}/${a}`]).toMatchObject({
        state: 'Applied',
        ruleId: expect.stringMatching(/^sgr-/),
      });
    }
    expect((await ingress(a)).map((r) => r.CidrIpv4).sort()).toHaveLength(10);
    // A second grant for the same source and port, ending later: the rule stays until then.
    await t.add(grant('g0-later', '10.7.0.1/32', clock.now() + 120_000, [a]));
    await Promise.all(grants.map((g) => t.remove(g.metadata.name)));
    expect((await ingress(a)).map((r) => r.CidrIpv4)).toEqual(['10.7.0.1/32']);
    expect(await ingress(b)).toEqual([]);
    await t.remove('g0-later');
    expect(await ingress(a)).toEqual([]);
    const calls = actions(mark);
    // At most one per grant and group (10 × 2; grants ending in the same second that reach one pass
    // together share one per group); the later grant for a source already there moves the end tag.
    expect(calls.AuthorizeSecurityGroupIngress).toBeGreaterThanOrEqual(2);
    expect(calls.AuthorizeSecurityGroupIngress).toBeLessThanOrEqual(20);
    expect(calls.CreateTags).toBe(1);
    expect(calls.RevokeSecurityGroupIngress ?? 0).toBeLessThanOrEqual(21);
    // The only listings: the start's sync, and this test's own four checks.
    expect(calls.DescribeSecurityGroupRules).toBe(4);
    expect(t.callCounts().get('DescribeSecurityGroupRules/ok')).toBe(1);
    const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values;
    const counted = await metric('knockgate_aws_calls_total');
    expect(counted.find((v) => v.labels.action === 'AuthorizeSecurityGroupIngress')?.value).toBeGreaterThan(
      0,
    );
    expect((await metric('knockgate_aws_rules_live')).find((v) => v.labels.group === a)?.value).toBe(0);
    await t.close();
  });

  it('a restart: sync revokes the rules no stored live grant needs, keeps the others and never an untagged one', async () => {
    const clock = new FakeClock(Date.now());
    const sg = await newGroup('t-restart');
    const first = target(clock);
    await first.add(grant('short', '10.7.1.1/32', clock.now() + 5_000, [sg]));
    await first.add(grant('long', '10.7.1.2/32', clock.now() + 600_000, [sg]));
    await first.close(); // the daemon stopped: its rules stay
    await client.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: sg,
        IpPermissions: [
          { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '10.7.1.9/32' }] },
        ],
      }),
    );
    clock.advance(10_000);
    const second = target(clock);
    await second.sync([grant('long', '10.7.1.2/32', clock.now() + 590_000, [sg])], [REGION]);
    expect((await ingress(sg)).map((r) => r.CidrIpv4).sort()).toEqual(['10.7.1.2/32', '10.7.1.9/32']);
    await second.close();
  });

  it('a rule revoked behind its back: the Duplicate-free re-add works after listing again', async () => {
    const clock = new FakeClock(Date.now());
    const sg = await newGroup('t-stale');
    const t = target(clock);
    await t.sync([], [REGION]);
    const r1 = await t.add(grant('x', '10.7.2.1/32', clock.now() + 60_000, [sg]));
    // Someone else adds this cluster's rule for another source (the cache does not know it) ...
    await client.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: sg,
        IpPermissions: [
          { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '10.7.2.2/32' }] },
        ],
        TagSpecifications: [
          { ResourceType: 'security-group-rule', Tags: ruleTags(CLUSTER, 'y', clock.now() + 60_000) },
        ],
      }),
    );
    // ... and a grant for it arrives: Duplicate against the cache → listed again → adopted.
    const r2 = await t.add(grant('y', '10.7.2.2/32', clock.now() + 60_000, [sg]));
    expect(r2.groups[`${REGION}/${sg}`]).toMatchObject({
      state: 'Applied',
      ruleId: expect.stringMatching(/^sgr-/),
    });
    expect(r2.groups[`${REGION}/${sg}`]!.message).toBeUndefined();
    // The first rule revoked by someone else: the next sync puts it back.
    await client.send(
      new RevokeSecurityGroupIngressCommand({
        GroupId: sg,
        SecurityGroupRuleIds: [r1.groups[`${REGION}/${sg}`]!.ruleId!],
      }),
    );
    await t.sync(
      [
        grant('x', '10.7.2.1/32', clock.now() + 60_000, [sg]),
        grant('y', '10.7.2.2/32', clock.now() + 60_000, [sg]),
      ],
      [REGION],
    );
    expect((await ingress(sg)).map((r) => r.CidrIpv4).sort()).toEqual(['10.7.2.1/32', '10.7.2.2/32']);
    await t.remove('x');
    await t.remove('y');
    expect(await ingress(sg)).toEqual([]);
    await t.close();
  });

  it('failures: unknown group, missing permission, full group — Failed with the reason, nothing left open', async () => {
    const clock = new FakeClock(Date.now());
    const sg = await newGroup('t-fail');
    const t = target(clock);
    const unknown = await t.add(
      grant('u', '10.7.3.1/32', clock.now() + 60_000, [sg, 'sg-0000000000000dead']),
    );
    expect(unknown.problem).toMatch(/sg-0000000000000dead \(eu-west-1\) tcp\/22: GroupNotFound: /);
    expect(unknown.groups[`${REGION}/${sg}`]!.state).toBe('Applied');
    expect(unknown.groups[`${REGION}/sg-0000000000000dead`]!.state).toBe('Failed');
    await t.remove('u'); // what the daemon's fail() does: the other group's rule goes too
    expect(await ingress(sg)).toEqual([]);

    ec2.setSettings({ deny: { [DEFAULT_CREDENTIAL.accessKeyId]: ['AuthorizeSecurityGroupIngress'] } });
    try {
      const denied = await t.add(grant('d', '10.7.3.2/32', clock.now() + 60_000, [sg]));
      expect(denied.problem).toMatch(/Unauthorized: UnauthorizedOperation/);
      await t.remove('d');
    } finally {
      ec2.setSettings({ deny: {} });
    }
    ec2.setSettings({ inboundRulesPerFamily: 1 });
    try {
      const full = await t.add(grant('q', '10.7.3.3/32', clock.now() + 60_000, [sg], ['22/tcp', '443/tcp']));
      expect(full.problem).toMatch(/QuotaExceeded/);
      await t.remove('q');
      expect(await ingress(sg)).toEqual([]);
    } finally {
      ec2.setSettings({ inboundRulesPerFamily: 60 });
    }
    await t.close();
  });
});
