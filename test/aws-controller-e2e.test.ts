// Issue 10 end to end: `knockgate controller --cluster-id --aws-region --aws-endpoint` against the
// Kubernetes API emulator (the controller's own RBAC) and the EC2 emulator (in this process,
// bridged onto the api namespace's loopback), a node namespace with `knockgate sniffer`, and a
// client namespace with the real fwknop client (test/helpers/cluster-harness.ts). Rules are read
// back through the real @aws-sdk/client-ec2 (and, for the scale check, from the emulator's state,
// so the test's own reads do not spend the region's request budget); grants with the real kubectl.
//
//   concurrently, with EC2 throttling at 5 requests/s per region (burst 2):
//     SPA packet → rule on both policy groups, Active; at expiry revoked and Expired;
//     kubectl delete → revoked before the delete returns (the finalizer waits for it);
//     two grants for one source and port → the rule stays until the later end;
//     a full group → Failed/QuotaExceeded + Event, the other group opened, nothing partial;
//     an unknown group → GroupNotFound + Event;
//     a tagged rule without grant swept; an untagged and another cluster's rule never touched;
//     40 grants × 3 groups × 2 regions: each rule once, in time, each revoked in time;
//   then: a missing permission and a bad signature → reason + Event, nothing open; the controller
//   killed with a live grant and restarted after its end (credentials now from a container
//   endpoint on loopback instead of the environment) → revoked on start.

import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeSecurityGroupRulesCommand,
  EC2Client,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessGrant, AwsSecurityGroupRef } from '../api/types.js';
import { ruleTags } from '../controller/aws/tags.js';
import { startContainerCredentialsEndpoint } from './emulators/ec2/credentials-endpoint.js';
import { DEFAULT_CREDENTIAL } from './emulators/ec2/server.js';
import { Cluster, RELEASE_NS } from './helpers/cluster-harness.js';
import { skipWithoutNetns, waitFor } from './helpers/netns.js';
import { keygen, ROOT, type SpaKeys } from './helpers/standalone-harness.js';

// The SDK's Node 20 notice (once per process) is not this test's business.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const CLUSTER_ID = 'e2e';
const BASIC = 'eu-central-1';
const SCALE = ['eu-west-1', 'us-east-1'];
const SPA_PORT = 62201;
const RATE = 5;
const SCALE_GRANTS = 40;
const SCALE_SECONDS = 8;
// The later of two grants sharing one rule. Its margin over the 3 s one must cover the time the
// earlier one takes to be seen Expired while the region is throttled at RATE and busy with the
// other checks (on a fresh, loaded machine that was over 4 s: a 7 s grant had already ended).
const PAIR_LONG_SECONDS = 20;
// The SPA grant's life. It must outlast its own opening: Active only once both groups hold the rule,
// and the region is throttled at RATE and shared with the other checks (a 4 s grant was seen go
// from Pending to Expired between two listings on a quiet machine).
const SPA_SECONDS = 12;

const b64 = (text: string) => Buffer.from(text).toString('base64');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CONTROLLER_CONFIG = `apiVersion: knockgate.io/v1alpha1
kind: ControllerConfig
retention: {seconds: 120, maxGrants: 1000}
revokeTimeoutSeconds: 20
eventsNamespace: ${RELEASE_NS}
leaderElection: {namespace: ${RELEASE_NS}, leaseName: knockgate-controller, leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2}
`;

const ENV_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: DEFAULT_CREDENTIAL.accessKeyId,
  AWS_SECRET_ACCESS_KEY: DEFAULT_CREDENTIAL.secretAccessKey,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
  AWS_CONTAINER_AUTHORIZATION_TOKEN: undefined,
};

describe.skipIf(skipWithoutNetns('aws-controller-e2e'))('security groups end to end (controller)', () => {
  let c: Cluster;
  let keys: SpaKeys;
  let namespaces: string[] = [];
  let ec2Url = '';
  const sdk = new Map<string, EC2Client>();
  const groups: Record<string, AwsSecurityGroupRef> = {};
  const scaleGroups: AwsSecurityGroupRef[] = [];

  const controllerArgs = () => [
    '--cluster-id',
    CLUSTER_ID,
    '--aws-region',
    [BASIC, ...SCALE].join(','),
    '--aws-endpoint',
    ec2Url,
    '--aws-grace-seconds',
    '2',
    '--aws-sweep-seconds',
    '2',
  ];

  function client(region: string): EC2Client {
    let x = sdk.get(region);
    if (!x) {
      x = new EC2Client({
        endpoint: c.ec2!.url,
        region,
        credentials: DEFAULT_CREDENTIAL,
        maxAttempts: 10,
        retryMode: 'adaptive',
      });
      sdk.set(region, x);
    }
    return x;
  }

  async function newGroup(region: string, name: string): Promise<AwsSecurityGroupRef> {
    const r = await client(region).send(
      new CreateSecurityGroupCommand({ GroupName: name, Description: 'e2e' }),
    );
    return { groupId: r.GroupId!, region };
  }

  /** Through the real SDK. */
  async function rulesOf(g: AwsSecurityGroupRef): Promise<SecurityGroupRule[]> {
    const r = await client(g.region).send(
      new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [g.groupId] }] }),
    );
    return (r.SecurityGroupRules ?? []).filter((x) => !x.IsEgress);
  }

  const cidrsOf = async (g: AwsSecurityGroupRef) => (await rulesOf(g)).map((r) => r.CidrIpv4).sort();

  async function untilRules(g: AwsSecurityGroupRef, cond: (r: SecurityGroupRule[]) => boolean, what: string) {
    return (await waitFor(
      async () => {
        const r = await rulesOf(g);
        return cond(r) ? r : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 300, what },
    ))!;
  }

  function addRules(g: AwsSecurityGroupRef, cidrs: string[], tags?: { Key: string; Value: string }[]) {
    return client(g.region).send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: g.groupId,
        IpPermissions: [
          { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: cidrs.map((CidrIp) => ({ CidrIp })) },
        ],
        ...(tags ? { TagSpecifications: [{ ResourceType: 'security-group-rule', Tags: tags }] } : {}),
      }),
    );
  }

  // One kubectl listing shared by every waiter (each kubectl is a process: keep them few).
  let listing: Promise<AccessGrant[]> | undefined;
  let listedAt = 0;
  function grants(): Promise<AccessGrant[]> {
    if (!listing || Date.now() - listedAt > 300) {
      listedAt = Date.now();
      listing = c.grants();
    }
    return listing;
  }
  async function waitGrant(
    name: string,
    pred: (g: AccessGrant) => boolean,
    what: string,
  ): Promise<AccessGrant> {
    return (await waitFor(
      async () => {
        const g = (await grants()).find((x) => x.metadata.name === name);
        return g && pred(g) ? g : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `${name}: ${what}` },
    ))!;
  }
  const sgOf = (g: AccessGrant, ref: AwsSecurityGroupRef) => g.status?.securityGroups?.[ref.groupId];

  async function eventsOf(name: string): Promise<{ reason: string; message: string; type: string }[]> {
    const out = await c.kubectlOk(['get', 'events', '-n', RELEASE_NS, '-o', 'json']);
    const items = (
      JSON.parse(out) as {
        items: { reason: string; message: string; type: string; involvedObject?: { name?: string } }[];
      }
    ).items;
    return items.filter((e) => e.involvedObject?.name === name);
  }

  function grantYaml(
    name: string,
    source: string,
    seconds: number,
    targets: AwsSecurityGroupRef[],
    policy = 'bastion-long',
  ): string {
    return `apiVersion: knockgate.io/v1alpha1
kind: AccessGrant
metadata: {name: ${name}}
spec:
  source: ${source}
  ports: ["22/tcp"]
  expiresAt: "${new Date(Date.now() + seconds * 1000).toISOString()}"
  policyRef: {name: ${policy}}
  method: spa
  targets: {awsSecurityGroups: ${JSON.stringify(targets)}}
`;
  }

  const policyYaml = (
    name: string,
    port: number,
    seconds: number,
    targets: AwsSecurityGroupRef[],
    nodeSelector = 'edge',
  ) => `apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: ${name}}
spec:
  spa: {keySecretRef: {name: spa-keys}, port: "${port}/udp", maxPacketAgeSeconds: 120}
  grant:
    ports: ["22/tcp"]
    durationSeconds: ${seconds}
    targets: {node: {mode: None}, awsSecurityGroups: ${JSON.stringify(targets)}}
  nodeSelector: {role: ${nodeSelector}}
`;

  function withLogs<T>(p: Promise<T>): Promise<T> {
    return p.catch((err: Error) => {
      throw new Error(`${err.message}\n${c.logs(40)}`);
    });
  }

  beforeAll(async () => {
    c = await Cluster.create();
    namespaces = c.namespaces;
    keys = await keygen();
    await withLogs(
      (async () => {
        ec2Url = await c.startEc2();
        await c.startApi();
        await c.kubectlOk(['apply', '-f', `${ROOT}crds/`]);
        await c.apply('node', 'apiVersion: v1\nkind: Node\nmetadata: {name: node-a, labels: {role: edge}}\n');
        await c.apply(
          'secret',
          `apiVersion: v1\nkind: Secret\nmetadata: {name: spa-keys, namespace: ${RELEASE_NS}}\ndata: {KEY_BASE64: "${b64(keys.key)}", HMAC_KEY_BASE64: "${b64(keys.hmac)}"}\n`,
        );
        for (const n of ['b1', 'b2', 'full']) groups[n] = await newGroup(BASIC, n);
        for (const region of SCALE)
          for (let i = 0; i < 3; i++) scaleGroups.push(await newGroup(region, `scale-${i}`));
        // The full group: 60 rules of its own (EC2's default quota per family), none of knockgate's.
        await addRules(
          groups.full!,
          Array.from({ length: 60 }, (_, i) => `192.0.2.${i + 1}/32`),
        );
        const unknown = { groupId: 'sg-0000000000000dead', region: BASIC };
        await c.apply(
          'policies',
          [
            policyYaml('bastion', SPA_PORT, SPA_SECONDS, [groups.b1!, groups.b2!]),
            policyYaml(
              'bastion-long',
              SPA_PORT + 1,
              60,
              [groups.b1!, groups.b2!, groups.full!, unknown],
              'none',
            ),
            policyYaml('scale', SPA_PORT + 2, 60, scaleGroups, 'none'),
          ].join('---\n'),
        );
        await Promise.all([
          c.startSniffer('node-a'),
          c.startController(CONTROLLER_CONFIG, { args: controllerArgs(), env: ENV_CREDENTIALS }),
        ]);
        await c.sniffers
          .get('node-a')!
          .waitLog(
            (l) =>
              (l.event === 'started' || l.event === 'policies') &&
              (l.policies as string[])?.includes('bastion'),
            'the bastion policy',
            30_000,
          );
      })(),
    );
  }, 120_000);

  afterAll(async () => {
    for (const x of sdk.values()) x.destroy();
    await c?.destroy();
    const listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0]);
    expect(
      namespaces.filter((ns) => listed.includes(ns)),
      'namespaces left behind',
    ).toEqual([]);
  }, 60_000);

  /** A real fwknop SPA packet: rule on both groups (real SDK), Active, describe; expiry revokes. */
  async function spa(): Promise<void> {
    const source = `${c.addr('client')}/32`;
    await c.fwknop('client', 'node-a', keys, 'tcp/22', SPA_PORT);
    const g = (await waitFor(
      async () =>
        (await grants()).find(
          (x) =>
            x.spec.source === source && x.spec.policyRef?.name === 'bastion' && x.status?.phase === 'Active',
        ),
      { timeoutMs: 30_000, intervalMs: 200, what: 'the SPA grant Active' },
    ))!;
    const name = g.metadata.name;
    for (const ref of [groups.b1!, groups.b2!]) {
      const [rule] = (await rulesOf(ref)).filter((r) => r.CidrIpv4 === source);
      expect(rule, `${ref.groupId}: a rule for ${source}`).toBeDefined();
      expect(rule).toMatchObject({
        IpProtocol: 'tcp',
        FromPort: 22,
        ToPort: 22,
        Description: `knockgate ${name}`,
      });
      expect(rule!.Tags).toEqual(
        expect.arrayContaining([{ Key: 'knockgate.io/cluster', Value: CLUSTER_ID }]),
      );
      expect(sgOf(g, ref)).toMatchObject({ state: 'Applied', ruleId: rule!.SecurityGroupRuleId });
    }
    const table = await c.kubectlOk(['get', 'accessgrants', name]);
    expect(table).toMatch(new RegExp(`${name}\\s.*Active`));
    expect(table.split('\n')[0]).toMatch(/^NAME\s+SOURCE\s+PORTS\s+METHOD\s+POLICY\s+PHASE\s+EXPIRES\s+AGE/);
    const described = await c.kubectlOk(['describe', 'accessgrant', name]);
    expect(described).toContain(groups.b1!.groupId);
    expect(described).toContain(sgOf(g, groups.b1!)!.ruleId);
    expect(described).toMatch(/State:\s+Applied/);
    // At expiry (SPA_SECONDS): revoked, Expired.
    await waitGrant(name, (x) => x.status?.phase === 'Expired', 'Expired');
    for (const ref of [groups.b1!, groups.b2!])
      await untilRules(
        ref,
        (r) => !r.some((x) => x.CidrIpv4 === source),
        `${ref.groupId}: the SPA rule revoked`,
      );
    await waitGrant(name, (x) => sgOf(x, groups.b1!)?.state === 'Removed', 'b1 Removed');
  }

  /** kubectl delete: the finalizer waits for the revocation, so the rule is gone when it returns. */
  async function deleteRevokes(): Promise<void> {
    await c.apply('doomed', grantYaml('doomed', '10.55.0.1/32', 50, [groups.b1!]));
    await waitGrant('doomed', (x) => x.status?.phase === 'Active', 'Active');
    expect(await cidrsOf(groups.b1!)).toContain('10.55.0.1/32');
    await c.kubectlOk(['delete', 'accessgrant', 'doomed', '--timeout=30s']);
    expect(await cidrsOf(groups.b1!)).not.toContain('10.55.0.1/32');
  }

  /** Two grants, one source and port: one rule, kept until the later end. */
  async function sharedRule(): Promise<void> {
    await c.apply(
      'pair',
      grantYaml('pair-short', '10.55.0.2/32', 3, [groups.b2!]) +
        '---\n' +
        grantYaml('pair-long', '10.55.0.2/32', PAIR_LONG_SECONDS, [groups.b2!]),
    );
    const long = await waitGrant('pair-long', (x) => x.status?.phase === 'Active', 'Active');
    const short = await waitGrant('pair-short', (x) => x.status?.phase === 'Expired', 'Expired');
    const mine = (r: SecurityGroupRule[]) => r.filter((x) => x.CidrIpv4 === '10.55.0.2/32');
    const kept = mine(await rulesOf(groups.b2!));
    expect(kept).toHaveLength(1);
    expect(kept[0]!.SecurityGroupRuleId).toBe(sgOf(long, groups.b2!)!.ruleId);
    expect(sgOf(short, groups.b2!)?.ruleId ?? kept[0]!.SecurityGroupRuleId).toBe(
      kept[0]!.SecurityGroupRuleId,
    );
    await waitGrant('pair-long', (x) => x.status?.phase === 'Expired', 'Expired');
    await untilRules(groups.b2!, (r) => mine(r).length === 0, 'the shared rule revoked at the later end');
  }

  /** A full group and an unknown group: Failed with a reason and an Event; b1 opened; nothing partial. */
  async function failedTargets(): Promise<void> {
    const unknown = { groupId: 'sg-0000000000000dead', region: BASIC };
    await c.apply('quota', grantYaml('quota', '10.55.0.3/32', 50, [groups.full!, groups.b1!, unknown]));
    const g = await waitGrant(
      'quota',
      (x) =>
        sgOf(x, groups.full!)?.state === 'Failed' &&
        sgOf(x, unknown)?.state === 'Failed' &&
        sgOf(x, groups.b1!)?.state === 'Applied',
      'full and unknown Failed, b1 Applied',
    );
    expect(sgOf(g, groups.full!)!.reason).toBe('QuotaExceeded');
    expect(sgOf(g, unknown)!.reason).toBe('GroupNotFound');
    expect(g.status!.phase).toBe('Pending');
    expect((await rulesOf(groups.full!)).filter((r) => !r.CidrIpv4!.startsWith('192.0.2.'))).toEqual([]);
    expect(await cidrsOf(groups.b1!)).toContain('10.55.0.3/32');
    const events = await waitFor(
      async () => {
        const e = (await eventsOf('quota')).filter((x) => x.reason === 'SecurityGroupFailed');
        return e.length === 2 ? e : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500, what: 'two SecurityGroupFailed events' },
    );
    expect(events!.map((e) => e.type)).toEqual(['Warning', 'Warning']);
    const messages = events!.map((e) => e.message).join('\n');
    expect(messages).toContain(`${groups.full!.groupId} (${BASIC}): QuotaExceeded`);
    expect(messages).toContain(`${unknown.groupId} (${BASIC}): GroupNotFound`);
    await c.kubectlOk(['delete', 'accessgrant', 'quota', '--timeout=30s']);
    expect(await cidrsOf(groups.b1!)).not.toContain('10.55.0.3/32');
  }

  /** A tagged rule without grant is swept; an untagged one and another cluster's never. */
  async function sweep(): Promise<void> {
    const far = Date.now() + 3_600_000;
    await addRules(groups.b2!, ['10.66.0.1/32']);
    await addRules(groups.b2!, ['10.66.0.2/32'], ruleTags('other-cluster', 'x', far));
    await addRules(groups.b2!, ['10.66.0.3/32'], ruleTags(CLUSTER_ID, 'ghost', far));
    await untilRules(
      groups.b2!,
      (r) => !r.some((x) => x.CidrIpv4 === '10.66.0.3/32'),
      'the ghost rule swept',
    );
    expect((await cidrsOf(groups.b2!)).filter((x) => x!.startsWith('10.66.'))).toEqual([
      '10.66.0.1/32',
      '10.66.0.2/32',
    ]);
  }

  /** 40 grants × 3 groups × 2 regions under throttling: each rule once, in time, each revoked in time. */
  async function scale(): Promise<{ appearS: number; revokeS: number; calls: number }> {
    const state = (g: AwsSecurityGroupRef) =>
      c
        .ec2!.region(g.region)
        .rulesOf(g.groupId, false)
        .filter((r) => r.tags.get('knockgate.io/cluster') === CLUSTER_ID);
    const sources = Array.from({ length: SCALE_GRANTS }, (_, i) => `10.77.0.${i + 1}/32`);
    const answered = (region: string, from: number) =>
      c.ec2!.requests.slice(from).filter((r) => r.region === region && r.status === 200).length;
    const mark = c.ec2!.requests.length;
    const yaml = sources
      .map((s, i) => grantYaml(`scale-${String(i).padStart(2, '0')}`, s, SCALE_SECONDS, scaleGroups, 'scale'))
      .join('---\n');
    const end = Date.now() + SCALE_SECONDS * 1000;
    await c.apply('scale', yaml);
    const due = Date.now();
    const seen = new Map<string, number>();
    const gone = new Map<string, number>();
    let duplicates = 0;
    for (let i = 0; i < 2000 && gone.size < sources.length * scaleGroups.length; i++) {
      const now = Date.now();
      for (const g of scaleGroups) {
        const rules = state(g);
        const cidrs = rules.map((r) => r.cidrIpv4!);
        if (new Set(cidrs).size !== cidrs.length) duplicates++;
        for (const s of sources) {
          const k = `${g.groupId} ${s}`;
          if (cidrs.includes(s)) seen.set(k, seen.get(k) ?? now);
          else if (seen.has(k)) gone.set(k, gone.get(k) ?? now);
        }
      }
      if (now > end + 30_000) break;
      await sleep(50);
    }
    expect(duplicates, 'a (group, source) with two rules').toBe(0);
    expect(seen.size, 'rules that appeared').toBe(sources.length * scaleGroups.length);
    expect(gone.size, 'rules revoked').toBe(sources.length * scaleGroups.length);
    const lastSeen = Math.max(...seen.values());
    const lastGone = Math.max(...gone.values());
    const calls = Math.max(...SCALE.map((r) => answered(r, mark)));
    // Within 2 s + calls / rate of when due (creation; expiresAt).
    expect(lastSeen - due).toBeLessThanOrEqual(2000 + (calls / RATE) * 1000);
    expect(lastGone - end).toBeLessThanOrEqual(2000 + (calls / RATE) * 1000);
    expect(Math.min(...gone.values())).toBeGreaterThanOrEqual(end - 1000); // none lost early
    expect(
      c.ec2!.requests.slice(mark).some((r) => r.code === 'RequestLimitExceeded' && SCALE.includes(r.region!)),
    ).toBe(true);
    // Status follows EC2: every grant Expired, every group Removed (written after each pass).
    await waitFor(
      async () => {
        const all = (await grants()).filter((x) => x.spec.policyRef?.name === 'scale');
        return (
          all.length === SCALE_GRANTS &&
          all.every(
            (g) =>
              g.status?.phase === 'Expired' && scaleGroups.every((ref) => sgOf(g, ref)?.state === 'Removed'),
          )
        );
      },
      { timeoutMs: 30_000, intervalMs: 300, what: 'every scale grant Expired with its groups Removed' },
    );
    return { appearS: (lastSeen - due) / 1000, revokeS: (lastGone - end) / 1000, calls };
  }

  it('SPA, expiry, delete, shared rules, failed targets, sweep and 40×3×2 grants under throttling, at once', async () => {
    c.ec2!.setSettings({ requestsPerSecond: RATE, burst: 2 });
    try {
      const [timing] = await withLogs(
        Promise.all([scale(), spa(), deleteRevokes(), sharedRule(), failedTargets(), sweep()]),
      );
      console.log(
        `scale: last rule ${timing.appearS} s after creation, last revoke ${timing.revokeS} s after expiry, ${timing.calls} calls in a region`,
      );
    } finally {
      // A failure here must not leave the throttle on for the checks that follow.
      c.ec2!.setSettings({ requestsPerSecond: 0 });
    }
  }, 120_000);

  it('a missing permission and a bad signature: a reason and an Event, nothing open', async () => {
    const key = DEFAULT_CREDENTIAL.accessKeyId;
    // What EC2 holds, read in process (with a bad signature this test's own SDK calls fail too).
    const held = (ref: AwsSecurityGroupRef) =>
      c
        .ec2!.region(ref.region)
        .rulesOf(ref.groupId, false)
        .map((r) => r.cidrIpv4);
    const refused = async (name: string, source: string, ref: AwsSecurityGroupRef, reason: string) => {
      await c.apply(name, grantYaml(name, source, 50, [ref]));
      const g = await waitGrant(name, (x) => sgOf(x, ref)?.state === 'Failed', 'Failed');
      expect(sgOf(g, ref)!.reason).toBe(reason);
      await waitFor(
        async () =>
          (await eventsOf(name)).some((e) => e.reason === 'SecurityGroupFailed' && e.type === 'Warning'),
        { timeoutMs: 20_000, intervalMs: 500, what: `${name}: its SecurityGroupFailed event` },
      );
      expect(held(ref)).not.toContain(source);
      // Deleted while still refused: nothing was opened, so nothing holds the finalizer.
      await c.kubectlOk(['delete', 'accessgrant', name, '--timeout=30s']);
      return g;
    };
    c.ec2!.setSettings({ deny: { [key]: ['AuthorizeSecurityGroupIngress'] } });
    try {
      const g = await refused('denied', '10.55.0.4/32', groups.b1!, 'Unauthorized');
      expect(sgOf(g, groups.b1!)!.message).toContain('UnauthorizedOperation');
    } finally {
      c.ec2!.setSettings({ deny: {} });
    }
    // The emulator now holds another secret for the controller's key id: every signature is wrong.
    c.ec2!.addCredential({ accessKeyId: key, secretAccessKey: 'rotated-elsewhere' });
    try {
      await refused('forged', '10.55.0.5/32', groups.b2!, 'AuthFailure');
    } finally {
      c.ec2!.addCredential(DEFAULT_CREDENTIAL);
    }
    expect(held(groups.b1!)).not.toContain('10.55.0.4/32');
    expect(held(groups.b2!)).not.toContain('10.55.0.5/32');
  }, 60_000);

  it('killed with a live grant, restarted after its end with container credentials: revoked on start', async () => {
    await c.apply('crash', grantYaml('crash', '10.55.0.6/32', 3, [groups.b1!]));
    const end = Date.now() + 3000;
    await waitGrant('crash', (x) => x.status?.phase === 'Active', 'Active');
    expect(await cidrsOf(groups.b1!)).toContain('10.55.0.6/32');
    await c.controller!.kill9();
    await sleep(end + 500 - Date.now());
    expect(await cidrsOf(groups.b1!)).toContain('10.55.0.6/32'); // nobody revoked it meanwhile
    const token = 'pod-identity-token';
    const endpoint = await startContainerCredentialsEndpoint({
      issue: () => c.ec2!.issueTemporaryCredential(),
      authToken: token,
    });
    try {
      const port = await c.exposeToApi(Number(new URL(endpoint.url).port));
      const mark = c.ec2!.requests.length;
      await c.startController(CONTROLLER_CONFIG, {
        args: controllerArgs(),
        env: {
          ...ENV_CREDENTIALS,
          AWS_ACCESS_KEY_ID: undefined,
          AWS_SECRET_ACCESS_KEY: undefined,
          AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${port}/v1/credentials`,
          AWS_CONTAINER_AUTHORIZATION_TOKEN: token,
        },
      });
      await withLogs(
        untilRules(groups.b1!, (r) => !r.some((x) => x.CidrIpv4 === '10.55.0.6/32'), 'revoked on start'),
      );
      await waitGrant('crash', (x) => x.status?.phase === 'Expired', 'Expired');
      expect(endpoint.served()).toBeGreaterThanOrEqual(1);
      // The controller's calls (this test never revokes) signed with what the endpoint handed out.
      const revokes = c.ec2!.requests.slice(mark).filter((r) => r.action === 'RevokeSecurityGroupIngress');
      expect(revokes.length).toBeGreaterThan(0);
      expect(revokes.every((r) => r.status === 200 && r.accessKeyId?.startsWith('ASIA'))).toBe(true);
      // Never touched, whatever happened: the bastion's own rule and another cluster's.
      expect((await cidrsOf(groups.b2!)).filter((x) => x!.startsWith('10.66.'))).toEqual([
        '10.66.0.1/32',
        '10.66.0.2/32',
      ]);
    } finally {
      await endpoint.stop();
    }
  }, 60_000);

  // Last: knockgate off the cluster (the pre-delete hook Job's command, its own RBAC). The live
  // grant's rules go because the controller revokes them before it lets the finalizer go.
  it('knockgate uninstall: a live grant revoked, no security-group rule of this cluster left, no grant; others untouched', async () => {
    await c.apply('last', grantYaml('last', '10.55.0.7/32', 120, [groups.b1!, groups.b2!]));
    await waitGrant('last', (x) => x.status?.phase === 'Active', 'Active');
    const ours = async (g: AwsSecurityGroupRef) =>
      (await rulesOf(g)).filter((r) =>
        r.Tags?.some((t) => t.Key === 'knockgate.io/cluster' && t.Value === CLUSTER_ID),
      );
    for (const g of [groups.b1!, groups.b2!])
      expect((await ours(g)).map((r) => r.CidrIpv4)).toContain('10.55.0.7/32');
    const others = (await cidrsOf(groups.b2!)).filter((x) => !x!.startsWith('10.55.'));

    const r = await c.uninstall(['--timeout', '60']);
    expect(r.code, `${r.stderr}\n${c.logs(40)}`).toBe(0);
    expect(r.stdout).toMatch(/^revoked \d+ accessgrant\(s\): .*\blast\b/m);
    expect(r.stdout).toMatch(/security-group rules removed by the controller before it let go: [1-9]/);
    expect(await c.grants()).toEqual([]);
    for (const g of [groups.b1!, groups.b2!, groups.full!, ...scaleGroups])
      expect(await ours(g), `rules of cluster ${CLUSTER_ID} in ${g.groupId}`).toEqual([]);
    // Another cluster's and untagged rules are not this uninstall's business.
    expect((await cidrsOf(groups.b2!)).filter((x) => !x!.startsWith('10.55.'))).toEqual(others);
  }, 90_000);
});
