// The Kubernetes stores under the API emulator's faults: dropped watches (resume from the last
// resourceVersion), compaction (410 Gone → relist), 429 with Retry-After, 500s, periodic resync,
// and a 30-second full stop on an injected clock. The bar: every change reaches the watch exactly
// once (no loss, no duplicate), the cache ends equal to the server, and no replay claim is granted
// twice. Changes made "in the gap" (while no watch is open) are made in-process on the emulator,
// synchronously after the watch was dropped, so they really happen while the store is not watching.

import { createServer, connect, type Server, type Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { GrantEvent } from '../api/store.js';
import type { AccessGrant } from '../api/types.js';
import { buildGrant } from '../controller/grants/build.js';
import { KubeApiError } from '../controller/kube/errors.js';
import { KubeGrantStore, type KubeGrantStoreOptions } from '../controller/kube/grant-store.js';
import { KubeReplayStore } from '../controller/kube/replay-store.js';
import type { KubeApiServerOptions } from './emulators/kube-apiserver/server.js';
import { startEmulatedCluster, type EmulatedCluster } from './helpers/kube-store-emulator.js';

const COLLECTION = 'knockgate.io/accessgrants';
const WRITE = { fieldValidation: 'Strict' as const, dryRun: false };
/** Short waits so that real-time fault tests stay fast; the stop test uses the defaults on a fake clock. */
const QUICK: Partial<KubeGrantStoreOptions> = {
  watchBackoffInitialMs: 50,
  watchBackoffMaxMs: 400,
  requestBackoffInitialMs: 20,
  requestBackoffMaxMs: 200,
};

let cluster: EmulatedCluster | undefined;
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await cluster?.stop();
  cluster = undefined;
});

async function setup(serverOpts: KubeApiServerOptions = {}): Promise<EmulatedCluster> {
  cluster = await startEmulatedCluster(serverOpts);
  return cluster;
}

function openStore(c: EmulatedCluster, opts: Partial<KubeGrantStoreOptions> = {}): KubeGrantStore {
  const store = new KubeGrantStore({ kubeConfig: c.kubeConfig, ...QUICK, ...opts });
  closers.push(() => store.close());
  return store;
}

function grant(source: string, clock: FakeClock, seconds = 600): AccessGrant {
  return buildGrant(
    { kind: 'grant', policy: 'ssh', method: 'knock', source, ports: ['22/tcp'], durationSeconds: seconds },
    { clock, node: 'node-a' },
  );
}

/** Direct, synchronous changes on the emulator (what another client would do while we are away). */
function serverSide(c: EmulatedCluster) {
  const type = c.server.api.type('knockgate.io', 'v1alpha1', 'accessgrants')!;
  return {
    create: (g: AccessGrant) => void c.server.api.create(type, undefined, structuredClone(g), WRITE),
    setPhase: (name: string, phase: string) =>
      void c.server.api.patch(
        type,
        undefined,
        name,
        'application/merge-patch+json',
        { status: { phase } },
        'status',
        WRITE,
      ),
    remove: (name: string) => void c.server.api.delete(type, undefined, name, { dryRun: false }),
    list: () => c.server.api.list(type, undefined, {}).items as unknown as AccessGrant[],
  };
}

/** Records a store's watch events as "TYPE name rv". */
function record(store: KubeGrantStore): string[] {
  const seen: string[] = [];
  store.watch((e: GrantEvent) =>
    seen.push(`${e.type} ${e.grant.metadata.name} ${e.grant.metadata.resourceVersion}`),
  );
  return seen;
}

/** The server's own event history of AccessGrants after `since`, in the same form. */
function history(c: EmulatedCluster, since: number): string[] {
  return c.server.storage
    .eventsSince(COLLECTION, since)
    .map((e) => `${e.type} ${e.object.metadata.name} ${e.object.metadata.resourceVersion}`);
}

/**
 * No event is delivered twice and each object's versions only grow (a DELETED found by a relist
 * carries the last version the store saw, so it may equal the one before it).
 */
function expectNoDuplicates(events: string[]): void {
  expect(new Set(events).size).toBe(events.length);
  const last = new Map<string, number>();
  for (const line of events) {
    const [type, name, rv] = line.split(' ');
    if (type === 'DELETED') expect(Number(rv), line).toBeGreaterThanOrEqual(last.get(name) ?? 0);
    else expect(Number(rv), line).toBeGreaterThan(last.get(name) ?? 0);
    last.set(name, Number(rv));
  }
}

async function expectCacheEqualsServer(store: KubeGrantStore, c: EmulatedCluster): Promise<void> {
  const strip = (gs: AccessGrant[]) =>
    gs
      .map((g) => ({ name: g.metadata.name, rv: g.metadata.resourceVersion, uid: g.metadata.uid }))
      .sort((a, b) => a.name.localeCompare(b.name));
  expect(strip(await store.list())).toEqual(strip(serverSide(c).list()));
}

const realSleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait in real time (bounded) for `cond`. */
async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await realSleep(10);
  }
}

const listRequests = (c: EmulatedCluster) =>
  c.server.requests.filter(
    (r) => r.method === 'GET' && /\/accessgrants(\?|$)/.test(r.url) && !/watch=true/.test(r.url),
  ).length;

describe('dropped watches', () => {
  it('resume from the last resourceVersion: every change in the gaps arrives once, in order, no relist', async () => {
    const c = await setup();
    const clock = new FakeClock(Date.now());
    const store = openStore(c);
    const writer = openStore(c);
    const events = record(store);
    await store.list();
    const start = c.server.storage.currentRevision;
    const direct = serverSide(c);
    for (let round = 0; round < 5; round++) {
      await writer.create(grant(`10.0.1.${round}`, clock));
      expect(c.server.faults.dropWatches()).toBe(1);
      // In the gap: the dropped watch no longer receives these.
      direct.create(grant(`10.0.2.${round}`, clock));
      direct.setPhase(`ssh-0a0001${round.toString(16).padStart(2, '0')}`, 'Active');
      if (round > 0) direct.remove(`ssh-0a0002${(round - 1).toString(16).padStart(2, '0')}`);
      await until(() => events.length === history(c, start).length, 'the store to catch up');
    }
    expect(events).toEqual(history(c, start));
    expect(events).toHaveLength(5 * 3 + 4);
    expect(listRequests(c)).toBe(1);
    await expectCacheEqualsServer(store, c);
  });

  it('a burst of writes with watches dropped in the middle of it: the exact history, once', async () => {
    const c = await setup();
    const clock = new FakeClock(Date.now());
    const store = openStore(c);
    const writer = openStore(c);
    const events = record(store);
    await store.list();
    const start = c.server.storage.currentRevision;
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      const g = grant(`10.0.3.${i}`, clock);
      writes.push(
        writer
          .create(g)
          .then(() => writer.updateStatus(g.metadata.name, { phase: 'Active' }))
          .then(() => (i % 3 === 0 ? writer.delete(g.metadata.name) : undefined)),
      );
      if (i % 8 === 4) c.server.faults.dropWatches();
      if (i % 5 === 0) await realSleep(5);
    }
    await Promise.all(writes);
    await until(() => events.length === history(c, start).length, 'the store to catch up');
    expect(events).toEqual(history(c, start));
    expectNoDuplicates(events);
    await expectCacheEqualsServer(store, c);
  });
});

describe('410 Gone after compaction', () => {
  it('relists: every object changed in the gap gets one event with its final state; none repeated', async () => {
    const c = await setup();
    const clock = new FakeClock(Date.now());
    const store = openStore(c);
    const events = record(store);
    for (const last of [1, 2, 3]) await store.create(grant(`10.0.4.${last}`, clock));
    await store.list();
    await until(() => events.length === 3, 'the first creates');
    const listsBefore = listRequests(c);
    const direct = serverSide(c);
    c.server.faults.dropWatches();
    direct.setPhase('ssh-0a000401', 'Active');
    direct.setPhase('ssh-0a000401', 'Revoked'); // two changes: one event with the final state
    direct.remove('ssh-0a000402');
    direct.create(grant('10.0.4.4', clock));
    direct.create(grant('10.0.4.5', clock));
    direct.remove('ssh-0a000405'); // created and gone within the gap: nothing to report
    c.server.storage.compact(); // the resume from the old resourceVersion now answers 410
    const rvOf = (name: string) =>
      direct.list().find((g) => g.metadata.name === name)?.metadata.resourceVersion;
    await until(() => events.length === 6, 'the relist');
    expect(events.slice(3).sort()).toEqual(
      [
        `MODIFIED ssh-0a000401 ${rvOf('ssh-0a000401')}`,
        `ADDED ssh-0a000404 ${rvOf('ssh-0a000404')}`,
        // Deleted while unseen: reported with the last state the store knew (as client-go does).
        `DELETED ssh-0a000402 ${events[1].split(' ')[2]}`,
      ].sort(),
    );
    expect(listRequests(c)).toBe(listsBefore + 1);
    expect((await store.get('ssh-0a000401'))?.status?.phase).toBe('Revoked');
    // And it keeps watching normally afterwards.
    await store.updateStatus('ssh-0a000403', { phase: 'Active' });
    expect(events.at(-1)).toMatch(/^MODIFIED ssh-0a000403 /);
    expect(events).toHaveLength(7);
    expectNoDuplicates(events);
    await expectCacheEqualsServer(store, c);
  });
});

describe('429 and 500', () => {
  it('the first list survives 429 (Retry-After) and 500, and then serves the cache', async () => {
    const c = await setup();
    const clock = new FakeClock(Date.now());
    serverSide(c).create(grant('10.0.5.1', clock));
    c.server.faults.fail({
      code: 429,
      count: 1,
      retryAfterSeconds: 1,
      method: 'GET',
      pathIncludes: 'accessgrants',
    });
    c.server.faults.fail({ code: 500, count: 2, method: 'GET', pathIncludes: 'accessgrants' });
    const store = openStore(c);
    expect((await store.list()).map((g) => g.metadata.name)).toEqual(['ssh-0a000501']);
    expect(store.cache.restarts).toBe(3);
  });

  it('watches failing with 500 and 429 after a drop: the changes in the gap still arrive once', async () => {
    const c = await setup();
    const clock = new FakeClock(Date.now());
    const store = openStore(c);
    const events = record(store);
    await store.list();
    const start = c.server.storage.currentRevision;
    c.server.faults.fail({ code: 500, count: 3, watch: true });
    c.server.faults.fail({ code: 429, count: 1, watch: true, retryAfterSeconds: 1 });
    c.server.faults.dropWatches();
    const direct = serverSide(c);
    direct.create(grant('10.0.6.1', clock));
    direct.create(grant('10.0.6.2', clock));
    direct.setPhase('ssh-0a000601', 'Active');
    await until(() => events.length === 3, 'the store to recover');
    expect(events).toEqual(history(c, start));
    expect(store.cache.restarts).toBeGreaterThanOrEqual(4);
    expect(listRequests(c)).toBe(1); // resumed, never relisted
  });

  it('writes retry 429 and 500 a bounded number of times, then fail in one line with nothing written', async () => {
    const c = await setup();
    const clock = new FakeClock(Date.now());
    const store = openStore(c, { requestAttempts: 4 });
    c.server.faults.fail({ code: 429, count: 2, method: 'POST', retryAfterSeconds: 1 });
    c.server.faults.fail({ code: 500, count: 1, method: 'POST' });
    await store.create(grant('10.0.7.1', clock));
    c.server.faults.fail({ code: 500, count: 2, method: 'PATCH' });
    clock.advance(5000);
    const extended = await store.extend(grant('10.0.7.1', clock));
    expect(Date.parse(extended.spec.expiresAt)).toBe(clock.now() + 600_000);
    c.server.faults.fail({ code: 500, count: 4, method: 'POST' });
    const posts = c.server.requests.filter((r) => r.method === 'POST').length;
    const err = await store.create(grant('10.0.7.2', clock)).catch((e: unknown) => e as KubeApiError);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err.message).toBe(
      'create accessgrant ssh-0a000702: Internal error occurred: injected by the emulator fault API (HTTP 500)',
    );
    expect(c.server.requests.filter((r) => r.method === 'POST').length - posts).toBe(4);
    expect(
      serverSide(c)
        .list()
        .map((g) => g.metadata.name),
    ).toEqual(['ssh-0a000701']);
  });

  it('no replay claim is granted twice while claims are throttled and failing', async () => {
    const c = await setup();
    const clock = new FakeClock(Date.now());
    const opts = {
      kubeConfig: c.kubeConfig,
      clock,
      requestAttempts: 12,
      requestBackoffInitialMs: 10,
      requestBackoffMaxMs: 50,
    };
    // Retry waits run on the real clock here: the FakeClock only dates the claims.
    const a = new KubeReplayStore({ ...opts, clock: undefined, node: 'node-a' });
    const b = new KubeReplayStore({ ...opts, clock: undefined, node: 'node-b' });
    c.server.faults.fail({ code: 429, count: 4, method: 'POST', retryAfterSeconds: 1 });
    c.server.faults.fail({ code: 500, count: 4, method: 'POST' });
    c.server.faults.fail({ code: 500, count: 3, method: 'GET', pathIncludes: 'replayclaims' });
    const digest = 'ab'.repeat(32);
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        (i % 2 ? a : b).claim(digest, new Date(Date.now() + 120_000), 'ssh'),
      ),
    );
    expect(results.filter((r) => r === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r === 'replay')).toHaveLength(15);
  });
});

describe('watches that keep ending right after they open', () => {
  it('are reopened with backoff, not in a tight loop, and no change is lost', async () => {
    const c = await setup();
    const clock = new FakeClock(Date.now());
    const store = openStore(c);
    const events = record(store);
    await store.list();
    const start = c.server.storage.currentRevision;
    const watchRequests = () => c.server.requests.filter((r) => /watch=true/.test(r.url)).length;
    const before = watchRequests();
    const direct = serverSide(c);
    // For one second, every watch is closed (cleanly) as soon as it is open.
    const stormEnd = Date.now() + 1000;
    for (let i = 0; Date.now() < stormEnd && i < 1000; i++) {
      c.server.faults.dropWatches();
      if (i === 10) direct.create(grant('10.0.11.1', clock));
      await realSleep(2);
    }
    direct.create(grant('10.0.11.2', clock));
    await until(() => events.length === 2, 'the store to catch up');
    expect(events).toEqual(history(c, start));
    // Backoff 50 ms doubling to 400 ms: a handful of reopenings, not hundreds.
    expect(watchRequests() - before).toBeLessThanOrEqual(12);
    expect(listRequests(c)).toBe(1);
  });
});

describe('periodic resync', () => {
  it('relists on its timer while writes go on: no duplicate, nothing missing at the end', async () => {
    const c = await setup();
    const clock = new FakeClock(Date.now());
    const store = openStore(c, { resyncIntervalMs: 150 });
    const writer = openStore(c);
    const events = record(store);
    await store.list();
    for (let i = 0; i < 20; i++) {
      const g = await writer.create(grant(`10.0.8.${i}`, clock));
      if (i % 2) await writer.updateStatus(g.metadata.name, { phase: 'Active' });
      if (i % 4 === 1) await writer.delete(g.metadata.name);
      await realSleep(25);
    }
    await until(() => listRequests(c) >= 4, 'a few resyncs');
    const final = serverSide(c).list();
    await until(
      () =>
        final.every((g) =>
          events.some((e) => e.endsWith(` ${g.metadata.name} ${g.metadata.resourceVersion}`)),
        ),
      'every final state to be reported',
    );
    expectNoDuplicates(events);
    await expectCacheEqualsServer(store, c);
  });
});

/**
 * A TCP relay to the emulator that can go silent on the connections it already has (bytes from the
 * server no longer forwarded, nothing closed): a half-open watch, as a dead NAT entry or load
 * balancer leaves it. New connections still go through.
 */
async function silentRelay(
  targetPort: number,
): Promise<{ port: number; silence(): void; close(): Promise<void> }> {
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    silence: () => {
      for (const [client, upstream] of pairs) {
        upstream.unpipe(client);
        upstream.pause();
      }
    },
    close: async () => {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a watch that goes silent without ending', () => {
  it('is replaced by the periodic resync, which relists what it missed (and without resync it stays stale)', async () => {
    const c = await setup();
    const clock = new FakeClock(Date.now());
    const relay = await silentRelay(c.server.port);
    closers.push(() => relay.close());
    const viaRelay = new KubeConfig();
    viaRelay.loadFromString(c.server.kubeconfig().replace(c.server.url, `https://127.0.0.1:${relay.port}`));
    const healing = openStore(c, { kubeConfig: viaRelay, resyncIntervalMs: 400 });
    const stale = openStore(c, { kubeConfig: viaRelay, resyncIntervalMs: 0 });
    const healed = record(healing);
    const missed = record(stale);
    await healing.list();
    await stale.list();
    const direct = serverSide(c);
    // Both watches are open and delivering before the relay goes silent.
    direct.create(grant('10.0.10.9', clock));
    await until(() => healed.length === 1 && missed.length === 1, 'both watches to deliver');
    relay.silence();
    direct.create(grant('10.0.10.1', clock));
    direct.create(grant('10.0.10.2', clock));
    direct.setPhase('ssh-0a000a01', 'Active');
    await until(() => healed.length === 3, 'the resync to report both grants');
    expect(
      healed
        .slice(1)
        .map((e) => e.split(' ').slice(0, 2).join(' '))
        .sort(),
    ).toEqual(['ADDED ssh-0a000a01', 'ADDED ssh-0a000a02']);
    expect((await healing.get('ssh-0a000a01'))?.status?.phase).toBe('Active');
    await expectCacheEqualsServer(healing, c);
    expect(missed).toHaveLength(1); // the same silent watch, no resync: nothing more arrives
    expectNoDuplicates(healed);
  });
});

describe('a 30-second full stop (fake clock)', () => {
  /** Advance the fake clock in steps, letting real I/O run between them, until `p` settles. */
  async function pump<T>(clock: FakeClock, p: Promise<T>, stepMs = 500, maxSteps = 400): Promise<T> {
    let settled = false;
    p.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (let i = 0; i < maxSteps && !settled; i++) {
      clock.advance(stepMs);
      await realSleep(5);
    }
    return p;
  }

  it('writes fail closed during it; afterwards the watch resumes with every change once, and no claim doubles', async () => {
    const clock = new FakeClock(Date.now());
    const c = await setup({ clock });
    // Default backoff (800 ms doubling to 30 s), on the fake clock.
    const store = new KubeGrantStore({ kubeConfig: c.kubeConfig, clock });
    closers.push(() => store.close());
    const claimsA = new KubeReplayStore({ kubeConfig: c.kubeConfig, clock, node: 'node-a' });
    const claimsB = new KubeReplayStore({ kubeConfig: c.kubeConfig, clock, node: 'node-b' });
    const events = record(store);
    await store.list();
    const start = c.server.storage.currentRevision;
    await store.create(grant('10.0.9.1', clock));

    const restarted = c.server.faults.stopFor(30_000);
    await realSleep(50); // the listener is closed and the watch connection cut
    const direct = serverSide(c);
    direct.create(grant('10.0.9.2', clock));
    direct.setPhase('ssh-0a000901', 'Active');

    const digest = 'cd'.repeat(32);
    const claimDuring = await pump(clock, claimsA.claim(digest, new Date(clock.now() + 120_000))).catch(
      (e: unknown) => e as Error,
    );
    expect(claimDuring).toBeInstanceOf(KubeApiError);
    expect((claimDuring as Error).message).toMatch(
      /^create replayclaim c[dc]+: API server unreachable: .*ECONNREFUSED/,
    );
    const createDuring = await pump(clock, store.create(grant('10.0.9.3', clock))).catch(
      (e: unknown) => e as Error,
    );
    expect(createDuring).toBeInstanceOf(KubeApiError);
    expect(events).toHaveLength(1); // nothing from the gap yet

    // Let the rest of the 30 s pass, then up to one longest backoff for the watch to come back.
    await pump(clock, restarted, 1000);
    const restartsDuringStop = store.cache.restarts;
    expect(restartsDuringStop).toBeGreaterThanOrEqual(3);
    expect(restartsDuringStop).toBeLessThanOrEqual(8); // backed off, not a tight loop
    await pump(
      clock,
      until(() => events.length === 3, 'the watch to resume', 20_000),
      1000,
    );
    expect(events).toEqual(history(c, start));
    expect(listRequests(c)).toBe(1); // resumed from the last resourceVersion
    await expectCacheEqualsServer(store, c);

    // The claim made during the stop never landed: exactly one node gets this digest now.
    const after = await pump(
      clock,
      Promise.all([
        claimsB.claim(digest, new Date(clock.now() + 120_000)),
        claimsA.claim(digest, new Date(clock.now() + 120_000)),
      ]),
    );
    expect(after.sort()).toEqual(['claimed', 'replay']);
    expect(await pump(clock, store.create(grant('10.0.9.3', clock)))).toMatchObject({
      metadata: { name: 'ssh-0a000903' },
    });
  });
});
