// The EC2 emulator (test/emulators/ec2) through the real @aws-sdk/client-ec2: every action, each
// error code, SigV4 failures, per-region state and throttling, injected faults, credentials from the
// environment and from a container-credentials endpoint, and the emulator as a program.

import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeSecurityGroupRulesCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  RevokeSecurityGroupIngressCommand,
  type IpPermission,
} from '@aws-sdk/client-ec2';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerCredentialsEndpoint } from './emulators/ec2/credentials-endpoint.js';
import { DEFAULT_CREDENTIAL, Ec2Emulator } from './emulators/ec2/server.js';

const ROOT = join(import.meta.dirname, '..');
let ec2: Ec2Emulator;
const clients: EC2Client[] = [];

function client(
  region = 'eu-west-1',
  extra: Partial<ConstructorParameters<typeof EC2Client>[0]> = {},
): EC2Client {
  const c = new EC2Client({
    endpoint: ec2.url,
    region,
    credentials: DEFAULT_CREDENTIAL,
    maxAttempts: 1,
    ...extra,
  });
  clients.push(c);
  return c;
}

/** The EC2 error code a call fails with ('' when it succeeds). */
async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return '';
  } catch (err) {
    return (err as Error).name;
  }
}

const tcp = (port: number, cidrs: string[], v6: string[] = []): IpPermission => ({
  IpProtocol: 'tcp',
  FromPort: port,
  ToPort: port,
  IpRanges: cidrs.map((CidrIp) => ({ CidrIp, Description: `knockgate ns/g-${port}` })),
  Ipv6Ranges: v6.map((CidrIpv6) => ({ CidrIpv6 })),
});

async function newGroup(c: EC2Client, name: string): Promise<string> {
  return (await c.send(new CreateSecurityGroupCommand({ GroupName: name, Description: 'bastion' }))).GroupId!;
}

async function ingress(c: EC2Client, groupId: string) {
  const r = await c.send(
    new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }),
  );
  return r.SecurityGroupRules!.filter((x) => !x.IsEgress);
}

beforeAll(async () => {
  ec2 = new Ec2Emulator();
  await ec2.start();
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await ec2.stop();
});

describe('EC2 emulator through the real SDK', () => {
  it('groups, rules with tags and descriptions, filters, pagination, tags on sg- and sgr-, revoke by id and by permission', async () => {
    const c = client();
    const created = await c.send(
      new CreateSecurityGroupCommand({
        GroupName: 'bastion',
        Description: 'bastion host',
        TagSpecifications: [{ ResourceType: 'security-group', Tags: [{ Key: 'team', Value: 'ops' }] }],
      }),
    );
    const sg = created.GroupId!;
    expect(sg).toMatch(/^sg-[0-9a-f]+$/);
    const groups = await c.send(
      new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag:team', Values: ['ops'] }] }),
    );
    expect(groups.SecurityGroups!.map((g) => [g.GroupId, g.GroupName])).toEqual([[sg, 'bastion']]);

    const auth = await c.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: sg,
        IpPermissions: [tcp(22, ['203.0.113.7/32', '198.51.100.9/24'], ['2001:DB8::1/128'])],
        TagSpecifications: [
          { ResourceType: 'security-group-rule', Tags: [{ Key: 'knockgate.io/cluster', Value: 'prod' }] },
        ],
      }),
    );
    const rules = auth.SecurityGroupRules!;
    expect(rules.map((r) => [r.CidrIpv4 ?? r.CidrIpv6, r.FromPort, r.ToPort, r.IsEgress])).toEqual([
      ['203.0.113.7/32', 22, 22, false],
      ['198.51.100.0/24', 22, 22, false], // canonical, as EC2 stores it
      ['2001:db8::1/128', 22, 22, false],
    ]);
    for (const r of rules) {
      expect(r.SecurityGroupRuleId).toMatch(/^sgr-[0-9a-f]+$/);
      expect(r.Tags).toEqual([{ Key: 'knockgate.io/cluster', Value: 'prod' }]);
    }
    expect(rules[0].Description).toBe('knockgate ns/g-22');
    const described = await c.send(new DescribeSecurityGroupsCommand({ GroupIds: [sg] }));
    expect(described.SecurityGroups![0].IpPermissions![0].IpRanges!.map((r) => r.CidrIp)).toEqual([
      '203.0.113.7/32',
      '198.51.100.0/24',
    ]);

    // Tags on a rule and on the group: CreateTags overwrites a key's value, DeleteTags with a value
    // deletes only on a match, without a value whatever the value.
    const [r0, r1, r2] = rules.map((r) => r.SecurityGroupRuleId!);
    await c.send(
      new CreateTagsCommand({ Resources: [r0, sg], Tags: [{ Key: 'knockgate.io/expires-at', Value: 'a' }] }),
    );
    await c.send(
      new CreateTagsCommand({ Resources: [r0], Tags: [{ Key: 'knockgate.io/expires-at', Value: 'b' }] }),
    );
    const byTag = (Name: string, Values: string[]) =>
      c
        .send(new DescribeSecurityGroupRulesCommand({ Filters: [{ Name, Values }] }))
        .then((x) => x.SecurityGroupRules!.map((y) => y.SecurityGroupRuleId));
    expect(await byTag('tag:knockgate.io/expires-at', ['b'])).toEqual([r0]);
    expect(await byTag('tag-key', ['knockgate.io/expires-at'])).toEqual([r0]);
    expect(await byTag('tag:knockgate.io/cluster', ['prod'])).toEqual([r0, r1, r2]);
    await c.send(
      new DeleteTagsCommand({ Resources: [r0], Tags: [{ Key: 'knockgate.io/expires-at', Value: 'a' }] }),
    );
    expect(await byTag('tag-key', ['knockgate.io/expires-at'])).toEqual([r0]);
    await c.send(new DeleteTagsCommand({ Resources: [r0, sg], Tags: [{ Key: 'knockgate.io/expires-at' }] }));
    expect(await byTag('tag-key', ['knockgate.io/expires-at'])).toEqual([]);
    expect(
      (await c.send(new DescribeSecurityGroupsCommand({ GroupIds: [sg] }))).SecurityGroups![0].Tags,
    ).toEqual([{ Key: 'team', Value: 'ops' }]);

    // Pagination: 12 more rules read 5 at a time.
    await c.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: sg,
        IpPermissions: [
          tcp(
            443,
            Array.from({ length: 12 }, (_, i) => `192.0.2.${i + 1}/32`),
          ),
        ],
      }),
    );
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await c.send(
        new DescribeSecurityGroupRulesCommand({
          Filters: [{ Name: 'group-id', Values: [sg] }],
          MaxResults: 5,
          NextToken: token,
        }),
      );
      expect(page.SecurityGroupRules!.length).toBeLessThanOrEqual(5);
      seen.push(...page.SecurityGroupRules!.map((r) => r.SecurityGroupRuleId!));
      token = page.NextToken;
    } while (token && ++pages < 10);
    expect(new Set(seen).size).toBe(16); // 3 + 12 ingress + the default egress rule
    expect(await code(c.send(new DescribeSecurityGroupRulesCommand({ MaxResults: 4 })))).toBe(
      'InvalidParameterValue',
    );

    await c.send(new RevokeSecurityGroupIngressCommand({ GroupId: sg, SecurityGroupRuleIds: [r0, r2] }));
    await c.send(
      new RevokeSecurityGroupIngressCommand({ GroupId: sg, IpPermissions: [tcp(22, ['198.51.100.0/24'])] }),
    );
    expect((await ingress(c, sg)).filter((r) => r.FromPort === 22)).toEqual([]);
  });

  it('each error code, nothing half-applied', async () => {
    const c = client();
    const sg = await newGroup(c, 'errors');
    const authorize = (perms: IpPermission[], GroupId = sg) =>
      code(c.send(new AuthorizeSecurityGroupIngressCommand({ GroupId, IpPermissions: perms })));
    const revoke = (input: { IpPermissions?: IpPermission[]; SecurityGroupRuleIds?: string[] }) =>
      code(c.send(new RevokeSecurityGroupIngressCommand({ GroupId: sg, ...input })));
    expect(await authorize([tcp(22, ['203.0.113.1/32'])])).toBe('');
    // Duplicate: the same protocol, ports and source, whatever the description; the whole call fails.
    expect(await authorize([tcp(22, ['203.0.113.2/32', '203.0.113.1/32'])])).toBe(
      'InvalidPermission.Duplicate',
    );
    expect((await ingress(c, sg)).length).toBe(1);
    expect(await revoke({ IpPermissions: [tcp(22, ['203.0.113.9/32'])] })).toBe('InvalidPermission.NotFound');
    expect(await authorize([tcp(22, ['203.0.113.1/32'])], 'sg-0123456789abcdef0')).toBe(
      'InvalidGroup.NotFound',
    );
    expect(await revoke({ SecurityGroupRuleIds: ['sgr-0123456789abcdef0'] })).toBe(
      'InvalidSecurityGroupRuleId.NotFound',
    );
    expect(
      await code(
        c.send(
          new CreateTagsCommand({ Resources: ['sgr-0123456789abcdef0'], Tags: [{ Key: 'k', Value: 'v' }] }),
        ),
      ),
    ).toBe('InvalidSecurityGroupRuleId.NotFound');

    // Quota per family: IPv4 full at 3, IPv6 still has room; the refused call adds nothing.
    ec2.setSettings({ inboundRulesPerFamily: 3 });
    try {
      expect(await authorize([tcp(80, ['10.0.0.1/32', '10.0.0.2/32', '10.0.0.3/32'])])).toBe(
        'RulesPerSecurityGroupLimitExceeded',
      );
      expect((await ingress(c, sg)).length).toBe(1);
      expect(await authorize([tcp(80, ['10.0.0.1/32', '10.0.0.2/32'], ['fd00::1/128'])])).toBe('');
      expect((await ingress(c, sg)).length).toBe(4);
    } finally {
      ec2.setSettings({ inboundRulesPerFamily: 60 });
    }

    ec2.setSettings({ deny: { [DEFAULT_CREDENTIAL.accessKeyId]: ['AuthorizeSecurityGroupIngress'] } });
    try {
      expect(await authorize([tcp(81, ['10.0.0.1/32'])])).toBe('UnauthorizedOperation');
      expect(await code(c.send(new DescribeSecurityGroupsCommand({ GroupIds: [sg] })))).toBe('');
    } finally {
      ec2.setSettings({ deny: {} });
    }

    // SigV4: a wrong secret and an unknown key are both AuthFailure.
    const wrong = client('eu-west-1', {
      credentials: { ...DEFAULT_CREDENTIAL, secretAccessKey: 'not-the-secret' },
    });
    expect(await code(wrong.send(new DescribeSecurityGroupsCommand({})))).toBe('AuthFailure');
    const unknown = client('eu-west-1', {
      credentials: { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'x' },
    });
    expect(await code(unknown.send(new DescribeSecurityGroupsCommand({})))).toBe('AuthFailure');
  });

  it('regions are separate; throttling is per region; faults (5xx, drop, latency) as set in process', async () => {
    const west = client('eu-west-1');
    const sg = await newGroup(west, 'regional');
    const east = client('us-east-2');
    expect(await code(east.send(new DescribeSecurityGroupsCommand({ GroupIds: [sg] })))).toBe(
      'InvalidGroup.NotFound',
    );

    ec2.setSettings({ requestsPerSecond: 5, burst: 5 });
    try {
      const burst = await Promise.all(
        Array.from({ length: 12 }, () => code(west.send(new DescribeSecurityGroupsCommand({})))),
      );
      expect(burst.filter((x) => x === 'RequestLimitExceeded').length).toBeGreaterThanOrEqual(5);
      expect(burst.filter((x) => x === '').length).toBeGreaterThanOrEqual(5);
      // Another region has its own bucket.
      expect(await code(east.send(new DescribeSecurityGroupsCommand({})))).toBe('');
      // The SDK's adaptive retry absorbs the throttling.
      const adaptive = client('eu-west-1', { retryMode: 'adaptive', maxAttempts: 10 });
      const all = await Promise.all(
        Array.from({ length: 10 }, () => code(adaptive.send(new DescribeSecurityGroupsCommand({})))),
      );
      expect(all).toEqual(Array(10).fill(''));
    } finally {
      ec2.setSettings({ requestsPerSecond: 0 });
    }

    ec2.faults.fail({ status: 503, count: 1, action: 'DescribeSecurityGroups' });
    expect(await code(west.send(new DescribeSecurityGroupsCommand({})))).toBe('Unavailable');
    ec2.faults.fail({ status: 500, count: 1 });
    const retrying = client('eu-west-1', { maxAttempts: 3 });
    expect(await code(retrying.send(new DescribeSecurityGroupsCommand({})))).toBe('');
    ec2.faults.drop({ count: 1 });
    expect(await code(west.send(new DescribeSecurityGroupsCommand({})))).not.toBe('');
    expect(ec2.requests.at(-1)!.status).toBe(0);
    ec2.faults.apply({ latencyMs: 300 });
    const t0 = Date.now();
    await west.send(new DescribeSecurityGroupsCommand({}));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    ec2.faults.clear();
  });

  it('credentials from the environment and from a container-credentials endpoint (default chain)', async () => {
    const saved = { ...process.env };
    const isolate = {
      AWS_CONFIG_FILE: '/nonexistent',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    try {
      Object.assign(process.env, isolate, {
        AWS_ACCESS_KEY_ID: DEFAULT_CREDENTIAL.accessKeyId,
        AWS_SECRET_ACCESS_KEY: DEFAULT_CREDENTIAL.secretAccessKey,
      });
      const fromEnv = new EC2Client({ endpoint: ec2.url, region: 'eu-west-1', maxAttempts: 1 });
      clients.push(fromEnv);
      await fromEnv.send(new DescribeSecurityGroupsCommand({}));
      expect(ec2.requests.at(-1)).toMatchObject({ accessKeyId: DEFAULT_CREDENTIAL.accessKeyId, status: 200 });

      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      const issued: string[] = [];
      const endpoint = await startContainerCredentialsEndpoint({
        authToken: 'pod-identity-token',
        issue: () => {
          const c = ec2.issueTemporaryCredential();
          issued.push(c.accessKeyId);
          return c;
        },
      });
      try {
        Object.assign(process.env, {
          AWS_CONTAINER_CREDENTIALS_FULL_URI: endpoint.url,
          AWS_CONTAINER_AUTHORIZATION_TOKEN: 'pod-identity-token',
        });
        const fromContainer = new EC2Client({ endpoint: ec2.url, region: 'eu-west-1', maxAttempts: 1 });
        clients.push(fromContainer);
        await fromContainer.send(new DescribeSecurityGroupsCommand({}));
        expect(endpoint.served()).toBe(1);
        expect(ec2.requests.at(-1)).toMatchObject({ accessKeyId: issued[0], status: 200 });
        expect(issued[0]).toMatch(/^ASIA/);
      } finally {
        await endpoint.stop();
      }
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('as a program: defaults in --help, one ready line, bad flags in one line, exit 0 on SIGTERM', async () => {
    const main = join(ROOT, 'dist/test/emulators/ec2/main.js'); // built by make test (npm run emulator:ec2)
    const runOnce = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, [main, ...args]);
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('exit', (code) => resolve({ code, out, err }));
      });
    const help = await runOnce(['--help']);
    expect(help.code).toBe(0);
    const helpText = help.out.replace(/\s+/g, ' '); // commander wraps at 80 columns
    expect(helpText).toContain(`(default: "${DEFAULT_CREDENTIAL.accessKeyId}")`);
    expect(helpText).toContain('(default: 60)');
    const bad = await runOnce(['--port', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^ec2-emulator: .*--port must be an integer 0-65535\n$/);

    const child = spawn(process.execPath, [main, '--port', '0', '--rate-limit', '100']);
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out);
        });
        child.on('exit', () => reject(new Error(`exited before ready: ${out}`)));
      });
      const m = /^ec2 emulator ready on (http:\/\/127\.0\.0\.1:(\d+)) port=\2 /.exec(line);
      expect(m).not.toBeNull();
      const c = new EC2Client({
        endpoint: m![1],
        region: 'ap-south-1',
        credentials: DEFAULT_CREDENTIAL,
        maxAttempts: 1,
      });
      clients.push(c);
      expect(await newGroup(c, 'from-cli')).toMatch(/^sg-/);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
