// Deadlines on the Kubernetes API (controller/kube/request.ts, paced-watch.ts): a request to a
// server that accepts and never answers fails with one line naming the verb and the resource, as a
// retryable error, so the callers' retries and the informer's backoff carry on once the server
// answers again; a watch that goes silent (a connection that stopped forwarding, no event and no
// bookmark) is reopened from its resourceVersion without waiting for the next relist. Real clock
// with short deadlines; outcomes are awaited with generous bounds.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../api/clock.js';
import type { KnockPolicy } from '../api/types.js';
import { loadKubeConfig } from '../controller/kube/client.js';
import { KubeApiError } from '../controller/kube/errors.js';
import { KubeInformer, type CachedObject } from '../controller/kube/informer.js';
import { KUBE_STORE_DEFAULTS } from '../controller/kube/limits.js';
import { applyRequestTimeout, requestTimeoutOf } from '../controller/kube/request.js';
import { ResourceClient } from '../controller/kube/resource-client.js';
import { startEmulatedCluster, type EmulatedCluster } from './helpers/kube-store-emulator.js';
import { waitFor } from './helpers/wait.js';

type Policy = KnockPolicy & CachedObject;

let emu: EmulatedCluster;
let admin: ResourceClient<KnockPolicy>;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  emu = await startEmulatedCluster({ bookmarkIntervalMs: 300 });
  admin = new ResourceClient<KnockPolicy>(emu.kubeConfig, 'knockpolicies', 'knockpolicy', {
    clock: systemClock,
  });
});

afterEach(async () => {
  emu.server.faults.clear();
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await emu?.stop();
});

function kubeConfig(server = emu.server.url): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(emu.server.kubeconfig().replace(emu.server.url, server));
  return kc;
}

/** A TCP listener that accepts connections and never says a word (counts them). */
async function silentListener(): Promise<{ url: string; accepted: () => number }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as { port: number }).port;
  return { url: `https://127.0.0.1:${port}`, accepted: () => accepted };
}

/**
 * A TCP proxy to the emulator whose open connections can be frozen (nothing forwarded either way,
 * the sockets stay open: a half-open path); connections opened after the freeze work.
 */
async function freezableProxy(target: number): Promise<{ url: string; freeze: () => number }> {
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of pair) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    await new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    freeze: () => {
      const n = pairs.size;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      pairs.clear(); // frozen for good: they are no longer forwarded (closed at cleanup by their sockets)
      return n;
    },
  };
}

function createPolicy(name: string): Promise<KnockPolicy> {
  return admin.create(name, {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name },
    spec: {
      knock: { sequence: ['1000/tcp', '2000/tcp'] },
      grant: { ports: ['22/tcp'], durationSeconds: 60 },
    },
  } as unknown as KnockPolicy);
}

function informer(kc: KubeConfig, opts: { idleMs: number }): KubeInformer<Policy> {
  const client = new ResourceClient<KnockPolicy>(kc, 'knockpolicies', 'knockpolicy', {
    clock: systemClock,
    attempts: 1,
  });
  const inf = new KubeInformer<Policy>({
    kubeConfig: kc,
    path: client.path,
    list: () => client.list(),
    resource: 'knockpolicies',
    clock: systemClock,
    backoffInitialMs: 100,
    backoffMaxMs: 500,
    resyncIntervalMs: 0, // only the idle detection can rescue a silent watch here
    watchIdleTimeoutMs: opts.idleMs,
  });
  cleanups.push(() => inf.stop());
  return inf;
}

describe('request deadlines (request.ts)', () => {
  it('loadKubeConfig bounds every request by default; applyRequestTimeout is idempotent and checked', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-timeout-'));
    try {
      const file = join(dir, 'kubeconfig');
      writeFileSync(file, emu.server.kubeconfig(), { mode: 0o600 });
      expect(requestTimeoutOf(loadKubeConfig({ kubeconfig: file }))).toBe(
        KUBE_STORE_DEFAULTS.requestTimeoutMs,
      );
      expect(KUBE_STORE_DEFAULTS.requestTimeoutMs).toBe(10_000);
      const kc = loadKubeConfig({ kubeconfig: file, requestTimeoutMs: 2_500 });
      expect(requestTimeoutOf(kc)).toBe(2_500);
      applyRequestTimeout(kc, 700);
      expect(requestTimeoutOf(kc)).toBe(700);
      expect(() => applyRequestTimeout(kc, 0)).toThrow(/request timeout 0 ms: want 1 ms to 1 h/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a listener that accepts and says nothing: each attempt fails at the deadline, retried, one line naming the request', async () => {
    const silent = await silentListener();
    const kc = applyRequestTimeout(kubeConfig(silent.url), 300);
    const client = new ResourceClient<KnockPolicy>(kc, 'knockpolicies', 'knockpolicy', {
      clock: systemClock,
      attempts: 3,
      initialMs: 50,
      maxMs: 100,
    });
    const started = Date.now();
    const err = await client.get('ssh').then(
      () => undefined,
      (e: unknown) => e,
    );
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(KubeApiError);
    const e = err as KubeApiError;
    expect(e.message).toBe(
      'get knockpolicy ssh: timed out: no answer from the API server within the request timeout',
    );
    expect(e.message).not.toContain('\n');
    expect(e.status).toBe(0);
    expect(e.reason).toBe('ETIMEDOUT');
    expect(silent.accepted()).toBe(3); // every attempt, each aborted at its deadline
    expect(took).toBeGreaterThanOrEqual(3 * 300);
    expect(took).toBeLessThan(15_000);
  });

  it('without the deadline the same request is still hanging (what the deadline prevents)', async () => {
    const silent = await silentListener();
    const client = new ResourceClient<KnockPolicy>(kubeConfig(silent.url), 'knockpolicies', 'knockpolicy', {
      clock: systemClock,
      attempts: 1,
    });
    const outcome = await Promise.race([
      client.get('ssh').then(
        () => 'answered',
        () => 'failed',
      ),
      new Promise((r) => setTimeout(() => r('hanging'), 1_500)),
    ]);
    expect(outcome).toBe('hanging');
  });

  it('an emulator that stops answering: the request times out, and the retry succeeds once it answers again', async () => {
    const kc = applyRequestTimeout(kubeConfig(), 400);
    await createPolicy('hung-then-fine');
    const client = new ResourceClient<KnockPolicy>(kc, 'knockpolicies', 'knockpolicy', {
      clock: systemClock,
      attempts: 4,
      initialMs: 200,
      maxMs: 300,
    });
    emu.server.faults.setLatency(600_000);
    const pending = client.get('hung-then-fine');
    // The first attempt hangs on the server; it is aborted at 400 ms and retried after the fault is off.
    await new Promise((r) => setTimeout(r, 250));
    emu.server.faults.setLatency(0);
    const got = await pending;
    expect(got?.metadata.name).toBe('hung-then-fine');
    const gets = emu.server.requests.filter(
      (r) => r.method === 'GET' && r.url.includes('/knockpolicies/hung-then-fine'),
    );
    expect(gets.length).toBeGreaterThanOrEqual(1);
  });

  it("the informer's list times out and its backoff carries on until the server answers", async () => {
    const kc = applyRequestTimeout(kubeConfig(), 300);
    await createPolicy('listed-after-hang');
    emu.server.faults.setLatency(600_000);
    const inf = informer(kc, { idleMs: 0 });
    inf.start();
    await waitFor(() => inf.lastError !== undefined, { timeoutMs: 10_000, what: 'a failed list' });
    expect(inf.lastError!.message).toBe(
      'list/watch knockpolicies: timed out: no answer from the API server within the request timeout',
    );
    expect(inf.isSynced).toBe(false);
    emu.server.faults.setLatency(0);
    await inf.waitForSync(15_000);
    expect(inf.get('listed-after-hang')).toBeDefined();
    expect(inf.restarts).toBeGreaterThanOrEqual(1);
  });
});

describe('silent watches (paced-watch.ts)', () => {
  it('a watch whose connection stops forwarding is reopened after the idle timeout and catches up', async () => {
    const proxy = await freezableProxy(emu.server.port);
    const watched = informer(applyRequestTimeout(kubeConfig(proxy.url), 2_000), { idleMs: 1_500 });
    const blind = informer(applyRequestTimeout(kubeConfig(proxy.url), 2_000), { idleMs: 0 });
    watched.start();
    blind.start();
    await Promise.all([watched.waitForSync(10_000), blind.waitForSync(10_000)]);
    // Both watches open (the first event proves it), then every connection is frozen.
    await createPolicy('before-freeze');
    await waitFor(
      () => watched.get('before-freeze') !== undefined && blind.get('before-freeze') !== undefined,
      {
        timeoutMs: 10_000,
        what: 'both informers see the first policy',
      },
    );
    expect(proxy.freeze()).toBeGreaterThanOrEqual(2);
    await createPolicy('after-freeze');
    await waitFor(() => watched.get('after-freeze') !== undefined, {
      timeoutMs: 15_000,
      what: 'the informer with idle detection sees the policy created after the freeze',
    });
    expect(watched.idleRestarts).toBeGreaterThanOrEqual(1);
    // Without idle detection (and without a resync) the frozen watch never hears of it.
    expect(blind.get('after-freeze')).toBeUndefined();
    expect(blind.idleRestarts).toBe(0);
  });

  it('a healthy watch with bookmarks is not reopened, and watches ask for bookmarks', async () => {
    const inf = informer(applyRequestTimeout(kubeConfig(), 2_000), { idleMs: 1_500 });
    inf.start();
    await inf.waitForSync(10_000);
    await new Promise((r) => setTimeout(r, 3_500)); // > 2 idle timeouts, bookmarks every 300 ms
    expect(inf.idleRestarts).toBe(0);
    expect(inf.restarts).toBe(0);
    const watches = emu.server.requests.filter(
      (r) => r.url.includes('/knockpolicies?') && r.url.includes('watch=true'),
    );
    expect(watches.length).toBeGreaterThan(0);
    expect(watches.every((r) => r.url.includes('allowWatchBookmarks=true'))).toBe(true);
  });
});
