// The Kubernetes API emulator's semantics, tested directly over HTTPS (what client-node's informers
// and kubectl rely on): resourceVersion and watch resume, bookmarks, 410 Gone past the compaction
// window, 409 on stale updates and existing names, generation, the status subresource split,
// finalizers and deletionTimestamp, ownerReferences garbage collection, label selectors, the
// built-in kinds the product uses, and every fault. Time-dependent parts run on a FakeClock.

import { request } from 'node:https';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import { loadCrdDirectory } from './emulators/kube-apiserver/crds.js';
import { KubeApiServer } from './emulators/kube-apiserver/server.js';
import { TooOldError } from './emulators/kube-apiserver/storage.js';

const CRDS = resolve(import.meta.dirname, '..', 'crds');
const AG = '/apis/knockgate.io/v1alpha1/accessgrants';
const KP = '/apis/knockgate.io/v1alpha1/knockpolicies';
const BOOKMARK_MS = 5000;
const ADMIN = 'admin-token-api-test';
const LIMITED = 'limited-token-api-test';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Json;
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface WatchEvent {
  type: string;
  object: Json;
}

let clock: FakeClock;
let server: KubeApiServer;
let counter = 0;
const unique = (prefix: string) => `${prefix}-${++counter}`;

function call(
  method: string,
  path: string,
  opts: { body?: unknown; contentType?: string; token?: string; accept?: string } = {},
): Promise<Reply> {
  return new Promise((done, fail) => {
    const text = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        method,
        path,
        ca: server.caCert,
        headers: {
          Authorization: `Bearer ${opts.token ?? ADMIN}`,
          Accept: opts.accept ?? 'application/json',
          ...(text === undefined
            ? {}
            : {
                'Content-Type': opts.contentType ?? 'application/json',
                'Content-Length': Buffer.byteLength(text),
              }),
        },
        timeout: 10_000,
      },
      (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString()));
        res.on('end', () =>
          done({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: data ? JSON.parse(data) : undefined,
          }),
        );
      },
    );
    req.on('error', fail);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.end(text);
  });
}

const get = (path: string, token?: string) => call('GET', path, { token });
const post = (path: string, body: unknown) => call('POST', path, { body });
const put = (path: string, body: unknown) => call('PUT', path, { body });
const del = (path: string, body?: unknown) => call('DELETE', path, { body });
const merge = (path: string, body: unknown) =>
  call('PATCH', path, { body, contentType: 'application/merge-patch+json' });

/** An open watch stream: events arrive in `events`; `ended` once the server closes it. */
interface OpenWatch {
  status: number;
  events: WatchEvent[];
  ended: boolean;
  next(n: number): Promise<WatchEvent[]>;
  close(): void;
}

function watch(path: string): Promise<OpenWatch> {
  return new Promise((done, fail) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        method: 'GET',
        path,
        ca: server.caCert,
        headers: { Authorization: `Bearer ${ADMIN}`, Accept: 'application/json' },
      },
      (res) => {
        let buffer = '';
        const w: OpenWatch = {
          status: res.statusCode ?? 0,
          events: [],
          ended: false,
          async next(n) {
            const deadline = Date.now() + 10_000;
            while (w.events.length < n && !w.ended && Date.now() < deadline)
              await new Promise((r) => setTimeout(r, 10));
            return w.events;
          },
          close: () => req.destroy(),
        };
        res.on('data', (d: Buffer) => {
          buffer += d.toString();
          let nl: number;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            if (line.trim()) w.events.push(JSON.parse(line) as WatchEvent);
          }
        });
        res.on('end', () => (w.ended = true));
        res.on('close', () => (w.ended = true));
        done(w);
      },
    );
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : fail(err)));
    req.end();
  });
}

/** Let I/O run (socket writes, parsing) without moving the fake clock. */
const settle = (ms = 50) => new Promise((r) => setTimeout(r, ms));

const grant = (name: string, extra: Json = {}) => ({
  apiVersion: 'knockgate.io/v1alpha1',
  kind: 'AccessGrant',
  metadata: { name, ...(extra.metadata ?? {}) },
  spec: {
    source: '192.0.2.10/32',
    ports: ['22/tcp'],
    expiresAt: '2030-01-01T00:00:00Z',
    method: 'manual',
    ...(extra.spec ?? {}),
  },
});

const HISTORY = 50;

beforeAll(async () => {
  clock = new FakeClock(Date.UTC(2026, 5, 1));
  server = new KubeApiServer({
    clock,
    historyLimit: HISTORY,
    bookmarkIntervalMs: BOOKMARK_MS,
    namespaces: ['knockgate'],
    users: [
      { name: 'admin', token: ADMIN, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] },
      {
        name: 'limited',
        token: LIMITED,
        rules: [{ apiGroups: ['knockgate.io'], resources: ['accessgrants'], verbs: ['get', 'list'] }],
      },
    ],
  });
  loadCrdDirectory(server, CRDS);
  await server.start();
});

afterAll(async () => {
  server.faults.clear();
  await server?.stop();
});

describe('resourceVersion and watch', () => {
  it('every write gets a new, larger resourceVersion; a list carries the current one', async () => {
    const a = await post(AG, grant(unique('rv')));
    expect(a.status).toBe(201);
    const b = await merge(`${AG}/${a.body.metadata.name}`, { metadata: { labels: { x: 'y' } } });
    expect(b.status).toBe(200);
    expect(Number(b.body.metadata.resourceVersion)).toBeGreaterThan(Number(a.body.metadata.resourceVersion));
    const list = await get(AG);
    expect(list.body.metadata.resourceVersion).toBe(b.body.metadata.resourceVersion);
  });

  it('a watch without resourceVersion starts with ADDED for what exists; from a resourceVersion it resumes', async () => {
    const name = unique('resume');
    await post(AG, grant(name));
    const list = await get(AG);
    const fresh = await watch(`${AG}?watch=true`);
    await fresh.next(list.body.items.length);
    expect(fresh.events.map((e) => e.type)).toEqual(list.body.items.map(() => 'ADDED'));
    fresh.close();

    const rv = list.body.metadata.resourceVersion;
    await merge(`${AG}/${name}`, { spec: { ports: ['80/tcp'] } });
    await del(`${AG}/${name}`);
    // Opened after the changes: it replays them from the history.
    const resumed = await watch(`${AG}?watch=true&resourceVersion=${rv}`);
    const events = await resumed.next(2);
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      `MODIFIED ${name}`,
      `DELETED ${name}`,
    ]);
    expect(Number(events[1].object.metadata.resourceVersion)).toBeGreaterThan(Number(rv));
    resumed.close();
  });

  it('sends BOOKMARKs with the current resourceVersion only when asked', async () => {
    const list = await get(AG);
    const withBookmarks = await watch(
      `${AG}?watch=true&allowWatchBookmarks=true&resourceVersion=${list.body.metadata.resourceVersion}`,
    );
    const without = await watch(`${AG}?watch=true&resourceVersion=${list.body.metadata.resourceVersion}`);
    await settle();
    await post(KP, {
      apiVersion: 'knockgate.io/v1alpha1',
      kind: 'KnockPolicy',
      metadata: { name: unique('bm') },
      spec: { knock: { sequence: ['1000/tcp'] }, grant: { ports: ['22/tcp'], durationSeconds: 30 } },
    });
    clock.advance(BOOKMARK_MS);
    const events = await withBookmarks.next(1);
    expect(events[0].type).toBe('BOOKMARK');
    expect(events[0].object).toMatchObject({ kind: 'AccessGrant', apiVersion: 'knockgate.io/v1alpha1' });
    // A bookmark carries the latest resourceVersion, including changes in other collections.
    expect(events[0].object.metadata.resourceVersion).toBe(String(server.storage.currentRevision));
    clock.advance(BOOKMARK_MS);
    expect((await withBookmarks.next(2)).map((e) => e.type)).toEqual(['BOOKMARK', 'BOOKMARK']);
    await settle();
    expect(without.events).toEqual([]);
    withBookmarks.close();
    without.close();
  });

  it('answers 410 Gone for a resourceVersion past the compaction window', async () => {
    const start = (await get(AG)).body.metadata.resourceVersion;
    const name = unique('churn');
    await post(AG, grant(name));
    for (let i = 0; i < HISTORY + 5; i++)
      await merge(`${AG}/${name}`, { metadata: { labels: { i: String(i) } } });
    const old = await watch(`${AG}?watch=true&resourceVersion=${start}`);
    const [err] = await old.next(1);
    expect(old.status).toBe(200);
    expect(err.type).toBe('ERROR');
    expect(err.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
    expect(err.object.message).toMatch(/^too old resource version: \d+ \(\d+\)$/);
    expect(old.ended).toBe(true);
    const exact = await get(`${AG}?resourceVersion=${start}&resourceVersionMatch=Exact`);
    expect(exact.status).toBe(410);
    // The latest resourceVersion still resumes.
    const latest = (await get(AG)).body.metadata.resourceVersion;
    const ok = await watch(`${AG}?watch=true&resourceVersion=${latest}`);
    await merge(`${AG}/${name}`, { metadata: { labels: { i: 'last' } } });
    expect((await ok.next(1))[0].type).toBe('MODIFIED');
    ok.close();
  });

  it('with a time window, forgets events older than it (410) but always resumes from the latest', () => {
    const c = new FakeClock(Date.UTC(2026, 5, 1));
    const s2 = new KubeApiServer({ clock: c, historyWindowMs: 60_000 });
    loadCrdDirectory(s2, CRDS);
    const type = s2.api.type('knockgate.io', 'v1alpha1', 'accessgrants')!;
    const opts = { fieldValidation: 'Strict' as const, dryRun: false };
    const first = s2.api.create(type, undefined, grant('w1'), opts).object;
    const rv1 = Number(first.metadata.resourceVersion);
    c.advance(30_000);
    s2.api.create(type, undefined, grant('w2'), opts);
    expect(
      s2.storage.eventsSince('knockgate.io/accessgrants', rv1).map((e) => e.object.metadata.name),
    ).toEqual(['w2']);
    c.advance(40_000); // w1's event is now 70 s old, w2's 40 s
    expect(() => s2.storage.eventsSince('knockgate.io/accessgrants', rv1 - 1)).toThrow(TooOldError);
    expect(
      s2.storage.eventsSince('knockgate.io/accessgrants', rv1).map((e) => e.object.metadata.name),
    ).toEqual(['w2']);
    c.advance(3_600_000); // nothing kept, yet the latest revision resumes
    expect(() => s2.storage.eventsSince('knockgate.io/accessgrants', rv1)).toThrow(TooOldError);
    expect(s2.storage.eventsSince('knockgate.io/accessgrants', s2.storage.currentRevision)).toEqual([]);
  });

  it('times a watch out after timeoutSeconds', async () => {
    const w = await watch(
      `${AG}?watch=true&timeoutSeconds=30&resourceVersion=${server.storage.currentRevision}`,
    );
    await settle();
    expect(w.ended).toBe(false);
    clock.advance(30_000);
    await w.next(1);
    expect(w.ended).toBe(true);
  });
});

describe('writes', () => {
  it('409 AlreadyExists on an existing name, 409 Conflict on a stale update', async () => {
    const name = unique('conflict');
    const first = await post(AG, grant(name));
    const again = await post(AG, grant(name));
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      reason: 'AlreadyExists',
      message: `accessgrants.knockgate.io "${name}" already exists`,
      details: { name, group: 'knockgate.io', kind: 'accessgrants' },
    });
    const stale = structuredClone(first.body);
    expect((await merge(`${AG}/${name}`, { spec: { ports: ['80/tcp'] } })).status).toBe(200);
    stale.spec.ports = ['443/tcp'];
    const conflict = await put(`${AG}/${name}`, stale);
    expect(conflict.status).toBe(409);
    expect(conflict.body.reason).toBe('Conflict');
    expect(conflict.body.message).toBe(
      `Operation cannot be fulfilled on accessgrants.knockgate.io "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    );
    const stalePatch = await merge(`${AG}/${name}`, {
      metadata: { resourceVersion: first.body.metadata.resourceVersion },
      spec: { ports: ['443/tcp'] },
    });
    expect(stalePatch.status).toBe(409);
    expect((await get(`${AG}/${name}`)).body.spec.ports).toEqual(['80/tcp']);
    // A PUT without resourceVersion on a custom resource is refused (422), as the real server does.
    const blind = structuredClone(first.body);
    delete blind.metadata.resourceVersion;
    expect((await put(`${AG}/${name}`, blind)).status).toBe(422);
  });

  it('bumps generation on a spec change only', async () => {
    const name = unique('gen');
    const path = `${AG}/${name}`;
    expect((await post(AG, grant(name))).body.metadata.generation).toBe(1);
    const labelled = await merge(path, { metadata: { labels: { a: 'b' }, annotations: { n: 'o' } } });
    expect(labelled.body.metadata.generation).toBe(1);
    const status = await call('PATCH', `${path}/status`, {
      body: { status: { phase: 'Active' } },
      contentType: 'application/merge-patch+json',
    });
    expect(status.body.metadata.generation).toBe(1);
    const spec = await merge(path, { spec: { ports: ['22/tcp', '80/tcp'] } });
    expect(spec.body.metadata.generation).toBe(2);
    // A write that changes nothing keeps resourceVersion and generation.
    const same = await merge(path, { spec: { ports: ['22/tcp', '80/tcp'] } });
    expect(same.body.metadata).toMatchObject({
      generation: 2,
      resourceVersion: spec.body.metadata.resourceVersion,
    });
  });

  it('splits status from the main resource', async () => {
    const name = unique('status');
    const path = `${AG}/${name}`;
    const created = await post(AG, { ...grant(name), status: { phase: 'Active' } });
    expect(created.body.status).toBeUndefined(); // status is dropped on create
    const withStatus = await put(`${path}/status`, {
      ...created.body,
      spec: { ...created.body.spec, ports: ['9999/tcp'] },
      status: { phase: 'Active', nodes: { 'node-a': { state: 'Applied', since: '2026-06-01T00:00:00Z' } } },
    });
    expect(withStatus.status).toBe(200);
    expect(withStatus.body.spec.ports).toEqual(['22/tcp']); // /status ignores the spec
    expect(withStatus.body.status.phase).toBe('Active');
    const mainPut = await put(path, { ...withStatus.body, status: { phase: 'Revoked' } });
    expect(mainPut.body.status.phase).toBe('Active'); // the main resource ignores the status
    // Each agent merge-patches its own key of status.nodes.
    const b = await call('PATCH', `${path}/status`, {
      body: { status: { nodes: { 'node-b': { state: 'Applied', since: '2026-06-01T00:00:01Z' } } } },
      contentType: 'application/merge-patch+json',
    });
    expect(Object.keys(b.body.status.nodes).sort()).toEqual(['node-a', 'node-b']);
    // Status is validated too.
    const bad = await call('PATCH', `${path}/status`, {
      body: { status: { phase: 'Open' } },
      contentType: 'application/merge-patch+json',
    });
    expect(bad.status).toBe(422);
    expect(bad.body.details.causes[0]).toMatchObject({
      field: 'status.phase',
      reason: 'FieldValueNotSupported',
    });
  });

  it('finalizers hold a deleted object with a deletionTimestamp until they are removed', async () => {
    const name = unique('final');
    const path = `${AG}/${name}`;
    await post(AG, grant(name, { metadata: { finalizers: ['knockgate.io/firewall'] } }));
    const rv = (await get(AG)).body.metadata.resourceVersion;
    const w = await watch(`${AG}?watch=true&resourceVersion=${rv}&fieldSelector=metadata.name%3D${name}`);
    const deleting = await del(path);
    expect(deleting.status).toBe(200);
    expect(deleting.body.metadata.deletionTimestamp).toBe(
      new Date(clock.now()).toISOString().replace('.000Z', 'Z'),
    );
    const still = await get(path);
    expect(still.status).toBe(200);
    expect(still.body.metadata.deletionTimestamp).toBeDefined();
    // A second delete changes nothing.
    expect((await del(path)).body.metadata.resourceVersion).toBe(still.body.metadata.resourceVersion);
    const done = await merge(path, { metadata: { finalizers: null } });
    expect(done.status).toBe(200);
    expect((await get(path)).status).toBe(404);
    const events = await w.next(2);
    expect(events.map((e) => e.type)).toEqual(['MODIFIED', 'DELETED']);
    w.close();
  });

  it('garbage-collects dependents through ownerReferences (background), or orphans them', async () => {
    const mkPolicy = async (name: string) =>
      (
        await post(KP, {
          apiVersion: 'knockgate.io/v1alpha1',
          kind: 'KnockPolicy',
          metadata: { name },
          spec: { knock: { sequence: ['1000/tcp'] }, grant: { ports: ['22/tcp'], durationSeconds: 30 } },
        })
      ).body;
    const owned = (policy: Json, name: string, finalizers?: string[]) =>
      grant(name, {
        metadata: {
          ownerReferences: [
            {
              apiVersion: 'knockgate.io/v1alpha1',
              kind: 'KnockPolicy',
              name: policy.metadata.name,
              uid: policy.metadata.uid,
            },
          ],
          ...(finalizers ? { finalizers } : {}),
        },
        spec: { method: 'knock', policyRef: { name: policy.metadata.name } },
      });
    const p1 = await mkPolicy(unique('owner'));
    const g1 = unique('dep');
    const g2 = unique('dep-final');
    const free = unique('free');
    await post(AG, owned(p1, g1));
    await post(AG, owned(p1, g2, ['knockgate.io/firewall']));
    await post(AG, grant(free));
    expect((await del(`${KP}/${p1.metadata.name}`)).status).toBe(200);
    expect((await get(`${AG}/${g1}`)).status).toBe(404);
    const held = await get(`${AG}/${g2}`);
    expect(held.body.metadata.deletionTimestamp).toBeDefined(); // its finalizer still holds it
    expect((await get(`${AG}/${free}`)).status).toBe(200);

    const p2 = await mkPolicy(unique('owner'));
    const g3 = unique('orphan');
    await post(AG, owned(p2, g3));
    const orphaning = await del(`${KP}/${p2.metadata.name}`, { propagationPolicy: 'Orphan' });
    expect(orphaning.status, JSON.stringify(orphaning.body)).toBe(200);
    const orphan = await get(`${AG}/${g3}`);
    expect(orphan.status).toBe(200);
    expect(orphan.body.metadata.ownerReferences).toBeUndefined();
    // An ownerReference without a uid is refused.
    const bad = await post(
      AG,
      grant(unique('bad-owner'), {
        metadata: { ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'x' }] },
      }),
    );
    expect(bad.status).toBe(422);
    expect(bad.body.details.causes[0]).toMatchObject({
      field: 'metadata.ownerReferences.uid',
      message: 'Invalid value: "": uid must not be empty',
    });
  });

  it('validates labels, annotations and finalizers as the real server does', async () => {
    const refused = async (metadata: Json) => {
      const r = await post(AG, grant(unique('meta'), { metadata }));
      expect(r.status).toBe(422);
      return r.body.details.causes as { field: string; message: string }[];
    };
    // An IPv6 address is not a label value (a product that labels grants by source must encode it).
    expect(await refused({ labels: { 'knockgate.io/source': '2001:db8::1' } })).toEqual([
      {
        reason: 'FieldValueInvalid',
        field: 'metadata.labels',
        message: expect.stringMatching(
          /^Invalid value: "2001:db8::1": a valid label must be an empty string/,
        ),
      },
    ]);
    expect((await refused({ labels: { 'a/b/c': 'x' } }))[0].message).toMatch(
      /^Invalid value: "a\/b\/c": a qualified name/,
    );
    expect((await refused({ labels: { x: 'v'.repeat(64) } }))[0].message).toMatch(
      /must be no more than 63 characters/,
    );
    expect((await refused({ annotations: { 'Bad_Prefix.io/x': 'y' } }))[0].message).toMatch(
      /prefix part a lowercase RFC 1123/,
    );
    expect(await refused({ annotations: { big: 'x'.repeat(256 * 1024) } })).toEqual([
      {
        reason: 'FieldValueTooLong',
        field: 'metadata.annotations',
        message: 'Too long: must have at most 262144 bytes',
      },
    ]);
    const dup = await refused({ finalizers: ['knockgate.io/firewall', 'knockgate.io/firewall'] });
    expect(dup).toEqual([
      {
        reason: 'FieldValueDuplicate',
        field: 'metadata.finalizers[1]',
        message: 'Duplicate value: "knockgate.io/firewall"',
      },
    ]);
    expect((await refused({ finalizers: ['not valid'] }))[0].field).toBe('metadata.finalizers[0]');
    // Good metadata passes.
    const ok = await post(
      AG,
      grant(unique('meta-ok'), {
        metadata: {
          labels: { 'knockgate.io/policy': 'ssh', 'knockgate.io/source': '2001-db8--1', empty: '' },
          annotations: { 'knockgate.io/note': 'any text: 2001:db8::1, spaces and all' },
          finalizers: ['knockgate.io/firewall'],
        },
      }),
    );
    expect(ok.status).toBe(201);
  });

  it('filters lists and watches with label selectors', async () => {
    const tier = unique('tier');
    const a = unique('sel');
    const b = unique('sel');
    const c = unique('sel');
    await post(AG, grant(a, { metadata: { labels: { tier, env: 'prod' } } }));
    await post(AG, grant(b, { metadata: { labels: { tier, env: 'dev' } } }));
    await post(AG, grant(c, { metadata: { labels: { tier } } }));
    const names = async (selector: string) =>
      ((await get(`${AG}?labelSelector=${encodeURIComponent(selector)}`)).body.items as Json[]).map(
        (o) => o.metadata.name,
      );
    expect(await names(`tier=${tier},env=prod`)).toEqual([a]);
    expect(await names(`tier=${tier},env!=prod`)).toEqual([b, c]);
    expect(await names(`tier=${tier},env in (prod,dev)`)).toEqual([a, b]);
    expect(await names(`tier=${tier},env notin (prod)`)).toEqual([b, c]);
    expect(await names(`tier=${tier},!env`)).toEqual([c]);
    expect(await names(`tier=${tier},env`)).toEqual([a, b]);
    expect((await get(`${AG}?labelSelector=${encodeURIComponent('env in prod')}`)).status).toBe(400);
    // A watch sees an object leave its selector as DELETED and enter it as ADDED.
    const rv = (await get(AG)).body.metadata.resourceVersion;
    const w = await watch(
      `${AG}?watch=true&resourceVersion=${rv}&labelSelector=${encodeURIComponent(`tier=${tier},env=prod`)}`,
    );
    await merge(`${AG}/${a}`, { metadata: { labels: { env: 'dev' } } });
    await merge(`${AG}/${b}`, { metadata: { labels: { env: 'prod' } } });
    const events = await w.next(2);
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([`DELETED ${a}`, `ADDED ${b}`]);
    w.close();
    // Pagination: limit + continue.
    const page1 = await get(`${AG}?labelSelector=tier%3D${tier}&limit=2`);
    expect(page1.body.items).toHaveLength(2);
    const page2 = await get(
      `${AG}?labelSelector=tier%3D${tier}&limit=2&continue=${page1.body.metadata.continue}`,
    );
    expect(page2.body.items.map((o: Json) => o.metadata.name)).toEqual([c]);
    expect(page2.body.metadata.continue).toBeUndefined();
  });

  it('serves the built-in kinds the product uses: Secrets, Nodes, Events, Leases', async () => {
    const secret = await post('/api/v1/namespaces/knockgate/secrets', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'ssh-spa' },
      data: { KEY_BASE64: Buffer.from('k').toString('base64') },
    });
    expect(secret.status).toBe(201);
    expect((await get('/api/v1/namespaces/knockgate/secrets/ssh-spa')).body.data.KEY_BASE64).toBe('aw==');
    expect((await get('/api/v1/namespaces/default/secrets/ssh-spa')).status).toBe(404);
    expect((await post('/api/v1/namespaces/nowhere/secrets', { metadata: { name: 'x' } })).status).toBe(404);
    const node = await post('/api/v1/nodes', { metadata: { name: 'node-a', labels: { role: 'edge' } } });
    expect(node.status).toBe(201);
    expect((await get('/api/v1/nodes?labelSelector=role%3Dedge')).body.items).toHaveLength(1);
    const ev = await post('/apis/events.k8s.io/v1/namespaces/knockgate/events', {
      metadata: { generateName: 'grant-' },
      reason: 'Opened',
      note: 'opened 22/tcp',
      type: 'Normal',
      eventTime: '2026-06-01T00:00:00.000000Z',
      action: 'Open',
      reportingController: 'knockgate.io/controller',
      reportingInstance: 'controller-0',
    });
    expect(ev.status).toBe(201);
    expect(ev.body.metadata.name).toMatch(/^grant-[a-z0-9]{5}$/);
    const coreEv = await post('/api/v1/namespaces/knockgate/events', {
      metadata: { name: 'e1' },
      involvedObject: { kind: 'AccessGrant', name: 'g', uid: 'u-1' },
      reason: 'Opened',
    });
    expect(coreEv.status).toBe(201);
    expect(
      (await get('/api/v1/namespaces/knockgate/events?fieldSelector=involvedObject.uid%3Du-1')).body.items,
    ).toHaveLength(1);
    const lease = await post('/apis/coordination.k8s.io/v1/namespaces/knockgate/leases', {
      metadata: { name: 'knockgate-controller' },
      spec: { holderIdentity: 'controller-0', leaseDurationSeconds: 15 },
    });
    expect(lease.status).toBe(201);
    const stale = structuredClone(lease.body);
    const renewed = await put(
      '/apis/coordination.k8s.io/v1/namespaces/knockgate/leases/knockgate-controller',
      {
        ...lease.body,
        spec: { ...lease.body.spec, renewTime: '2026-06-01T00:00:05.000000Z' },
      },
    );
    expect(renewed.status).toBe(200);
    // Leader election relies on the 409 of a stale lease update.
    expect(
      (
        await put('/apis/coordination.k8s.io/v1/namespaces/knockgate/leases/knockgate-controller', {
          ...stale,
          spec: { ...stale.spec, holderIdentity: 'controller-1' },
        })
      ).status,
    ).toBe(409);
  });
});

describe('built-in kinds are decoded and validated like the real server does', () => {
  const LEASES = '/apis/coordination.k8s.io/v1/namespaces/knockgate/leases';
  const lease = (name: string, spec: Json) => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name },
    spec,
  });

  it('a MicroTime needs exactly six fractional digits (400, as JavaScript toISOString() gets it)', async () => {
    const r = await post(
      LEASES,
      lease('ms', { holderIdentity: 'c-0', renewTime: '2026-06-01T00:00:00.123Z' }),
    );
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ reason: 'BadRequest', code: 400 });
    expect(r.body.message).toBe(
      'Lease in version "v1" cannot be handled as a Lease: parsing time "2026-06-01T00:00:00.123Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse ".123Z" as ".000000"',
    );
    const ok = await post(
      LEASES,
      lease('us', { holderIdentity: 'c-0', renewTime: '2026-06-01T00:00:00.123000Z' }),
    );
    expect(ok.status).toBe(201);
  });

  it('a wrong JSON type is a 400, a bad value a 422, an unknown field follows fieldValidation', async () => {
    const typed = await post(LEASES, lease('typed', { leaseDurationSeconds: '15' }));
    expect(typed.status).toBe(400);
    expect(typed.body.message).toBe(
      'Lease in version "v1" cannot be handled as a Lease: json: cannot unmarshal string into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32',
    );
    const zero = await post(LEASES, lease('zero', { leaseDurationSeconds: 0 }));
    expect(zero.status).toBe(422);
    expect(zero.body.details.causes).toEqual([
      {
        reason: 'FieldValueInvalid',
        field: 'spec.leaseDurationSeconds',
        message: 'Invalid value: 0: must be greater than 0',
      },
    ]);
    const strict = await call('POST', `${LEASES}?fieldValidation=Strict`, {
      body: lease('strict', { holderIdentity: 'c-0', holder: 'typo' }),
    });
    expect(strict.status).toBe(400);
    expect(strict.body.message).toBe('strict decoding error: unknown field "spec.holder"');
    const warned = await post(LEASES, lease('warned', { holderIdentity: 'c-0', holder: 'typo' }));
    expect(warned.status).toBe(201);
    expect(warned.headers.warning).toBe('299 - "unknown field \\"spec.holder\\""');
    expect(warned.body.spec).toEqual({ holderIdentity: 'c-0' });
  });

  it('Secret data must be base64; events.k8s.io Events need their required fields', async () => {
    const secret = await post('/api/v1/namespaces/knockgate/secrets', {
      metadata: { name: 'not-base64' },
      data: { KEY_BASE64: 'not base64!' },
    });
    expect(secret.status).toBe(400);
    expect(secret.body.message).toMatch(
      /^Secret in version "v1" cannot be handled as a Secret: illegal base64 data/,
    );
    const ev = await post('/apis/events.k8s.io/v1/namespaces/knockgate/events', {
      metadata: { name: 'incomplete' },
      note: 'x',
      type: 'Info',
    });
    expect(ev.status).toBe(422);
    expect(ev.body.details.causes.map((c: Json) => c.field)).toEqual([
      'eventTime',
      'reportingController',
      'reportingInstance',
      'action',
      'reason',
      'type',
    ]);
  });
});

describe('request bodies', () => {
  it('refuses a body it cannot read with 400 or 415, and keeps serving', async () => {
    const ssar = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
    const proto = 'application/vnd.kubernetes.protobuf';
    const garbage = await call('POST', ssar, { body: 'not protobuf', contentType: proto });
    expect(garbage.status).toBe(400);
    expect(garbage.body.message).toMatch(/^protobuf: /);
    // "k8s\0" and a length that runs past the end.
    const truncated = await new Promise<number>((done, fail) => {
      const body = Buffer.from([0x6b, 0x38, 0x73, 0x00, 0x12, 0x7f, 0x01]);
      const req = request(
        {
          host: '127.0.0.1',
          port: server.port,
          method: 'POST',
          path: ssar,
          ca: server.caCert,
          headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': proto, 'Content-Length': body.length },
        },
        (res) => {
          res.resume();
          done(res.statusCode ?? 0);
        },
      );
      req.on('error', fail);
      req.end(body);
    });
    expect(truncated).toBe(400);
    const protoCreate = await call('POST', AG, { body: 'x', contentType: proto });
    expect(protoCreate.status).toBe(415);
    const notJson = await call('POST', AG, { body: undefined, contentType: 'application/json' });
    expect(notJson.status).toBe(400);
    expect((await get(`${AG}/bad%E0%A4%A`)).status).toBe(400);
    expect((await get(AG)).status).toBe(200);
  });
});

describe('faults', () => {
  it('drops open watches', async () => {
    const w = await watch(`${AG}?watch=true&resourceVersion=${server.storage.currentRevision}`);
    await settle();
    expect(server.faults.dropWatches()).toBeGreaterThanOrEqual(1);
    await w.next(1);
    expect(w.ended).toBe(true);
  });

  it('answers 429 with Retry-After and 500 for the next matching requests, then recovers', async () => {
    server.faults.fail({
      code: 429,
      count: 2,
      retryAfterSeconds: 3,
      method: 'GET',
      pathIncludes: '/accessgrants',
    });
    for (let i = 0; i < 2; i++) {
      const r = await get(AG);
      expect(r.status).toBe(429);
      expect(r.headers['retry-after']).toBe('3');
      expect(r.body).toMatchObject({ reason: 'TooManyRequests', details: { retryAfterSeconds: 3 } });
    }
    expect((await get(KP)).status).toBe(200); // not matching: untouched
    expect((await get(AG)).status).toBe(200);
    server.faults.fail({ code: 500, watch: true });
    expect((await get(AG)).status).toBe(200); // only watches
    const w = await call('GET', `${AG}?watch=true`);
    expect(w.status).toBe(500);
    expect(w.body.reason).toBe('InternalError');
  });

  it('adds latency to every request', async () => {
    server.faults.setLatency(2000);
    let answered = false;
    const pending = get(AG).then((r) => ((answered = true), r));
    await settle(100);
    expect(answered).toBe(false);
    // The request is waiting on the fake clock: move it.
    for (let i = 0; i < 250 && !answered; i++) {
      clock.advance(2000);
      await settle(20);
    }
    expect((await pending).status).toBe(200);
    server.faults.setLatency(0);
  });

  it('stops completely (connections refused), then comes back on the same port', async () => {
    const port = server.port;
    const stopping = server.faults.stopFor(30_000);
    await settle(50);
    await expect(get(AG)).rejects.toThrow(/ECONNREFUSED/);
    clock.advance(30_000);
    await stopping;
    expect(server.port).toBe(port);
    expect((await get(AG)).status).toBe(200);
  });

  it('takes faults over HTTP from the admin token only', async () => {
    const denied = await call('POST', '/emulator/v1/faults', { body: { compact: true }, token: LIMITED });
    expect(denied.status).toBe(403);
    const before = (await get(AG)).body.metadata.resourceVersion;
    await merge(`${AG}/${(await get(AG)).body.items[0].metadata.name}`, {
      metadata: { labels: { c: String(counter) } },
    });
    const ok = await call('POST', '/emulator/v1/faults', {
      body: { compact: true, fail: { code: 503, count: 1 } },
    });
    expect(ok.status).toBe(200);
    expect((await get(AG)).status).toBe(503);
    const w = await watch(`${AG}?watch=true&resourceVersion=${before}`);
    const [e] = await w.next(1);
    expect(e.object.code).toBe(410);
    const bad = await call('POST', '/emulator/v1/faults', { body: { fail: { code: 200 } } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/fail\.code 200/);
  });
});
