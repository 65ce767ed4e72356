// controller/aws's region pass (desired.ts + region-sync.ts) against the EC2 emulator through the
// real @aws-sdk/client-ec2, on a fake "now": one rule per (group, source, port) holding the later
// end, one Authorize per grant and group, tags and description, revoke by id when no grant needs a
// rule (after the grace period unless expired), untagged rules covered and never touched, another
// cluster's never touched, and every AWS refusal a reason with nothing half-applied.

import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeSecurityGroupRulesCommand,
  EC2Client,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { desiredRules, type SgGrant } from '../controller/aws/desired.js';
import { RegionSync } from '../controller/aws/region-sync.js';
import { ruleTags, TAG_EXPIRES_AT, TAG_GRANT } from '../controller/aws/tags.js';
import { DEFAULT_CREDENTIAL, Ec2Emulator } from './emulators/ec2/server.js';

const REGION = 'eu-west-1';
const CLUSTER = 'prod';
const T0 = Date.parse('2030-01-01T00:00:00Z');
let ec2: Ec2Emulator;
let client: EC2Client;

beforeAll(async () => {
  ec2 = new Ec2Emulator();
  await ec2.start();
  client = new EC2Client({
    endpoint: ec2.url,
    region: REGION,
    credentials: DEFAULT_CREDENTIAL,
    maxAttempts: 1,
  });
});
afterAll(async () => {
  client?.destroy();
  await ec2?.stop();
});

async function newGroup(name: string): Promise<string> {
  return (await client.send(new CreateSecurityGroupCommand({ GroupName: name, Description: 'bastion' })))
    .GroupId!;
}

async function rulesOf(groupId: string): Promise<SecurityGroupRule[]> {
  const r = await client.send(
    new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }),
  );
  return (r.SecurityGroupRules ?? []).filter((x) => !x.IsEgress);
}

const tag = (r: SecurityGroupRule, key: string) => r.Tags?.find((t) => t.Key === key)?.Value;

function grant(name: string, source: string, ports: string[], endsInS: number, groupIds: string[]): SgGrant {
  return {
    name,
    source,
    ports,
    expiresAt: T0 + endsInS * 1000,
    groups: groupIds.map((groupId) => ({ groupId, region: REGION })),
  };
}

async function pass(sync: RegionSync, grants: SgGrant[], nowS: number, graceMs = 30_000) {
  const now = T0 + nowS * 1000;
  return sync.sync([...desiredRules(grants, now).values()], {
    clusterId: CLUSTER,
    region: REGION,
    now,
    graceMs,
  });
}

describe('security groups: one region pass', () => {
  it('two grants for one source and port: one rule with the later end, kept until that end', async () => {
    const sg = await newGroup('two-grants');
    const sync = new RegionSync(client);
    const a = grant('a', '10.9.0.1/32', ['22/tcp', '3389/tcp'], 60, [sg]);
    const b = grant('b', '10.9.0.1/32', ['22/tcp'], 120, [sg]);
    const first = await pass(sync, [a], 0);
    expect(first.calls.get('AuthorizeSecurityGroupIngress/ok')).toBe(1); // both ports, one call
    let rules = await rulesOf(sg);
    expect(rules).toHaveLength(2);
    expect(
      rules.every((r) => r.Description === 'knockgate a' && tag(r, 'knockgate.io/cluster') === CLUSTER),
    ).toBe(true);
    await pass(sync, [a, b], 1);
    rules = await rulesOf(sg);
    const ssh = rules.find((r) => r.FromPort === 22)!;
    expect(tag(ssh, TAG_EXPIRES_AT)).toBe('2030-01-01T00:02:00Z');
    expect(tag(ssh, TAG_GRANT)).toBe('b');
    // a has ended: 3389 goes at once (its own end passed), 22 stays for b.
    const mid = await pass(sync, [a, b], 61);
    expect(mid.revoked.map((r) => r.fromPort)).toEqual([3389]);
    expect((await rulesOf(sg)).map((r) => r.FromPort)).toEqual([22]);
    expect(mid.rules.get([...desiredRules([b], T0 + 61_000).keys()][0]!)).toMatchObject({
      state: 'Applied',
      ruleId: ssh.SecurityGroupRuleId,
    });
    await pass(sync, [a, b], 121);
    expect(await rulesOf(sg)).toEqual([]);
  });

  it('grants ending in the same second share one Authorize per group; a full group is retried one grant at a time', async () => {
    const sg = await newGroup('batched');
    const grants = [1, 2, 3].map((i) => grant(`b${i}`, `10.6.0.${i}/32`, ['22/tcp'], 60, [sg]));
    ec2.setSettings({ inboundRulesPerFamily: 2 });
    try {
      const r = await pass(new RegionSync(client), grants, 0);
      // One call for all three fails (3 > 2, nothing added), then one per grant: two fit.
      expect(r.calls.get('AuthorizeSecurityGroupIngress/QuotaExceeded')).toBe(2);
      expect(r.calls.get('AuthorizeSecurityGroupIngress/ok')).toBe(2);
      expect([...r.rules.values()].map((o) => o.state).sort()).toEqual(['Applied', 'Applied', 'Failed']);
      const rules = await rulesOf(sg);
      expect(rules.map((x) => x.Description).sort()).toEqual(['knockgate b1', 'knockgate b2']);
    } finally {
      ec2.setSettings({ inboundRulesPerFamily: 60 });
    }
    const sg2 = await newGroup('batched-2');
    const more = [4, 5, 6].map((i) => grant(`b${i}`, `10.6.0.${i}/32`, ['22/tcp', '80/tcp'], 60, [sg2]));
    const r = await pass(new RegionSync(client), more, 0);
    expect(r.calls.get('AuthorizeSecurityGroupIngress/ok')).toBe(1);
    const rules = await rulesOf(sg2);
    expect(rules).toHaveLength(6);
    for (const g of more)
      for (const port of [22, 80]) {
        const rule = rules.find((x) => x.CidrIpv4 === g.source && x.FromPort === port)!;
        expect(rule.Description).toBe(`knockgate ${g.name}`);
        const key = [...desiredRules([g], T0).values()].find((d) => d.port === port)!.key;
        expect(r.rules.get(key)).toEqual({ state: 'Applied', ruleId: rule.SecurityGroupRuleId });
      }
    await pass(new RegionSync(client), [], 61); // all ended: the next test starts from nothing
    expect([...(await rulesOf(sg)), ...(await rulesOf(sg2))]).toEqual([]);
  });

  it('an unneeded rule of this cluster goes after the grace period; untagged and other clusters are never touched', async () => {
    const sg = await newGroup('foreign');
    const add = (cidr: string, tags?: { Key: string; Value: string }[]) =>
      client.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: sg,
          IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: cidr }] }],
          ...(tags ? { TagSpecifications: [{ ResourceType: 'security-group-rule', Tags: tags }] } : {}),
        }),
      );
    await add('10.8.0.1/32'); // the bastion's own rule
    await add('10.8.0.2/32', ruleTags('staging', 'x', T0 + 3_600_000));
    await add('10.8.0.3/32', ruleTags(CLUSTER, 'gone', T0 + 3_600_000)); // no grant behind it
    const sync = new RegionSync(client);
    const covered = grant('c', '10.8.0.1/32', ['22/tcp'], 600, [sg]);
    const r1 = await pass(sync, [covered], 0, 10_000);
    expect([...r1.rules.values()]).toEqual([expect.objectContaining({ state: 'CoveredByExistingRule' })]);
    expect(r1.revoked).toEqual([]); // 10.8.0.3 first seen now: in its grace period
    const r2 = await pass(sync, [covered], 11, 10_000);
    expect(r2.revoked.map((r) => r.cidr)).toEqual(['10.8.0.3/32']);
    await pass(sync, [], 700, 0);
    expect((await rulesOf(sg)).map((r) => r.CidrIpv4).sort()).toEqual(['10.8.0.1/32', '10.8.0.2/32']);
  });

  it('a full group, an unknown group, a missing permission, a bad signature: a reason each, nothing partial', async () => {
    const full = await newGroup('full');
    const other = await newGroup('other');
    ec2.setSettings({ inboundRulesPerFamily: 2 });
    try {
      const sync = new RegionSync(client);
      const g = grant('q', '10.7.0.1/32', ['22/tcp', '80/tcp', '443/tcp'], 60, [
        full,
        other,
        'sg-0000000000000dead',
      ]);
      const r = await pass(sync, [g], 0);
      const byGroup = (id: string) =>
        [...r.rules.entries()].filter(([k]) => k.includes(`/${id}/`)).map(([, v]) => v);
      expect(byGroup(full).every((o) => o.state === 'Failed' && o.reason === 'QuotaExceeded')).toBe(true);
      expect(await rulesOf(full)).toEqual([]); // all or nothing
      expect(byGroup(other).every((o) => o.state === 'Failed' && o.reason === 'QuotaExceeded')).toBe(true);
      expect(byGroup('sg-0000000000000dead')).toEqual([
        expect.objectContaining({ state: 'Failed', reason: 'GroupNotFound' }),
        expect.objectContaining({ reason: 'GroupNotFound' }),
        expect.objectContaining({ reason: 'GroupNotFound' }),
      ]);
    } finally {
      ec2.setSettings({ inboundRulesPerFamily: 60 });
    }
    const sg = await newGroup('denied');
    ec2.setSettings({ deny: { [DEFAULT_CREDENTIAL.accessKeyId]: ['AuthorizeSecurityGroupIngress'] } });
    try {
      const r = await pass(new RegionSync(client), [grant('d', '10.7.0.2/32', ['22/tcp'], 60, [sg])], 0);
      expect([...r.rules.values()]).toEqual([
        expect.objectContaining({ state: 'Failed', reason: 'Unauthorized' }),
      ]);
    } finally {
      ec2.setSettings({ deny: {} });
    }
    const forged = new EC2Client({
      endpoint: ec2.url,
      region: REGION,
      credentials: { accessKeyId: DEFAULT_CREDENTIAL.accessKeyId, secretAccessKey: 'wrong' },
      maxAttempts: 1,
    });
    try {
      const r = await pass(new RegionSync(forged), [grant('e', '10.7.0.3/32', ['22/tcp'], 60, [sg])], 0);
      expect(r.listError?.reason).toBe('AuthFailure');
      expect([...r.rules.values()]).toEqual([
        expect.objectContaining({ state: 'Failed', reason: 'AuthFailure' }),
      ]);
    } finally {
      forged.destroy();
    }
    expect(await rulesOf(sg)).toEqual([]);
  });
});
