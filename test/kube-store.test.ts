// KubeGrantStore and KubeReplayStore against the Kubernetes API emulator (in-process, real HTTPS,
// real @kubernetes/client-node): the same contract as the local stores' tests (create, extend,
// a new grant after expiry — here under the next generation of the name, the history entry kept —,
// updateStatus, delete, watch order), plus what only a shared API adds: two
// stores ("two nodes") racing on one grant or one claim, the server's 422 with a field path, 403
// without RBAC, and the KubeConfig factory (file, context, in-cluster service account).

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import { AlreadyExistsError, NotFoundError, type GrantEvent } from '../api/store.js';
import type { AccessGrant, ReplayClaim } from '../api/types.js';
import { buildGrant } from '../controller/grants/build.js';
import { GrantValidationError } from '../controller/grants/validate.js';
import { KubeConfigError, loadKubeConfig } from '../controller/kube/client.js';
import { KubeApiError } from '../controller/kube/errors.js';
import { KubeGrantStore, type KubeGrantStoreOptions } from '../controller/kube/grant-store.js';
import { baseName, GenerationsExhaustedError, generationName } from '../controller/kube/generations.js';
import { KubeReplayStore } from '../controller/kube/replay-store.js';
import { startEmulatedCluster, type EmulatedCluster } from './helpers/kube-store-emulator.js';

let cluster: EmulatedCluster;
let clock: FakeClock;
const closers: (() => Promise<void>)[] = [];

beforeEach(async () => {
  cluster = await startEmulatedCluster();
  // Grant times (expiresAt) on a fake clock; the stores' own timers run on real time here (the
  // fault tests put them on the fake clock where timing matters).
  clock = new FakeClock(Date.now());
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await cluster.stop();
});

function openStore(opts: Partial<KubeGrantStoreOptions> = {}): KubeGrantStore {
  const store = new KubeGrantStore({ kubeConfig: cluster.kubeConfig, ...opts });
  closers.push(() => store.close());
  return store;
}

function knockGrant(source: string, seconds = 60, ports = ['22/tcp']): AccessGrant {
  return buildGrant(
    { kind: 'grant', policy: 'ssh', method: 'knock', source, ports, durationSeconds: seconds },
    { clock, node: 'node-a' },
  );
}

/** The grant as the API server holds it right now (not through any store's cache). */
function onServer(name: string): AccessGrant | undefined {
  const type = cluster.server.api.type('knockgate.io', 'v1alpha1', 'accessgrants')!;
  try {
    return cluster.server.api.get(type, undefined, name) as unknown as AccessGrant;
  } catch {
    return undefined;
  }
}

describe('KubeGrantStore contract', () => {
  it('creates, refuses a second create of the same name, and reads back', async () => {
    const store = openStore();
    const created = await store.create(knockGrant('10.0.0.2'));
    expect(created.metadata.name).toBe('ssh-0a000002');
    expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata.resourceVersion).toMatch(/^\d+$/);
    await expect(store.create(knockGrant('10.0.0.2'))).rejects.toBeInstanceOf(AlreadyExistsError);
    expect(await store.get('ssh-0a000002')).toEqual(created);
    expect((await store.list()).map((g) => g.metadata.name)).toEqual(['ssh-0a000002']);
    expect(await store.get('ssh-0a000003')).toBeUndefined();
    // After the informer is running, a create is visible to get() as soon as it resolves.
    const second = await store.create(knockGrant('10.0.0.3'));
    expect(await store.get('ssh-0a000003')).toEqual(second);
  });

  it('lets exactly one of two concurrent creates of one name win, also from two stores', async () => {
    const a = openStore();
    const b = openStore();
    const results = await Promise.allSettled([
      a.create(knockGrant('10.0.0.2')),
      b.create(knockGrant('10.0.0.2')),
      a.create(knockGrant('10.0.0.2')),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected', 'rejected']);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyExistsError);
  });

  it('ignores status on create, as the status subresource does', async () => {
    const store = openStore();
    const grant = { ...knockGrant('10.0.0.2'), status: { phase: 'Active' as const } };
    expect((await store.create(grant)).status).toBeUndefined();
    expect(onServer('ssh-0a000002')?.status).toBeUndefined();
  });

  it('rejects a malformed grant in one line naming it and the field, before sending anything', async () => {
    const store = openStore();
    const bad = knockGrant('10.0.0.2');
    bad.spec.source = '10.0.0.0/24';
    await expect(store.create(bad)).rejects.toThrow(
      'accessgrant ssh-0a000002: spec.source "10.0.0.0/24" is not a single host',
    );
    const badName = knockGrant('10.0.0.2');
    badName.metadata.name = '../escape';
    await expect(store.create(badName)).rejects.toThrow(/not a lowercase DNS-1123 name/);
    expect(cluster.server.requests.filter((r) => r.method === 'POST')).toEqual([]);
  });

  it("passes on the server's refusal (422) in one line with the field path", async () => {
    const store = openStore();
    const bad = knockGrant('10.0.0.2');
    bad.spec.policyRef = { name: 'Not_A_Name' };
    const err = await store.create(bad).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(GrantValidationError);
    expect(err.message).toMatch(/^create accessgrant ssh-0a000002: .*spec\.policyRef\.name.*\(HTTP 422\)$/);
    expect(err.message).not.toMatch(/\n/);
    expect(onServer('ssh-0a000002')).toBeUndefined();
  });

  it('extend pushes a live grant later, never earlier, and unions ports', async () => {
    const store = openStore();
    const first = await store.create(knockGrant('10.0.0.2', 60));
    clock.advance(30_000);
    const later = await store.extend(knockGrant('10.0.0.2', 60));
    expect(Date.parse(later.spec.expiresAt)).toBe(Date.parse(first.spec.expiresAt) + 30_000);
    expect(later.metadata.uid).toBe(first.metadata.uid);
    expect(later.metadata.generation).toBe(2);
    const shorter = await store.extend(knockGrant('10.0.0.2', 1));
    expect(shorter.spec.expiresAt).toBe(later.spec.expiresAt);
    expect(shorter.metadata.resourceVersion).toBe(later.metadata.resourceVersion); // nothing written
    const morePorts = await store.extend(knockGrant('10.0.0.2', 1, ['80/tcp']));
    expect(morePorts.spec.ports).toEqual(['22/tcp', '80/tcp']);
    expect(morePorts.spec.expiresAt).toBe(later.spec.expiresAt);
    expect(onServer('ssh-0a000002')?.spec).toEqual(morePorts.spec);
  });

  it('extend creates an absent grant; a name held by an Expired, Revoked or Failed one goes to the next generation, the history entry kept (no lock-out, no delete)', async () => {
    const store = openStore();
    const created = await store.extend(knockGrant('10.0.0.2'));
    const base = created.metadata.name;
    let previous = created;
    for (const [i, phase] of (['Expired', 'Revoked', 'Failed'] as const).entries()) {
      const old = await store.updateStatus(previous.metadata.name, { phase });
      clock.advance(120_000);
      const replaced = await store.extend(knockGrant('10.0.0.2', 60));
      expect(replaced.metadata.name).toBe(generationName(base, i + 1));
      expect(replaced.metadata.uid).not.toBe(old.metadata.uid);
      expect(replaced.status).toBeUndefined();
      expect(Date.parse(replaced.spec.expiresAt)).toBe(clock.now() + 60_000);
      // The history entry is left to the controller's retention.
      expect(onServer(previous.metadata.name)?.status?.phase).toBe(phase);
      // A repeated request walks the generations to the live one and extends it.
      const again = await store.extend(knockGrant('10.0.0.2', 90));
      expect(again.metadata.uid).toBe(replaced.metadata.uid);
      expect(Date.parse(again.spec.expiresAt)).toBe(clock.now() + 90_000);
      previous = again;
    }
    expect(cluster.server.requests.filter((r) => r.method === 'DELETE')).toEqual([]);
    expect(
      cluster.server.requests.filter((r) => r.method === 'GET' && /\/accessgrants(\?|$)/.test(r.url)),
    ).toEqual([]);
  });

  it("extend passes over another node's live grant of a shared name and the names it frees are used again", async () => {
    const store = openStore();
    const shared = (node: string, seconds = 60) =>
      buildGrant(
        {
          kind: 'grant',
          policy: 'ssh',
          method: 'knock',
          source: '10.0.0.9',
          ports: ['22/tcp'],
          durationSeconds: seconds,
        },
        { clock, node, targets: { nodes: ['node-a', 'node-b'] } },
      );
    const ofA = await store.extend(shared('node-a'));
    const ofB = await store.extend(shared('node-b'));
    expect(ofB.metadata.name).toBe(generationName(ofA.metadata.name, 1));
    expect(ofB.spec.observedBy).toBe('node-b');
    expect((await store.extend(shared('node-a', 120))).metadata.uid).toBe(ofA.metadata.uid);
    expect((await store.extend(shared('node-b', 120))).metadata.uid).toBe(ofB.metadata.uid);
    expect(onServer(ofA.metadata.name)?.spec.observedBy).toBe('node-a');
    // The controller deletes A's grant (retention): the name is free again for the next request.
    await store.delete(ofA.metadata.name);
    const again = await store.extend(shared('node-a'));
    expect(again.metadata.name).toBe(ofA.metadata.name);
    expect(again.metadata.uid).not.toBe(ofA.metadata.uid);
  });

  it('extend fails in one line, opening nothing, when every generation holds a history entry', async () => {
    const store = openStore({ maxGenerations: 3 });
    let name = '';
    for (let g = 0; g < 3; g++) {
      const made = await store.extend(knockGrant('10.0.0.3'));
      name ||= made.metadata.name;
      await store.updateStatus(made.metadata.name, { phase: 'Expired' });
    }
    const err = await store.extend(knockGrant('10.0.0.3')).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(GenerationsExhaustedError);
    expect(err.message).toBe(
      `accessgrant ${name}: its 3 generations (${name} to ${name}.2) all hold history entries or other nodes' grants; the controller deletes history entries when their retention ends`,
    );
    expect(onServer(`${name}.3`)).toBeUndefined();
  });

  it('generation names stay valid names of at most 253 characters', () => {
    expect(generationName('ssh-0a000002', 0)).toBe('ssh-0a000002');
    expect(generationName('ssh-0a000002', 7)).toBe('ssh-0a000002.7');
    const long = `${'a'.repeat(249)}-bcd`;
    expect(generationName(long, 12)).toBe(`${'a'.repeat(249)}.12`);
    expect(generationName(long, 12).length).toBeLessThanOrEqual(253);
    expect(baseName('ssh-0a000002.7')).toBe('ssh-0a000002');
    expect(baseName('ssh-0a000002')).toBe('ssh-0a000002');
  });

  it('concurrent extends from two stores land on one grant with the latest expiry', async () => {
    const a = openStore();
    const b = openStore();
    await a.create(knockGrant('10.0.0.2', 60));
    const extensions = Array.from({ length: 8 }, (_, i) => {
      const grant = knockGrant('10.0.0.2', 100 + i, i % 2 ? ['22/tcp'] : ['443/tcp']);
      return (i % 2 ? a : b).extend(grant);
    });
    await Promise.all(extensions);
    const final = onServer('ssh-0a000002')!;
    expect(Date.parse(final.spec.expiresAt)).toBe(clock.now() + 107_000);
    expect(final.spec.ports.sort()).toEqual(['22/tcp', '443/tcp']);
  });

  it('updateStatus merges maps key by key and conditions by type; unknown names are NotFound', async () => {
    const store = openStore();
    const { metadata } = await store.create(knockGrant('10.0.0.2'));
    const since = new Date(clock.now()).toISOString().replace('.000Z', 'Z');
    await store.updateStatus(metadata.name, { phase: 'Active', nodes: { a: { state: 'Applied', since } } });
    await store.updateStatus(metadata.name, { nodes: { b: { state: 'Failed', since, message: 'no nft' } } });
    await store.updateStatus(metadata.name, {
      securityGroups: { 'sg-1': { state: 'Applied', ruleId: 'sgr-1', since } },
      conditions: [
        { type: 'Ready', status: 'False', reason: 'Pending', message: '', lastTransitionTime: since },
      ],
    });
    const merged = await store.updateStatus(metadata.name, {
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Applied', message: '', lastTransitionTime: since },
      ],
    });
    expect(merged.status).toEqual({
      phase: 'Active',
      nodes: { a: { state: 'Applied', since }, b: { state: 'Failed', since, message: 'no nft' } },
      securityGroups: { 'sg-1': { state: 'Applied', ruleId: 'sgr-1', since } },
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Applied', message: '', lastTransitionTime: since },
      ],
    });
    // An entry replaces the node's old entry as a whole: the old message does not survive.
    const fixed = await store.updateStatus(metadata.name, { nodes: { b: { state: 'Applied', since } } });
    expect(fixed.status?.nodes?.b).toEqual({ state: 'Applied', since });
    expect(fixed.spec).toEqual(onServer(metadata.name)?.spec);
    await expect(store.updateStatus('nope', { phase: 'Active' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      store.updateStatus('nope', {
        conditions: [{ type: 'Ready', status: 'True', reason: 'x', message: '', lastTransitionTime: since }],
      }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.delete('nope')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('agents patching their own status keys at the same time never lose each other', async () => {
    const stores = [openStore(), openStore(), openStore()];
    const { metadata } = await stores[0].create(knockGrant('10.0.0.2'));
    const since = new Date(clock.now()).toISOString().replace('.000Z', 'Z');
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        stores[i % 3].updateStatus(metadata.name, { nodes: { [`node-${i}`]: { state: 'Applied', since } } }),
      ),
    );
    expect(Object.keys(onServer(metadata.name)?.status?.nodes ?? {})).toHaveLength(12);
  });

  it('watch delivers ADDED, MODIFIED, DELETED in the order of the mutations, once each', async () => {
    const store = openStore();
    await store.create(knockGrant('10.0.0.9')); // exists before the watch: state, not an event
    const events: string[] = [];
    const stop = store.watch((e: GrantEvent) =>
      events.push(`${e.type} ${e.grant.metadata.name} ${e.grant.status?.phase ?? '-'}`),
    );
    await store.list(); // the first list is in
    await store.create(knockGrant('10.0.0.2'));
    await store.create(knockGrant('10.0.0.3'));
    await store.updateStatus('ssh-0a000002', { phase: 'Active' });
    await store.delete('ssh-0a000003');
    clock.advance(10_000);
    await store.extend(knockGrant('10.0.0.2'));
    await store.extend(knockGrant('10.0.0.2', 1)); // nothing changes: no event
    await store.delete('ssh-0a000002');
    stop();
    await store.create(knockGrant('10.0.0.4'));
    expect(events).toEqual([
      'ADDED ssh-0a000002 -',
      'ADDED ssh-0a000003 -',
      'MODIFIED ssh-0a000002 Active',
      'DELETED ssh-0a000003 -',
      'MODIFIED ssh-0a000002 Active',
      'DELETED ssh-0a000002 Active',
    ]);
  });

  it("another store's changes reach this store's watch and cache", async () => {
    const reader = openStore();
    const writer = openStore();
    const events: string[] = [];
    reader.watch((e) => events.push(`${e.type} ${e.grant.metadata.name}`));
    await reader.list();
    const created = await writer.create(knockGrant('10.0.0.2'));
    await until(() => events.length === 1);
    expect(await reader.get('ssh-0a000002')).toEqual(created);
    await writer.delete('ssh-0a000002');
    await until(() => events.length === 2);
    expect(events).toEqual(['ADDED ssh-0a000002', 'DELETED ssh-0a000002']);
    expect(await reader.list()).toEqual([]);
  });

  it('a watcher that throws does not break the store or other watchers', async () => {
    const store = openStore();
    const seen: string[] = [];
    store.watch(() => {
      throw new Error('boom');
    });
    store.watch((e) => seen.push(e.type));
    await store.list();
    await store.create(knockGrant('10.0.0.2'));
    expect(seen).toEqual(['ADDED']);
  });

  it('expireIfDue marks only the same, due, live grant Expired', async () => {
    const store = openStore();
    const g = await store.create(knockGrant('10.0.0.2', 60));
    const due = Date.parse(g.spec.expiresAt);
    expect(await store.expireIfDue(g.metadata.name, g.metadata.uid, due - 1)).toBeUndefined();
    expect(await store.expireIfDue(g.metadata.name, 'another-uid', due)).toBeUndefined();
    const expired = await store.expireIfDue(g.metadata.name, g.metadata.uid, due);
    expect(expired?.status?.phase).toBe('Expired');
    expect(expired?.status?.conditions?.map((c) => c.type)).toEqual(['Expired']);
    expect(await store.expireIfDue(g.metadata.name, g.metadata.uid, due)).toBeUndefined();
    await expect(store.expireIfDue('nope', undefined, due)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a component that only creates grants never lists or watches them', async () => {
    const store = openStore();
    await store.create(knockGrant('10.0.0.2'));
    clock.advance(1000);
    await store.extend(knockGrant('10.0.0.2'));
    expect(cluster.server.requests.filter((r) => r.method === 'GET' && !/\/ssh-/.test(r.url))).toEqual([]);
  });
});

describe('KubeReplayStore', () => {
  const digest = (n: number) => n.toString(16).padStart(64, '0');
  const inSeconds = (s: number) => new Date(clock.now() + s * 1000);

  function openClaims(node = 'node-a'): KubeReplayStore {
    return new KubeReplayStore({ kubeConfig: cluster.kubeConfig, clock, node });
  }

  it('claims a digest once; the second claim is a replay', async () => {
    const s = openClaims();
    expect(await s.claim(digest(1), inSeconds(180), 'ssh')).toBe('claimed');
    expect(await s.claim(digest(1), inSeconds(180), 'ssh')).toBe('replay');
    expect(await s.claim(digest(2), inSeconds(180))).toBe('claimed');
    const type = cluster.server.api.type('knockgate.io', 'v1alpha1', 'replayclaims')!;
    const stored = cluster.server.api.get(type, undefined, digest(1)) as unknown as ReplayClaim;
    expect(stored.spec).toEqual({
      expiresAt: inSeconds(180).toISOString(),
      policyRef: { name: 'ssh' },
      claimedBy: 'node-a',
    });
  });

  it('of many concurrent claims of one digest from two nodes exactly one wins', async () => {
    const a = openClaims('node-a');
    const b = openClaims('node-b');
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).claim(digest(7), inSeconds(60), 'ssh')),
    );
    expect(results.filter((r) => r === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r === 'replay')).toHaveLength(15);
  });

  it('a claim past its expiresAt that nobody collected yet can be claimed again', async () => {
    const s = openClaims();
    expect(await s.claim(digest(3), inSeconds(60))).toBe('claimed');
    clock.advance(59_000);
    expect(await s.claim(digest(3), inSeconds(60))).toBe('replay');
    clock.advance(1_000);
    expect(await s.claim(digest(3), inSeconds(60))).toBe('claimed');
    expect(await s.claim(digest(3), inSeconds(60))).toBe('replay');
  });

  it('rejects a malformed digest or time without asking the server', async () => {
    const s = openClaims();
    await expect(s.claim('ABCDEF0123456789', inSeconds(60))).rejects.toThrow(
      /digest is not 16-128 lowercase hex/,
    );
    await expect(s.claim(digest(1), new Date(NaN))).rejects.toThrow(/expiresAt is not a valid time/);
    expect(cluster.server.requests.filter((r) => r.method === 'POST')).toEqual([]);
  });
});

describe('RBAC', () => {
  it('a token without the rule gets a one-line 403 from every operation', async () => {
    await cluster.stop();
    cluster = await startEmulatedCluster({
      users: [
        {
          name: 'admin',
          token: 'admin-token-0123456789',
          rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
        },
        {
          name: 'system:serviceaccount:knockgate:sniffer',
          token: 'sniffer-token-0123456789',
          rules: [{ apiGroups: ['knockgate.io'], resources: ['replayclaims'], verbs: ['create'] }],
        },
      ],
    });
    const kubeConfig = cluster.kubeConfigFor('system:serviceaccount:knockgate:sniffer');
    const store = openStore({ kubeConfig, initialSyncTimeoutMs: 1500, watchBackoffInitialMs: 100 });
    const err = await store.create(knockGrant('10.0.0.2')).catch((e: unknown) => e as KubeApiError);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err.status).toBe(403);
    expect(err.message).toBe(
      'create accessgrant ssh-0a000002: accessgrants.knockgate.io is forbidden: User "system:serviceaccount:knockgate:sniffer" cannot create resource "accessgrants" in API group "knockgate.io" at the cluster scope (HTTP 403)',
    );
    await expect(store.list()).rejects.toThrow(
      /^list accessgrants: no complete list after 2 s \(list\/watch accessgrants: .*cannot list resource "accessgrants".*\(HTTP 403\)\)$/,
    );
    const claims = new KubeReplayStore({ kubeConfig, clock });
    expect(await claims.claim('ab'.repeat(16), new Date(clock.now() + 60_000))).toBe('claimed');
  });
});

describe('loadKubeConfig', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'knockgate-kubeconfig-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a kubeconfig file (and a named context) that the store then uses', async () => {
    const file = join(dir, 'kubeconfig');
    await writeFile(file, cluster.server.kubeconfig(), { mode: 0o600 });
    const store = openStore({ kubeConfig: loadKubeConfig({ kubeconfig: file, context: 'admin' }) });
    await store.create(knockGrant('10.0.0.2'));
    expect((await store.list()).map((g) => g.metadata.name)).toEqual(['ssh-0a000002']);
    const viaEnv = loadKubeConfig({ env: { KUBECONFIG: file } });
    expect(viaEnv.getCurrentCluster()?.server).toBe(cluster.server.url);
  });

  it('refuses a missing, broken or incomplete kubeconfig in one line naming the file', async () => {
    const missing = join(dir, 'nope');
    expect(() => loadKubeConfig({ kubeconfig: missing })).toThrow(
      new RegExp(`^kubeconfig ${missing}: cannot read: ENOENT`),
    );
    const broken = join(dir, 'broken');
    await writeFile(broken, 'clusters: [\n');
    expect(() => loadKubeConfig({ kubeconfig: broken })).toThrow(KubeConfigError);
    const good = join(dir, 'good');
    await writeFile(good, cluster.server.kubeconfig());
    expect(() => loadKubeConfig({ kubeconfig: good, context: 'other' })).toThrow(
      `kubeconfig ${good}: no context "other"`,
    );
    expect(() => loadKubeConfig({ env: {} })).toThrow(/^no Kubernetes API: pass --kubeconfig/);
    for (const f of [missing, broken, good])
      try {
        loadKubeConfig({ kubeconfig: f, context: 'other' });
      } catch (err) {
        expect((err as Error).message).not.toMatch(/\n/);
      }
  });

  it('in a pod: the service account token and CA, and the API address from the environment', async () => {
    const sa = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
    const env = {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: String(cluster.server.port),
    };
    expect(() => loadKubeConfig({ env, serviceAccountRoot: dir })).toThrow(
      `in-cluster config: ${join(sa, 'token')} is missing (no service account token mounted?)`,
    );
    await mkdir(sa, { recursive: true });
    await writeFile(join(sa, 'token'), cluster.server.tokenOf('admin'));
    await writeFile(join(sa, 'ca.crt'), cluster.server.caCert);
    const kubeConfig = loadKubeConfig({ env, serviceAccountRoot: dir });
    expect(process.env.KUBERNETES_SERVICE_HOST).toBeUndefined();
    const claims = new KubeReplayStore({ kubeConfig, clock });
    expect(await claims.claim('cd'.repeat(16), new Date(clock.now() + 60_000))).toBe('claimed');
  });
});

/** Wait (real time, bounded) for a condition that another store's watch makes true. */
async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
