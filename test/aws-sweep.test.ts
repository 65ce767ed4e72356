// `knockgate sweep` against the EC2 emulator through the real @aws-sdk/client-ec2: an expired rule
// tagged for this cluster is revoked, an unexpired one kept, untagged rules and other clusters' rules
// never touched, in every region asked for; --dry-run changes nothing; the CLI takes credentials
// from the environment (the SDK's default chain), prints one line per rule, and turns emulator
// errors (bad signature, missing permission, unreachable endpoint) into one clear line and exit 1.

import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeSecurityGroupRulesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ec2Clients } from '../controller/aws/client.js';
import { handler } from '../controller/aws/sweep-lambda.js';
import { formatSweep, sweep } from '../controller/aws/sweep.js';
import { formatExpiresAt, ruleTags, TAG_CLUSTER, TAG_EXPIRES_AT } from '../controller/aws/tags.js';
import { DEFAULT_CREDENTIAL, Ec2Emulator } from './emulators/ec2/server.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/cmd/knockgate.js'); // built by make test, as the other CLI tests use it
const run = promisify(execFile);

const HOUR = 3_600_000;
let ec2: Ec2Emulator;
const sdk = new Map<string, EC2Client>();
const client = (region: string) => {
  if (!sdk.has(region))
    sdk.set(
      region,
      new EC2Client({ endpoint: ec2.url, region, credentials: DEFAULT_CREDENTIAL, maxAttempts: 1 }),
    );
  return sdk.get(region)!;
};

async function group(region: string, name: string): Promise<string> {
  const r = await client(region).send(
    new CreateSecurityGroupCommand({ GroupName: name, Description: 'bastion' }),
  );
  return r.GroupId!;
}

async function rule(
  region: string,
  groupId: string,
  cidr: string,
  tags?: { Key: string; Value: string }[],
): Promise<string> {
  const v6 = cidr.includes(':');
  const r = await client(region).send(
    new AuthorizeSecurityGroupIngressCommand({
      GroupId: groupId,
      IpPermissions: [
        {
          IpProtocol: 'tcp',
          FromPort: 22,
          ToPort: 22,
          ...(v6
            ? { Ipv6Ranges: [{ CidrIpv6: cidr }] }
            : { IpRanges: [{ CidrIp: cidr, Description: 'test' }] }),
        },
      ],
      ...(tags ? { TagSpecifications: [{ ResourceType: 'security-group-rule', Tags: tags }] } : {}),
    }),
  );
  return r.SecurityGroupRules![0].SecurityGroupRuleId!;
}

async function ingressIds(region: string): Promise<string[]> {
  const r = await client(region).send(new DescribeSecurityGroupRulesCommand({}));
  return r.SecurityGroupRules!.filter((x) => !x.IsEgress).map((x) => x.SecurityGroupRuleId!);
}

async function cli(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run(process.execPath, [CLI, 'sweep', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH!, HOME: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true', ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const envCreds = () => ({
  AWS_ACCESS_KEY_ID: DEFAULT_CREDENTIAL.accessKeyId,
  AWS_SECRET_ACCESS_KEY: DEFAULT_CREDENTIAL.secretAccessKey,
});

beforeAll(async () => {
  ec2 = new Ec2Emulator();
  await ec2.start();
});

afterAll(async () => {
  for (const c of sdk.values()) c.destroy();
  await ec2.stop();
});

describe('knockgate sweep', () => {
  it('revokes only this cluster’s expired rules, in every region asked for; --dry-run changes nothing', async () => {
    const now = Date.now();
    const g1 = await group('eu-west-1', 'bastion-a');
    const g2 = await group('us-east-1', 'bastion-b');
    const expired = await rule('eu-west-1', g1, '203.0.113.1/32', ruleTags('prod', 'ns/a', now - HOUR));
    const live = await rule('eu-west-1', g1, '203.0.113.2/32', ruleTags('prod', 'ns/b', now + HOUR));
    const untagged = await rule('eu-west-1', g1, '203.0.113.3/32');
    const other = await rule('eu-west-1', g1, '203.0.113.4/32', ruleTags('staging', 'ns/c', now - HOUR));
    const noEnd = await rule('eu-west-1', g1, '2001:db8::5/128', [{ Key: TAG_CLUSTER, Value: 'prod' }]);
    const otherUntaggedExpiry = await rule('eu-west-1', g1, '203.0.113.6/32', [
      { Key: TAG_EXPIRES_AT, Value: formatExpiresAt(now - HOUR) },
    ]);
    const east = await rule('us-east-1', g2, '198.51.100.1/32', ruleTags('prod', 'ns/d', now - 1000));

    const clients = new Ec2Clients({ endpoint: ec2.url, credentials: DEFAULT_CREDENTIAL });
    try {
      const base = { clusterId: 'prod', regions: ['eu-west-1', 'us-east-1'], clients, now: () => Date.now() };
      const dry = await sweep({ ...base, dryRun: true });
      expect(dry.flatMap((r) => r.revoked.map((x) => x.ruleId)).sort()).toEqual(
        [expired, noEnd, east].sort(),
      );
      expect(formatSweep(dry, true).stdout).toContain(
        `would revoke ${expired} eu-west-1 ${g1} tcp/22 203.0.113.1/32 grant=ns/a`,
      );
      expect((await ingressIds('eu-west-1')).length).toBe(6);

      const results = await sweep(base);
      expect(results.map((r) => [r.region, r.revoked.length, r.kept, r.error])).toEqual([
        ['eu-west-1', 2, 1, undefined],
        ['us-east-1', 1, 0, undefined],
      ]);
      expect((await ingressIds('eu-west-1')).sort()).toEqual(
        [live, untagged, other, otherUntaggedExpiry].sort(),
      );
      expect(await ingressIds('us-east-1')).toEqual([]);
      // Nothing left to do: a second sweep revokes nothing.
      expect((await sweep(base)).flatMap((r) => r.revoked)).toEqual([]);
    } finally {
      clients.destroy();
    }
  });

  it('as a command: credentials from the environment, one line per rule, exit 0', async () => {
    const g = await group('eu-north-1', 'bastion-cli');
    const id = await rule('eu-north-1', g, '192.0.2.9/32', ruleTags('cli', 'ns/x', Date.now() - 5000));
    const r = await cli(
      ['--cluster', 'cli', '--region', 'eu-north-1', '--aws-endpoint', ec2.url],
      envCreds(),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`revoked ${id} eu-north-1 ${g} tcp/22 192.0.2.9/32 grant=ns/x`);
    expect(r.stdout).toContain('eu-north-1: 1 revoked, 0 not expired kept');
    expect(await ingressIds('eu-north-1')).toEqual([]);
  });

  it('emulator errors and bad input: one clear line, a meaningful exit status, nothing changed', async () => {
    const g = await group('eu-south-1', 'bastion-err');
    const id = await rule('eu-south-1', g, '192.0.2.10/32', ruleTags('err', 'ns/y', Date.now() - 5000));
    const args = ['--cluster', 'err', '--region', 'eu-south-1', '--aws-endpoint', ec2.url];

    const badKey = await cli(args, { ...envCreds(), AWS_SECRET_ACCESS_KEY: 'wrong' });
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toMatch(/^sweep eu-south-1: AuthFailure: .+\n/);

    ec2.setSettings({ deny: { [DEFAULT_CREDENTIAL.accessKeyId]: ['RevokeSecurityGroupIngress'] } });
    const denied = await cli(args, envCreds());
    ec2.setSettings({ deny: {} });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(
      'sweep eu-south-1: UnauthorizedOperation: You are not authorized to perform this operation.',
    );
    expect(await ingressIds('eu-south-1')).toEqual([id]);

    const unreachable = await cli(
      [
        '--cluster',
        'err',
        '--region',
        'eu-south-1',
        '--aws-endpoint',
        'http://127.0.0.1:1',
        '--max-attempts',
        '1',
      ],
      envCreds(),
    );
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^sweep eu-south-1: .*ECONNREFUSED/m);

    for (const [bad, message] of [
      [['--cluster', 'p*', '--region', 'eu-south-1'], 'cluster id "p*"'],
      [['--cluster', 'err', '--region', 'mars-1'], 'region "mars-1"'],
      [
        ['--cluster', 'err', '--region', 'eu-south-1', '--aws-endpoint', 'ftp://x'],
        '--aws-endpoint "ftp://x"',
      ],
    ] as const) {
      const r = await cli([...bad], envCreds());
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`knockgate: ${r.stderr.slice('knockgate: '.length).split('\n')[0]}\n`);
      expect(r.stderr).toContain(message);
    }
    expect(await ingressIds('eu-south-1')).toEqual([id]);
  });

  it('as a Lambda handler: configured by environment, fails the invocation when a region fails', async () => {
    const g = await group('ap-east-1', 'bastion-lambda');
    const id = await rule('ap-east-1', g, '192.0.2.11/32', ruleTags('lam', 'ns/z', Date.now() - 5000));
    const env = {
      ...envCreds(),
      KNOCKGATE_CLUSTER: 'lam',
      KNOCKGATE_REGIONS: 'ap-east-1',
      KNOCKGATE_AWS_ENDPOINT: ec2.url,
    };
    const lines: string[] = [];
    const saved = { ...process.env };
    Object.assign(process.env, envCreds(), { AWS_EC2_METADATA_DISABLED: 'true' }); // the SDK's default chain reads process.env
    try {
      await expect(handler({}, { ...env, KNOCKGATE_REGIONS: '' })).rejects.toThrow('KNOCKGATE_REGIONS');
      expect(await handler({}, env, (l) => lines.push(l))).toEqual({
        regions: [{ region: 'ap-east-1', revoked: [id], kept: 0 }],
      });
      expect(lines[0]).toContain(`revoked ${id} ap-east-1`);
      ec2.faults.fail({ status: 500, count: 10, region: 'ap-east-1' });
      await expect(handler({}, env, () => undefined)).rejects.toThrow(
        /knockgate sweep failed in ap-east-1 \(InternalError/,
      );
      ec2.faults.clear();
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});
