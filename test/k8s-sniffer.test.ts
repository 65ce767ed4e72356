// `knockgate sniffer` (controller/sniffer/role.ts) against the Kubernetes API emulator, authenticated
// as a sniffer service account with only the sniffer's RBAC. Knocks and SPA packets are injected
// through the engine (handlePacket) as the capture would deliver them: grants with an ownerReference
// and resolved targets, a replay refused on a second node through its ReplayClaim, extend and
// replace-after-Expired, a rotated key used without a restart, a policy not matching the node
// ignored (and picked up when it changes), the caps, and the API stopped: nothing opened, said so.

import { Writable } from 'node:stream';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../api/clock.js';
import { createLogger } from '../api/log.js';
import type { AccessGrant, KnockPolicy, ReplayClaim } from '../api/types.js';
import { createSnifferMetrics, type SnifferMetrics } from '../controller/sniffer/metrics.js';
import { SnifferRole, type Outcome, type SnifferRoleOptions } from '../controller/sniffer/role.js';
import type { Sniffer, SnifferOptions } from '../sniffer/capture/sniffer.js';
import { CaptureError } from '../sniffer/capture/capture.js';
import type { InboundPacket } from '../sniffer/decision.js';
import { encodeSpa } from '../sniffer/spa/encode.js';
import { MARKER_READ_RULE } from '../controller/uninstall/rbac.js';
import { UNINSTALL_MARKER } from '../controller/uninstall/marker-name.js';
import { startEmulatedCluster, type EmulatedCluster } from './helpers/kube-store-emulator.js';
import { waitFor } from './helpers/wait.js';

const NS = 'knockgate';
const SNIFFER_USER = 'system:serviceaccount:knockgate:sniffer';
const KEYS_1 = { key: Buffer.alloc(32, 1), hmacKey: Buffer.alloc(64, 2) };
const KEYS_2 = { key: Buffer.alloc(32, 3), hmacKey: Buffer.alloc(64, 4) };
const SG = { groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' };
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let cluster: EmulatedCluster;
let core: CoreV1Api;
let custom: CustomObjectsApi;
const roles: SnifferRole[] = [];

function policy(name: string, spec: KnockPolicy['spec']): KnockPolicy {
  return { apiVersion: 'knockgate.io/v1alpha1', kind: 'KnockPolicy', metadata: { name }, spec };
}

function knockPolicy(name: string, ports: number[], extra: Partial<KnockPolicy['spec']> = {}): KnockPolicy {
  return policy(name, {
    knock: { sequence: ports.map((p) => `${p}/tcp`), tcpFlags: ['syn'] },
    grant: { ports: ['22/tcp'], durationSeconds: 60 },
    nodeSelector: { role: 'edge' },
    ...extra,
  });
}

function secretData(keys: typeof KEYS_1): Record<string, string> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return {
    KEY_BASE64: b64(keys.key.toString('base64')),
    HMAC_KEY_BASE64: b64(keys.hmacKey.toString('base64')),
  };
}

const plural = (p: string) => ({ group: 'knockgate.io', version: 'v1alpha1', plural: p });

async function createPolicy(p: KnockPolicy): Promise<void> {
  await custom.createClusterCustomObject({ ...plural('knockpolicies'), body: p });
}

async function serverGrant(name: string): Promise<AccessGrant | undefined> {
  try {
    return (await custom.getClusterCustomObject({ ...plural('accessgrants'), name })) as AccessGrant;
  } catch {
    return undefined;
  }
}

async function serverGrants(): Promise<AccessGrant[]> {
  return ((await custom.listClusterCustomObject(plural('accessgrants'))) as { items: AccessGrant[] }).items;
}

function tcp(src: string, dstPort: number): InboundPacket {
  return {
    src,
    dst: '10.9.0.1',
    family: 4,
    proto: 'tcp',
    srcPort: 40000,
    dstPort,
    tcpFlags: 0x02,
    payload: Buffer.alloc(0),
    at: Date.now(),
  };
}

function spa(src: string, keys: typeof KEYS_1): InboundPacket {
  const text = encodeSpa(
    {
      allowIp: src,
      access: ['tcp/22'],
      username: 'alice',
      timestamp: Math.floor(Date.now() / 1000),
    },
    { key: keys.key, hmacKey: keys.hmacKey },
  );
  return {
    src,
    dst: '10.9.0.1',
    family: 4,
    proto: 'udp',
    srcPort: 40001,
    dstPort: 62201,
    tcpFlags: 0,
    payload: Buffer.from(text),
    at: Date.now(),
  };
}

async function knock(role: SnifferRole, src: string, ports: number[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const port of ports) outcomes.push(...(await role.handlePacket(tcp(src, port))));
  return outcomes;
}

/** A log sink the test can read (JSON lines). */
function memoryLog(): { lines: () => Record<string, unknown>[]; destination: Writable } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    destination,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function startRole(
  node: string,
  extra: Partial<SnifferRoleOptions> = {},
): Promise<{ role: SnifferRole; metrics: SnifferMetrics; log: ReturnType<typeof memoryLog> }> {
  const log = memoryLog();
  const metrics = createSnifferMetrics(undefined, false);
  const role = new SnifferRole({
    kubeConfig: cluster.kubeConfigFor(SNIFFER_USER),
    namespace: NS,
    node,
    clock: systemClock,
    logger: createLogger({ level: 'info', destination: log.destination }),
    metrics,
    requestAttempts: 2,
    requestBackoffInitialMs: 50,
    requestBackoffMaxMs: 200,
    watchBackoffInitialMs: 100,
    watchBackoffMaxMs: 500,
    healthIntervalMs: 200,
    ...extra,
  });
  roles.push(role);
  await role.start();
  return { role, metrics, log };
}

async function metricValue(metrics: SnifferMetrics, name: string, labels: Record<string, string> = {}) {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { value: number; labels: Record<string, string | number> }[];
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

beforeAll(async () => {
  cluster = await startEmulatedCluster({
    namespaces: [NS],
    users: [
      {
        name: 'admin',
        token: 'admin-token-0123456789',
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
      },
      {
        // The sniffer's RBAC (DESIGN.md, trust boundaries): read policies, nodes and the release
        // namespace's Secrets; create claims; create and extend (get, patch, replace) grants.
        name: SNIFFER_USER,
        token: 'sniffer-token-0123456789',
        rules: [
          { apiGroups: ['knockgate.io'], resources: ['knockpolicies'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: ['knockgate.io'], resources: ['replayclaims'], verbs: ['create', 'get', 'delete'] },
          {
            apiGroups: ['knockgate.io'],
            resources: ['accessgrants'],
            verbs: ['create', 'get', 'patch', 'delete'],
          },
          { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'], namespaces: [NS] },
          // The uninstall marker, by name (controller/uninstall/rbac.ts MARKER_READ_RULE).
          { ...MARKER_READ_RULE, namespaces: [NS] },
        ],
      },
    ],
  });
  core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  const nodes: [string, Record<string, string>][] = [
    ['node-a', { role: 'edge', zone: 'a' }],
    ['node-b', { role: 'edge', zone: 'b' }],
    ['node-c', { role: 'db' }],
  ];
  for (const [name, labels] of nodes)
    await core.createNode({
      body: { metadata: { name, labels }, spec: name === 'node-b' ? { podCIDR: '10.244.1.0/24' } : {} },
    });
  await core.patchNodeStatus(
    { name: 'node-b', body: { status: { addresses: [{ type: 'InternalIP', address: '10.1.0.200' }] } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  await core.createNamespacedSecret({
    namespace: NS,
    body: { metadata: { name: 'ssh-spa' }, data: secretData(KEYS_1) },
  });
  await createPolicy(knockPolicy('knock-ssh', [7000, 8000, 9000]));
  await createPolicy(
    knockPolicy('knock-none', [7100, 8100, 9100], {
      grant: { ports: ['22/tcp'], durationSeconds: 60, targets: { node: { mode: 'None' } } },
    }),
  );
  await createPolicy(knockPolicy('db-only', [7200, 8200, 9200], { nodeSelector: { role: 'db' } }));
  await createPolicy(
    policy('spa-ssh', {
      spa: { keySecretRef: { name: 'ssh-spa' }, port: '62201/udp' },
      grant: {
        ports: ['22/tcp'],
        durationSeconds: 60,
        targets: { node: { mode: 'Selector', nodeSelector: { role: 'edge' } }, awsSecurityGroups: [SG] },
      },
    }),
  );
  await createPolicy(knockPolicy('capped', [7300, 8300, 9300]));
});

afterAll(async () => {
  for (const role of roles) await role.stop();
  await cluster?.stop();
});

describe('knockgate sniffer on Kubernetes', () => {
  let a: Awaited<ReturnType<typeof startRole>>;
  let b: Awaited<ReturnType<typeof startRole>>;

  it('runs the policies whose nodeSelector matches its Node, and ignores the others', async () => {
    a = await startRole('node-a');
    b = await startRole('node-b');
    expect(a.role.activePolicies().sort()).toEqual(['capped', 'knock-none', 'knock-ssh', 'spa-ssh']);
    expect(a.role.policyProblems()).toEqual([]);
    expect(a.role.ports()).not.toContain('7200/tcp');
    // A knock on a port only the db policy listens on reaches no handler here.
    expect(await knock(a.role, '10.1.0.9', [7200, 8200, 9200])).toEqual([]);
    expect((await serverGrants()).filter((g) => g.spec.policyRef?.name === 'db-only')).toEqual([]);
  });

  it('a knock creates a grant with an ownerReference to its policy and this node as target', async () => {
    const outcomes = await knock(a.role, '10.1.0.5', [7000, 8000, 9000]);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ kind: 'granted', extended: false });
    const grant = (await serverGrant('knock-ssh-0a010005-node-a'))!;
    const owner = (await custom.getClusterCustomObject({
      ...plural('knockpolicies'),
      name: 'knock-ssh',
    })) as KnockPolicy;
    expect(grant.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'knockgate.io/v1alpha1',
        kind: 'KnockPolicy',
        name: 'knock-ssh',
        uid: owner.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(grant.spec).toMatchObject({
      source: '10.1.0.5/32',
      ports: ['22/tcp'],
      method: 'knock',
      observedBy: 'node-a',
      policyRef: { name: 'knock-ssh' },
      targets: { nodes: ['node-a'] },
    });
    // targets.node.mode None: a grant that opens no node.
    await knock(a.role, '10.1.0.5', [7100, 8100, 9100]);
    expect((await serverGrant('knock-none-0a010005'))!.spec.targets).toEqual({ nodes: [] });
    expect(await metricValue(a.metrics, 'knockgate_sniffer_grants_total', { extended: 'false' })).toBe(2);
    // Packets by result: two sequences of three, each two steps and one that completes it.
    const packets = (result: string) => metricValue(a.metrics, 'knockgate_sniffer_packets_total', { result });
    expect(await packets('knock-step')).toBe(4);
    expect(await packets('knock-complete')).toBe(2);
    expect(await packets('knock-refused')).toBe(0);
  });

  it('never grants a node address or a pod address', async () => {
    await waitFor(
      async () => (await core.readNodeStatus({ name: 'node-b' })).status?.addresses?.length === 1,
      {
        what: 'node-b status',
      },
    );
    for (const src of ['10.1.0.200', '10.244.1.7']) {
      const [outcome] = await knock(a.role, src, [7000, 8000, 9000]);
      expect(outcome).toMatchObject({ kind: 'refused', reason: 'never-grant' });
    }
    expect((await serverGrants()).filter((g) => /^10\.(1\.0\.200|244\.)/.test(g.spec.source))).toEqual([]);
  });

  it('a repeated knock extends the live grant, and after the controller marks it Expired makes a new grant under the next generation of the name', async () => {
    const before = (await serverGrant('knock-ssh-0a010005-node-a'))!;
    await new Promise((r) => setTimeout(r, 1100));
    const [again] = await knock(a.role, '10.1.0.5', [7000, 8000, 9000]);
    expect(again).toMatchObject({ kind: 'granted', extended: true });
    const extended = (await serverGrant('knock-ssh-0a010005-node-a'))!;
    expect(extended.metadata.uid).toBe(before.metadata.uid);
    expect(Date.parse(extended.spec.expiresAt)).toBeGreaterThan(Date.parse(before.spec.expiresAt));

    // The controller marks it Expired; the next knock makes a new grant (no 409 lock-out) under the
    // name's next generation, and leaves the history entry for the controller's retention.
    await custom.patchClusterCustomObjectStatus(
      {
        ...plural('accessgrants'),
        name: 'knock-ssh-0a010005-node-a',
        body: { status: { phase: 'Expired' } },
      },
      MERGE,
    );
    const [replaced] = await knock(a.role, '10.1.0.5', [7000, 8000, 9000]);
    expect(replaced).toMatchObject({ kind: 'granted' });
    expect((replaced as { grant: AccessGrant }).grant.metadata.name).toBe('knock-ssh-0a010005-node-a.1');
    const fresh = (await serverGrant('knock-ssh-0a010005-node-a.1'))!;
    expect(fresh.metadata.uid).not.toBe(before.metadata.uid);
    expect(fresh.status?.phase).toBeUndefined();
    expect((await serverGrant('knock-ssh-0a010005-node-a'))!.status?.phase).toBe('Expired');
    // The next knock extends the new grant.
    await new Promise((r) => setTimeout(r, 1100));
    const [third] = await knock(a.role, '10.1.0.5', [7000, 8000, 9000]);
    expect(third).toMatchObject({ kind: 'granted', extended: true });
    expect((third as { grant: AccessGrant }).grant.metadata.uid).toBe(fresh.metadata.uid);
  });

  it('a knock on another node makes that node its own grant (Local mode: the node is in the name)', async () => {
    const [outcome] = await knock(b.role, '10.1.0.5', [7000, 8000, 9000]);
    expect(outcome).toMatchObject({ kind: 'granted', extended: false });
    const onB = (await serverGrant('knock-ssh-0a010005-node-b'))!;
    expect(onB.spec).toMatchObject({ observedBy: 'node-b', targets: { nodes: ['node-b'] } });
    expect((await serverGrant('knock-ssh-0a010005-node-a'))!.spec.targets).toEqual({ nodes: ['node-a'] });
    expect(b.log.lines().find((l) => l.event === 'not-targeted')).toBeUndefined();
  });

  it('an SPA packet claims its ReplayClaim, then creates a grant for the Selector nodes and SGs', async () => {
    const packet = spa('10.1.0.7', KEYS_1);
    const [outcome] = await a.role.handlePacket(packet);
    expect(outcome).toMatchObject({ kind: 'granted', extended: false });
    const grant = (outcome as { grant: AccessGrant }).grant;
    expect(grant.metadata.name).toMatch(/^spa-[0-9a-f]{16}$/);
    expect(grant.spec).toMatchObject({
      source: '10.1.0.7/32',
      method: 'spa',
      user: 'alice',
      targets: { nodes: ['node-a', 'node-b'], awsSecurityGroups: [SG] },
    });
    expect(grant.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'KnockPolicy', name: 'spa-ssh' });
    const claims = (
      (await custom.listClusterCustomObject(plural('replayclaims'))) as { items: ReplayClaim[] }
    ).items;
    expect(claims).toHaveLength(1);
    expect(claims[0].spec).toMatchObject({ claimedBy: 'node-a', policyRef: { name: 'spa-ssh' } });

    // The same packet captured and sent to the other node: its claim is a 409, refused.
    const [onB] = await b.role.handlePacket({ ...packet, at: Date.now() });
    expect(onB).toMatchObject({ kind: 'refused', reason: 'replay' });
    expect((onB as { message: string }).message).toContain('ReplayClaim exists');
    // And again on the first node (its own memory answers, no API call).
    const [onA] = await a.role.handlePacket({ ...packet, at: Date.now() });
    expect(onA).toMatchObject({ kind: 'refused', reason: 'replay' });
    expect(await metricValue(b.metrics, 'knockgate_sniffer_refusals_total', { reason: 'replay' })).toBe(1);
    // Packets by result: accepted once (its grant written); the replays are refused, on either node.
    const packets = (m: SnifferMetrics, result: string) =>
      metricValue(m, 'knockgate_sniffer_packets_total', { result });
    expect(await packets(a.metrics, 'spa-accepted')).toBe(1);
    expect(await packets(a.metrics, 'spa-refused')).toBe(1);
    expect(await packets(b.metrics, 'spa-accepted')).toBe(0);
    expect(await packets(b.metrics, 'spa-refused')).toBe(1);
    // Deleting the grant does not make the packet usable again.
    await custom.deleteClusterCustomObject({ ...plural('accessgrants'), name: grant.metadata.name });
    const [afterDelete] = await b.role.handlePacket({ ...packet, at: Date.now() });
    expect(afterDelete).toMatchObject({ kind: 'refused', reason: 'replay' });
    expect(await serverGrant(grant.metadata.name)).toBeUndefined();
  });

  it('a rotated key is used without a restart; the old key is refused', async () => {
    await core.replaceNamespacedSecret({
      name: 'ssh-spa',
      namespace: NS,
      body: { metadata: { name: 'ssh-spa' }, data: secretData(KEYS_2) },
    });
    await waitFor(async () => (await a.role.handlePacket(spa('10.1.0.8', KEYS_2)))[0]?.kind === 'granted', {
      timeoutMs: 15_000,
      what: 'a packet with the new key opens',
    });
    const [old] = await a.role.handlePacket(spa('10.1.0.8', KEYS_1));
    expect(old).toMatchObject({ kind: 'refused', policy: 'spa-ssh' });
    expect((old as { reason: string }).reason).toMatch(/hmac/);
    expect(a.log.lines().some((l) => l.event === 'keys-changed' && l.policy === 'spa-ssh')).toBe(true);
    // Keys never reach the logs.
    const text = JSON.stringify(a.log.lines());
    for (const k of [KEYS_1, KEYS_2])
      for (const v of [k.key, k.hmacKey]) expect(text).not.toContain(v.toString('base64'));
    // A Secret that is gone: the policy stops, with one clear line, and comes back with it.
    await core.deleteNamespacedSecret({ name: 'ssh-spa', namespace: NS });
    await waitFor(() => !a.role.activePolicies().includes('spa-ssh'), {
      timeoutMs: 15_000,
      what: 'spa-ssh out',
    });
    expect(a.role.policyProblems().join('\n')).toContain(`Secret ${NS}/ssh-spa not found`);
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'ssh-spa' }, data: secretData(KEYS_2) },
    });
    await waitFor(() => a.role.activePolicies().includes('spa-ssh'), {
      timeoutMs: 15_000,
      what: 'spa-ssh back',
    });
  });

  it('picks up a policy whose nodeSelector changes to match this node', async () => {
    await custom.patchClusterCustomObject(
      {
        ...plural('knockpolicies'),
        name: 'db-only',
        body: { spec: { nodeSelector: { role: null, zone: 'a' } } },
      },
      MERGE,
    );
    await waitFor(() => a.role.activePolicies().includes('db-only'), {
      timeoutMs: 15_000,
      what: 'db-only on node-a',
    });
    await waitFor(() => !b.role.activePolicies().includes('db-only') && b.role.activePolicies().length > 0, {
      timeoutMs: 5_000,
      what: 'node-b unchanged',
    });
    const [granted] = await knock(a.role, '10.1.0.10', [7200, 8200, 9200]);
    expect(granted).toMatchObject({ kind: 'granted' });
    expect(await knock(b.role, '10.1.0.10', [7200, 8200, 9200])).toEqual([]);
  });

  it('restarts the capture when a policy names another interface; a capture error is logged', async () => {
    const starts: (readonly string[])[] = [];
    let refreshes = 0;
    let closes = 0;
    const fakeStart = (o: SnifferOptions): Sniffer => {
      const wanted = o.interfaces ?? [];
      if (wanted.includes('kgbad0')) throw new Error('interface kgbad0 does not exist');
      starts.push(wanted);
      return {
        interfaces: () => wanted,
        filters: () => ({}),
        refresh: () => void refreshes++,
        drops: () => [],
        close: () => void closes++,
      };
    };
    const d = await startRole('node-a', { startSniffer: fakeStart });
    expect(starts).toEqual([[]]); // no policy names an interface: the default route
    expect(d.role.notReady()).toBeUndefined(); // /readyz: listed, capturing
    await custom.patchClusterCustomObject(
      { ...plural('knockpolicies'), name: 'knock-none', body: { spec: { interface: 'kgbad0' } } },
      MERGE,
    );
    await waitFor(() => d.log.lines().some((l) => l.event === 'capture-error'), { what: 'capture error' });
    expect(d.log.lines().find((l) => l.event === 'capture-error')?.msg).toBe(
      'capture: interface kgbad0 does not exist',
    );
    expect(d.role.notReady()).toMatch(
      /^capture is not open for \d+ policies: interface kgbad0 does not exist$/,
    );
    await custom.patchClusterCustomObject(
      { ...plural('knockpolicies'), name: 'knock-none', body: { spec: { interface: null } } },
      MERGE,
    );
    await waitFor(() => starts.length === 2, { what: 'capture reopened' });
    expect(starts[1]).toEqual([]);
    expect(closes).toBe(1);
    expect(d.role.notReady()).toBeUndefined();
    await d.role.stop();
    expect(closes).toBe(2);
    expect(d.role.notReady()).toBe('stopping');
  });

  it('stop() (SIGTERM) closes the capture first, then lets a decision in flight finish its grant', async () => {
    let closes = 0;
    const fakeStart = (): Sniffer => ({
      interfaces: () => ['eth9'],
      filters: () => ({}),
      refresh: () => undefined,
      drops: () => [],
      close: () => void closes++,
    });
    const d = await startRole('node-a', { startSniffer: fakeStart });
    await knock(d.role, '10.1.0.77', [7000, 8000]);
    const last = d.role.handlePacket(tcp('10.1.0.77', 9000)); // the API write is now in flight
    const stopping = d.role.stop();
    expect(closes).toBe(1); // no new packet is taken while it finishes
    expect(d.role.notReady()).toBe('stopping');
    await stopping;
    expect(await last).toMatchObject([{ kind: 'granted', extended: false }]);
    expect(await serverGrant('knock-ssh-0a01004d-node-a')).toBeDefined();
  });

  it('an open capture that stops makes it not ready; the health check reopens it', async () => {
    let opened: SnifferOptions | undefined;
    let starts = 0;
    let closes = 0;
    let failNext = false;
    const fakeStart = (o: SnifferOptions): Sniffer => {
      if (failNext) throw new Error('interface eth9 has no address to capture packets for');
      starts++;
      opened = o;
      return {
        interfaces: () => ['eth9'],
        filters: () => ({}),
        refresh: () => undefined,
        drops: () => [],
        close: () => void closes++,
      };
    };
    const d = await startRole('node-a', { startSniffer: fakeStart, healthIntervalMs: 100 });
    expect(d.role.notReady()).toBeUndefined();
    failNext = true;
    opened!.onCaptureError!(new CaptureError('capture on eth9 stopped: the interface went down'));
    expect(d.role.notReady()).toMatch(
      /^capture is not open for \d+ policies: capture on eth9 stopped: the interface went down$/,
    );
    await waitFor(() => closes === 1, { what: 'the stopped capture closed' });
    // Retried at each health check; the failed reopen is the reason now, logged once.
    await waitFor(() => /has no address/.test(d.role.notReady() ?? ''), { what: 'the retry failed' });
    await new Promise((r) => setTimeout(r, 350));
    expect(
      d.log
        .lines()
        .filter((l) => l.event === 'capture-error')
        .map((l) => l.msg),
    ).toEqual([
      'capture: capture on eth9 stopped: the interface went down',
      'capture: interface eth9 has no address to capture packets for',
    ]);
    failNext = false;
    await waitFor(() => d.role.notReady() === undefined, { what: 'reopened and ready' });
    expect(starts).toBe(2);
    expect(d.log.lines().some((l) => l.event === 'capture-open')).toBe(true);
  });

  it('caps live grants per policy and grant writes per second, with a log line and a metric', async () => {
    const c = await startRole('node-a', { maxLiveGrantsPerPolicy: 2, grantsPerSecond: 0.01, grantsBurst: 3 });
    const seq = [7300, 8300, 9300];
    expect(await knock(c.role, '10.3.0.1', seq)).toMatchObject([{ kind: 'granted' }]);
    expect(await knock(c.role, '10.3.0.2', seq)).toMatchObject([{ kind: 'granted' }]);
    const [third] = await knock(c.role, '10.3.0.3', seq);
    expect(third).toMatchObject({ kind: 'refused', reason: 'max-grants-per-policy' });
    expect(await serverGrant('capped-0a030003')).toBeUndefined();
    // Extending a grant it holds is not capped by the count, but every write takes a token.
    expect(await knock(c.role, '10.3.0.1', seq)).toMatchObject([{ kind: 'granted', extended: true }]);
    const [limited] = await knock(c.role, '10.3.0.2', seq);
    expect(limited).toMatchObject({ kind: 'refused', reason: 'rate-limited' });
    expect(
      await metricValue(c.metrics, 'knockgate_sniffer_capped_total', { cap: 'max-grants-per-policy' }),
    ).toBe(1);
    expect(await metricValue(c.metrics, 'knockgate_sniffer_capped_total', { cap: 'rate-limited' })).toBe(1);
    const reasons = c.log
      .lines()
      .filter((l) => l.event === 'refuse')
      .map((l) => l.reason);
    expect(reasons).toEqual(['max-grants-per-policy', 'rate-limited']);

    // Deleting the policy: no sniffer runs it any more, and its grants go with it (ownerReference).
    await custom.deleteClusterCustomObject({ ...plural('knockpolicies'), name: 'capped' });
    await waitFor(
      () => !c.role.activePolicies().includes('capped') && !a.role.activePolicies().includes('capped'),
      {
        what: 'capped gone from the sniffers',
      },
    );
    await waitFor(async () => (await serverGrants()).every((g) => g.spec.policyRef?.name !== 'capped'), {
      what: 'the grants of capped garbage-collected',
    });
    expect(await knock(c.role, '10.3.0.1', seq)).toEqual([]);
  });

  it('with the API stopped it opens nothing and says so; it writes again once the API is back', async () => {
    const stopped = cluster.server.faults.stopFor(6_000);
    await new Promise((r) => setTimeout(r, 200));
    const [outcome] = await knock(a.role, '10.4.0.1', [7000, 8000, 9000]);
    expect(outcome).toMatchObject({ kind: 'refused', reason: 'api-unavailable' });
    const spaOutcome = (await a.role.handlePacket(spa('10.4.0.2', KEYS_2)))[0];
    expect(spaOutcome).toMatchObject({ kind: 'refused', reason: 'api-unavailable' });
    const line = a.log.lines().find((l) => l.event === 'refuse' && l.reason === 'api-unavailable');
    expect(line?.msg).toMatch(/Kubernetes API unavailable, nothing opened for 10\.4\.0\.1\/32/);
    expect(await metricValue(a.metrics, 'knockgate_sniffer_api_up')).toBe(0);
    expect(await metricValue(a.metrics, 'knockgate_sniffer_api_errors_total')).toBeGreaterThanOrEqual(2);
    await waitFor(async () => (await metricValue(a.metrics, 'knockgate_sniffer_watch_up')) === 0, {
      timeoutMs: 3_000,
      what: 'watch_up 0',
    });
    expect(a.log.lines().find((l) => l.event === 'watch-down')?.msg).toMatch(
      /^cannot watch the Kubernetes API \(.+\): running the last known policies; grants that cannot be written open nothing$/,
    );
    // Lost sync: /readyz 503 with why (the last known policies still run).
    expect(a.role.notReady()).toMatch(
      /^watching policies, nodes and secrets fails \(.+\): running the last known policies$/,
    );
    await stopped;
    expect(await serverGrant('knock-ssh-0a040001-node-a')).toBeUndefined();
    await waitFor(async () => (await knock(a.role, '10.4.0.1', [7000, 8000, 9000]))[0]?.kind === 'granted', {
      timeoutMs: 20_000,
      what: 'a knock opens again after the API is back',
    });
    expect(await metricValue(a.metrics, 'knockgate_sniffer_api_up')).toBe(1);
    expect(a.log.lines().some((l) => l.event === 'api-up')).toBe(true);
    await waitFor(async () => (await metricValue(a.metrics, 'knockgate_sniffer_watch_up')) === 1, {
      timeoutMs: 15_000,
      what: 'watch_up 1',
    });
    expect(a.role.notReady()).toBeUndefined();
    expect(a.log.lines().filter((l) => l.event === 'watch-down')).toHaveLength(1);
  });

  // Last in this block: it latches node-a's sniffer for good.
  it('once the uninstall marker exists it writes no grant, and stays so when the marker goes', async () => {
    expect(a.role.uninstalling).toBe(false);
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: UNINSTALL_MARKER } } });
    await waitFor(() => a.role.uninstalling, { timeoutMs: 10_000, what: 'the sniffer latched' });
    expect(a.log.lines().some((l) => l.event === 'uninstalling')).toBe(true);
    const [outcome] = await knock(a.role, '10.5.0.1', [7000, 8000, 9000]);
    expect(outcome).toMatchObject({ kind: 'refused', reason: 'uninstalling' });
    expect(await metricValue(a.metrics, 'knockgate_sniffer_refusals_total', { reason: 'uninstalling' })).toBe(
      1,
    );
    await core.deleteNamespacedConfigMap({ namespace: NS, name: UNINSTALL_MARKER });
    await new Promise((r) => setTimeout(r, 500));
    const [again] = await knock(a.role, '10.5.0.1', [7000, 8000, 9000]);
    expect(again).toMatchObject({ kind: 'refused', reason: 'uninstalling' });
    expect(await serverGrant('knock-ssh-0a050001-node-a')).toBeUndefined();
  });
});

describe('knockgate sniffer without an API', () => {
  it('does not start when the API never answers, and says why in one line', async () => {
    const gone = await startEmulatedCluster();
    const kubeConfig = gone.kubeConfig;
    await gone.stop();
    const log = memoryLog();
    const role = new SnifferRole({
      kubeConfig,
      namespace: NS,
      node: 'node-a',
      clock: systemClock,
      logger: createLogger({ level: 'info', destination: log.destination }),
      initialSyncTimeoutMs: 1_500,
      watchBackoffInitialMs: 100,
      watchBackoffMaxMs: 300,
    });
    const err = (await role.start().catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(
      /^cannot read policies, nodes and secrets from the Kubernetes API: list [a-z ]+: no complete list after 2 s \(.*unreachable.*\)$/,
    );
    expect(err.message).not.toContain('\n');
    expect(role.activePolicies()).toEqual([]);
  });
});
