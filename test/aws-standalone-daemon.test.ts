// The standalone daemon with a security-group target on a fake clock (in-memory firewall, decisions
// handed straight in), against the EC2 emulator through the real SDK: a grant opens both targets
// and records the rule in status.securityGroups; a repeat moves the rule's end tag later; a group
// that fails makes the grant Failed and closes the other group and the local firewall too; expiry
// revokes; Audit mode makes no AWS call; an AWS target without a target configured is refused.

import { EC2Client } from '@aws-sdk/client-ec2';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import { loadConfig } from '../api/config/load.js';
import { createLogger } from '../api/log.js';
import { Ec2Clients } from '../controller/aws/client.js';
import { SecurityGroupTarget } from '../controller/aws/group-target.js';
import { StandaloneDaemon, StartError } from '../controller/standalone/daemon.js';
import type { Sniffer } from '../sniffer/capture/sniffer.js';
import type { AccessDecision } from '../sniffer/decision.js';
import { DEFAULT_CREDENTIAL, Ec2Emulator } from './emulators/ec2/server.js';
import { createGroup, ingressRules } from './helpers/ec2-sdk.js';
import { FakeFirewall } from './helpers/fake-firewall.js';

const REGION = 'eu-west-1';
const logger = createLogger({ level: 'silent' });
let ec2: Ec2Emulator;
let clients: Ec2Clients;
let client: EC2Client;
let dir: string;

beforeAll(async () => {
  ec2 = new Ec2Emulator();
  await ec2.start();
  clients = new Ec2Clients({ endpoint: ec2.url, credentials: DEFAULT_CREDENTIAL, maxAttempts: 1 });
  client = new EC2Client({ endpoint: ec2.url, region: REGION, credentials: DEFAULT_CREDENTIAL });
  dir = mkdtempSync(join(tmpdir(), 'kg-aws-daemon-'));
});
afterAll(async () => {
  clients?.destroy();
  client?.destroy();
  await ec2?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function config(name: string, groups: string[][], mode = 'Enforce') {
  const file = join(dir, `${name}.yaml`);
  const policies = groups.map(
    (g, i) => `apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: door-${i}}
spec:
  knock: {sequence: ["${7000 + i}/tcp", "${8000 + i}/tcp"]}
  grant:
    ports: ["22/tcp"]
    durationSeconds: 30
    targets: {awsSecurityGroups: [${g.map((id) => `{groupId: ${id}, region: ${REGION}}`).join(', ')}]}
---
`,
  );
  writeFileSync(
    file,
    `${policies.join('')}apiVersion: knockgate.io/v1alpha1\nkind: StandaloneConfig\nmode: ${mode}\n`,
  );
  return loadConfig(file);
}

const knock = (source: string, policy: string): AccessDecision => ({
  kind: 'grant',
  policy,
  method: 'knock',
  source,
  ports: ['22/tcp'],
  durationSeconds: 30,
});

const sniffer: Sniffer = {
  interfaces: () => ['fake0'],
  filters: () => ({}),
  refresh: () => undefined,
  drops: () => [],
  close: () => undefined,
};

const group = (name: string) => createGroup(client, name);
const ingress = (groupId: string) => ingressRules(client, groupId);

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function daemon(name: string, groups: string[][], mode = 'Enforce') {
  const clock = new FakeClock(Date.now());
  const firewall = new FakeFirewall(10);
  const target = new SecurityGroupTarget({ clusterId: `host-${name}`, clients, clock, logger });
  const d = new StandaloneDaemon({
    config: config(name, groups, mode),
    stateDir: join(dir, `state-${name}`),
    firewall,
    startSniffer: () => sniffer,
    clock,
    logger,
    node: 'host-a',
    controlSocket: false,
    securityGroups: target,
  });
  return { d, clock, firewall };
}

describe('standalone daemon with awsSecurityGroups targets', () => {
  it('opens both targets, extends the end tag, fails closed, revokes at expiry', async () => {
    const [a, b] = [await group('d-a'), await group('d-b')];
    const { d, clock, firewall } = daemon('main', [[a], [b, 'sg-0000000000000dead']]);
    await d.start();
    try {
      await d.decide(knock('10.2.0.5/32', 'door-0'));
      const [rule] = await ingress(a);
      expect(rule).toMatchObject({ CidrIpv4: '10.2.0.5/32', FromPort: 22, IpProtocol: 'tcp' });
      const grant = (await d.grantStore.list())[0]!;
      expect(grant.status?.phase).toBe('Active');
      expect(grant.status?.securityGroups?.[`${REGION}/${a}`]).toMatchObject({
        state: 'Applied',
        ruleId: rule!.SecurityGroupRuleId,
      });
      expect(firewall.entries.has(grant.metadata.name)).toBe(true);
      const firstEnd = rule!.Tags?.find((t) => t.Key === 'knockgate.io/expires-at')?.Value;

      clock.advance(10_000);
      await d.decide(knock('10.2.0.5/32', 'door-0'));
      const [again] = await ingress(a);
      expect(again!.SecurityGroupRuleId).toBe(rule!.SecurityGroupRuleId);
      const laterEnd = again!.Tags?.find((t) => t.Key === 'knockgate.io/expires-at')?.Value;
      expect(Date.parse(laterEnd!) - Date.parse(firstEnd!)).toBe(10_000);

      await d.decide(knock('10.2.0.6/32', 'door-1'));
      const failed = (await d.grantStore.list()).find((g) => g.spec.source === '10.2.0.6/32')!;
      expect(failed.status?.phase).toBe('Failed');
      expect(failed.status?.message).toMatch(
        /^aws: security group sg-0000000000000dead \(eu-west-1\) tcp\/22: GroupNotFound: /,
      );
      expect(failed.status?.securityGroups?.[`${REGION}/sg-0000000000000dead`]?.state).toBe('Failed');
      expect(firewall.entries.has(failed.metadata.name)).toBe(false);
      expect(await ingress(b)).toEqual([]);

      clock.advance(31_000);
      await until(async () => (await ingress(a)).length === 0, 'the rule revoked at expiry');
      expect(firewall.entries.size).toBe(0);
    } finally {
      await d.stop();
    }
  });

  it('Audit mode: logged, no AWS call', async () => {
    const sg = await group('d-audit');
    const { d } = daemon('audit', [[sg]], 'Audit');
    await d.start();
    const mark = ec2.requests.length;
    try {
      await d.decide(knock('10.2.1.5/32', 'door-0'));
      expect(ec2.requests.slice(mark).map((r) => r.action)).toEqual([]);
      expect(await ingress(sg)).toEqual([]);
    } finally {
      await d.stop();
    }
  });

  it('an AWS target and no security-group target configured: refused with the reason', () => {
    const make = () =>
      new StandaloneDaemon({
        config: config('none', [['sg-0123456789abcdef0']]),
        stateDir: join(dir, 'state-none'),
        firewall: new FakeFirewall(),
        startSniffer: () => sniffer,
        clock: new FakeClock(),
        logger,
      });
    expect(make).toThrow(StartError);
    expect(make).toThrow(
      /policy "door-0" targets security group sg-0123456789abcdef0 \(eu-west-1\): --cluster-id is required/,
    );
  });
});
