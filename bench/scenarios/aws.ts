// Security-group targets through knockgate standalone (`npm run bench:aws`): SPA packets from N
// client addresses at once → each one's ingress rule visible in DescribeSecurityGroupRules, and each
// grant's expiresAt → its rule gone, with the EC2 calls the daemon made per grant. The daemon's AWS
// path is controller/aws/group-target.ts over RegionSync, the region pass the Kubernetes controller
// runs; the EC2 emulator (test/emulators/ec2, no throttling, 1,000 rules per group) on the server
// namespace's loopback stands in for EC2. No peer to compare with: fwknopd and knockd do not speak to
// AWS (their way is a command per grant, e.g. `aws ec2 authorize-security-group-ingress`).
//
// Times: the sender (bench/aws-spa.ts, in cli) takes each packet's send time, the observer
// (bench/aws-observe.ts, in srv, the real SDK) polls DescribeSecurityGroupRules every 2 ms plus a
// call's time and notes when each rule first shows and when it is gone; the grants' expiresAt come
// from `knockgate grants --all -o json`. All three are wall-clock ms on this host. Each daemon first
// opens one warm-up grant (another policy, an hour long) so the rounds measure the steady state. API calls: the
// emulator's request log over the whole round (start excluded), less the observer's own Describes.

import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Host, Topology } from '../../test/helpers/netns.js';
import { EC2_ENV, startEc2Emulator } from '../../test/helpers/standalone-harness.js';
import type { AwsSpaArgs } from '../aws-spa.js';
import type { ObserveArgs } from '../aws-observe.js';
import { startKnockgate, stopKnockgate } from '../lib/knockgate.js';
import { loadNow } from '../lib/kube.js';
import {
  KNOCKGATE,
  PROTECTED_PORT,
  ROOT,
  SPA_PORT,
  newKeys,
  type Figure,
  type RunOptions,
  type Scenario,
  type ScenarioResult,
  type SpaKeys,
} from '../lib/setup.js';
import { fmt, markdownTable, summarize, type Summary } from '../lib/stats.js';
import { withTopology } from '../lib/topology.js';

const NAME = 'aws';
const REGION = 'eu-west-1';
const AWS_SPA = join(ROOT, 'dist', 'bench', 'aws-spa.js');
const AWS_OBSERVE = join(ROOT, 'dist', 'bench', 'aws-observe.js');
const WARM_SPA_PORT = SPA_PORT + 1;
const EC2_EMULATOR = join(ROOT, 'dist', 'test', 'emulators', 'ec2', 'main.js');

interface Size {
  grants: number;
  /** Rounds of `grants` grants each (the single-grant point is repeated for a p99 worth reading). */
  rounds: number;
  grantSeconds: number;
}

const sizesFor = (opts: RunOptions): Size[] => [
  { grants: 1, rounds: opts.quick ? 3 : 10, grantSeconds: 2 },
  { grants: 40, rounds: 1, grantSeconds: 4 },
  ...(opts.quick ? [] : [{ grants: 400, rounds: 1, grantSeconds: 8 }]),
];

interface Row {
  grants: number;
  rounds: number;
  visibleMs: number[];
  revokedMs: number[];
  missing: number;
  visible: Summary;
  revoked: Summary;
  /** Daemon's calls per grant, by action. */
  perGrant: Record<string, number>;
}

const ACTIONS = [
  'AuthorizeSecurityGroupIngress',
  'RevokeSecurityGroupIngress',
  'DescribeSecurityGroupRules',
  'CreateTags',
];

function config(keys: SpaKeys, groupId: string, grantSeconds: number): string {
  return `apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: bench-aws}
spec:
  spa: {keySecretRef: {name: bench-keys}, port: "${SPA_PORT}/udp"}
  grant:
    ports: ["${PROTECTED_PORT}/tcp"]
    durationSeconds: ${grantSeconds}
    targets:
      node: {mode: None}
      awsSecurityGroups: [{groupId: ${groupId}, region: ${REGION}}]
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: bench-aws-warm-up}
spec:
  spa: {keySecretRef: {name: bench-keys}, port: "${WARM_SPA_PORT}/udp"}
  grant:
    ports: ["${PROTECTED_PORT}/tcp"]
    durationSeconds: 3600
    targets:
      node: {mode: None}
      awsSecurityGroups: [{groupId: ${groupId}, region: ${REGION}}]
---
apiVersion: v1
kind: Secret
metadata: {name: bench-keys}
stringData: {KEY_BASE64: "${keys.keyBase64}", HMAC_KEY_BASE64: "${keys.hmacKeyBase64}"}
`;
}

async function observe<T>(srv: Host, args: ObserveArgs): Promise<T> {
  const env = Object.entries(EC2_ENV).map(([k, v]) => `${k}=${v}`);
  const { stdout } = await srv.run('env', [...env, 'node', AWS_OBSERVE, JSON.stringify(args)], {
    timeoutMs: 120_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

/** `count` client addresses on cli's veth, in /24s of their own (10.T.60.x on). */
async function addSources(srv: Host, cli: Host, count: number): Promise<string[]> {
  const tag = srv.addr4['cli']!.split('.').slice(0, 2).join('.');
  const sources = Array.from(
    { length: count },
    (_, i) => `${tag}.${60 + Math.floor(i / 200)}.${10 + (i % 200)}`,
  );
  for (const s of sources) await cli.run('ip', ['addr', 'add', `${s}/16`, 'dev', cli.ifname['srv']!]);
  await srv.run('ip', ['addr', 'add', `${tag}.255.1/16`, 'dev', srv.ifname['cli']!]);
  return sources;
}

/**
 * One grant of an hour through the daemon before the measured ones, waited for until its rule
 * shows: the figures are the steady state, not the first EC2 call of a fresh process (the SDK's
 * lazy loading and a new connection: ~300 ms on this VM). It outlives the round, so its one
 * Authorize is before the counted window and it has no Revoke in it.
 */
async function warmUp(
  srv: Host,
  cli: Host,
  base: { url: string; region: string },
  groupId: string,
  source: string,
  target: string,
  keys: SpaKeys,
): Promise<void> {
  const spaArgs: AwsSpaArgs = {
    sources: [source],
    target,
    protectedPort: PROTECTED_PORT,
    spa: { port: WARM_SPA_PORT, ...keys },
  };
  await cli.run('node', [AWS_SPA, JSON.stringify(spaArgs)]);
  const seen = await observe<{ appearedAt: Record<string, number> }>(srv, {
    ...base,
    op: 'watch',
    groupId,
    cidrs: [`${source}/32`],
    untilAppeared: true,
    timeoutMs: 30_000,
  });
  if (seen.appearedAt[`${source}/32`] === undefined) throw new Error('the warm-up grant got no rule');
}

async function measure(net: Topology, opts: RunOptions): Promise<Row[]> {
  const srv = net.ns('srv');
  const cli = net.ns('cli');
  const iface = srv.ifname['cli']!;
  const target = srv.addr4['cli']!;
  const sizes = sizesFor(opts);
  // The last address opens the warm-up grant of each daemon.
  const pool = await addSources(srv, cli, Math.max(...sizes.map((s) => s.grants * s.rounds)) + 1);
  const warmSource = pool.at(-1)!;
  const { url, adminToken } = await startEc2Emulator(srv, ['--inbound-rule-limit', '1000'], EC2_EMULATOR);
  const keys = newKeys();
  const base = { url, region: REGION };
  const counts = async () =>
    (await observe<{ counts: Record<string, number> }>(srv, { ...base, op: 'requests', adminToken })).counts;
  const rows: Row[] = [];
  for (const size of sizes) {
    const { groupId } = await observe<{ groupId: string }>(srv, { ...base, op: 'create' });
    const kg = await startKnockgate(srv, opts.dir, iface, 'nftables', keys, opts.bufferBytes, {
      config: config(keys, groupId, size.grantSeconds),
      args: ['--cluster-id', 'bench', '--aws-endpoint', url],
      env: EC2_ENV,
    });
    const visibleMs: number[] = [];
    const revokedMs: number[] = [];
    let missing = 0;
    let observerCalls = 0;
    try {
      await warmUp(srv, cli, base, groupId, warmSource, target, keys);
    } catch (err) {
      await stopKnockgate(srv, kg);
      throw err;
    }
    const before = await counts();
    try {
      for (let round = 0; round < size.rounds; round++) {
        const sources = pool.slice(round * size.grants, (round + 1) * size.grants);
        const cidrs = sources.map((s) => `${s}/32`);
        const watcher = srv.spawn(
          'node',
          [
            AWS_OBSERVE,
            JSON.stringify({
              ...base,
              op: 'watch',
              groupId,
              cidrs,
              timeoutMs: size.grantSeconds * 1000 + 30_000,
            }),
          ],
          { env: { ...process.env, ...EC2_ENV } },
        );
        const lines = createInterface({ input: watcher.stdout! });
        const result = new Promise<string>((resolve) => {
          let last = '';
          lines.on('line', (l) => (last = l));
          watcher.once('exit', () => resolve(last));
        });
        await new Promise<void>((resolve) => lines.once('line', () => resolve()));
        const spaArgs: AwsSpaArgs = {
          sources,
          target,
          protectedPort: PROTECTED_PORT,
          spa: { port: SPA_PORT, ...keys },
        };
        const sent = JSON.parse((await cli.run('node', [AWS_SPA, JSON.stringify(spaArgs)])).stdout) as {
          sentAt: Record<string, number>;
        };
        const seen = JSON.parse(await result) as {
          appearedAt: Record<string, number>;
          goneAt: Record<string, number>;
          describeCalls: number;
        };
        observerCalls += seen.describeCalls;
        const { stdout } = await srv.run('node', [
          KNOCKGATE,
          'grants',
          '--state-dir',
          kg.stateDir,
          '--all',
          '--output',
          'json',
        ]);
        const ends = new Map(
          (JSON.parse(stdout) as { spec: { source: string; expiresAt: string } }[]).map((g) => [
            g.spec.source,
            Date.parse(g.spec.expiresAt),
          ]),
        );
        for (const s of sources) {
          const cidr = `${s}/32`;
          const appeared = seen.appearedAt[cidr];
          const gone = seen.goneAt[cidr];
          const end = ends.get(cidr);
          if (appeared === undefined || gone === undefined || end === undefined) {
            missing++;
            continue;
          }
          visibleMs.push(appeared - sent.sentAt[s]!);
          revokedMs.push(gone - end);
        }
      }
    } finally {
      await stopKnockgate(srv, kg);
    }
    const after = await counts();
    const total = size.grants * size.rounds;
    const perGrant: Record<string, number> = {};
    for (const a of ACTIONS) {
      const own = a === 'DescribeSecurityGroupRules' ? observerCalls : 0;
      perGrant[a] = ((after[a] ?? 0) - (before[a] ?? 0) - own) / total;
    }
    // The daemon's one listing at start (its first resync) happened before `before`: excluded.
    rows.push({
      grants: size.grants,
      rounds: size.rounds,
      visibleMs,
      revokedMs,
      missing,
      visible: summarize(visibleMs, missing),
      revoked: summarize(revokedMs, missing),
      perGrant,
    });
    console.error(
      `  ${size.grants} grants × ${size.rounds}: visible p50 ${fmt(rows.at(-1)!.visible.p50)} ms, revoked p50 ${fmt(rows.at(-1)!.revoked.p50)} ms after expiresAt, ${missing} missing`,
    );
  }
  return rows;
}

export const aws: Scenario = {
  name: NAME,
  description: 'SPA → security-group rule visible, expiry → revoked, EC2 calls per grant (standalone)',
  async run(opts: RunOptions): Promise<ScenarioResult> {
    console.error(
      `${NAME}: ${sizesFor(opts)
        .map((s) => `${s.grants}×${s.rounds}`)
        .join(', ')} grants`,
    );
    const loadAtStart = loadNow();
    const rows = await withTopology((net) => measure(net, opts));
    const load = `load average ${loadAtStart} at the start, ${loadNow()} at the end`;
    const daemon = 'knockgate standalone (security-group target, RegionSync)';
    const figure = (
      r: Row,
      name: string,
      unit: string,
      values: number[],
      s?: Summary,
      target?: string,
    ): Figure => ({
      scenario: NAME,
      daemon,
      name: `${name}, ${r.grants} grants at once`,
      unit,
      median: s ? s.p50 : values[0]!,
      p99: s ? s.p99 : values[0]!,
      runs: values.length,
      values,
      ...(target ? { target } : {}),
      ...(s ? { failures: r.missing } : {}),
    });
    const calls = (r: Row, a: string) => fmt(r.perGrant[a] ?? 0, 2);
    return {
      name: NAME,
      command: `npm run bench:aws${opts.quick ? ' -- --quick' : ''}`,
      markdown: [
        `### AWS security groups through knockgate standalone (N SPA packets at once from N sources → rule in DescribeSecurityGroupRules, polled every 2 ms + a call; grant expiresAt → rule gone; EC2 emulator on loopback, no throttling; ${load})`,
        '',
        markdownTable(
          [
            'grants at once',
            'rounds',
            'missing',
            'SPA → rule visible p50 ms',
            'p99 ms',
            'expiresAt → revoked p50 ms',
            'p99 ms',
            'Authorize / grant',
            'Revoke / grant',
            'Describe / grant',
            'CreateTags / grant',
          ],
          rows.map((r) => [
            String(r.grants),
            String(r.rounds),
            String(r.missing),
            fmt(r.visible.p50),
            fmt(r.visible.p99),
            fmt(r.revoked.p50),
            fmt(r.revoked.p99),
            calls(r, 'AuthorizeSecurityGroupIngress'),
            calls(r, 'RevokeSecurityGroupIngress'),
            calls(r, 'DescribeSecurityGroupRules'),
            calls(r, 'CreateTags'),
          ]),
        ),
      ].join('\n'),
      figures: rows.flatMap((r) => [
        figure(r, 'SPA packet sent → rule visible', 'ms', r.visibleMs, r.visible),
        figure(r, 'grant expiresAt → rule revoked', 'ms', r.revokedMs, r.revoked),
        figure(
          r,
          'AuthorizeSecurityGroupIngress per grant',
          'calls',
          [r.perGrant.AuthorizeSecurityGroupIngress!],
          undefined,
          '≤ 1',
        ),
        figure(
          r,
          'RevokeSecurityGroupIngress per grant',
          'calls',
          [r.perGrant.RevokeSecurityGroupIngress!],
          undefined,
          '≤ 1',
        ),
        figure(
          r,
          'DescribeSecurityGroupRules per grant',
          'calls',
          [r.perGrant.DescribeSecurityGroupRules!],
          undefined,
          '0',
        ),
        figure(r, 'CreateTags per grant', 'calls', [r.perGrant.CreateTags!]),
      ]),
    };
  },
};
