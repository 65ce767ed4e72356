// The expiry engine on a FakeClock over a real LocalGrantStore: each grant expires once and on time,
// extension re-arms it, deletion cancels it, a replaced grant expires again, a failing store still
// closes the door, retention deletes history (bounded in count), the reconcile-on-start split, and
// 10,000 grants expiring together.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { GrantStore } from '../api/store.js';
import type { AccessGrant } from '../api/types.js';
import { ExpiryEngine, type ExpiryOptions } from '../controller/expiry/engine.js';
import { reconcileOnStart } from '../controller/expiry/reconcile.js';
import { buildGrant } from '../controller/grants/build.js';
import { LocalGrantStore } from '../controller/local/grant-store.js';
import { StateDir } from '../controller/local/state-dir.js';

let root: string;
let clock: FakeClock;
let state: StateDir;
let store: LocalGrantStore;
let engine: ExpiryEngine | undefined;
let closed: string[];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'knockgate-expiry-'));
  clock = new FakeClock();
  state = await StateDir.open(root);
  store = await LocalGrantStore.open(state, { clock });
  closed = [];
});

afterEach(async () => {
  engine?.stop();
  await engine?.settled();
  engine = undefined;
  await store.close();
  await state.close();
  await rm(root, { recursive: true, force: true });
});

function grant(source: string, seconds: number): AccessGrant {
  return buildGrant(
    { kind: 'grant', policy: 'ssh', method: 'knock', source, ports: ['22/tcp'], durationSeconds: seconds },
    { clock, node: 'host-a' },
  );
}

async function startEngine(over: Partial<ExpiryOptions> = {}): Promise<ExpiryEngine> {
  engine = new ExpiryEngine({
    store,
    clock,
    onExpire: (g) => void closed.push(g.metadata.name),
    sweepIntervalMs: 10_000,
    retentionSeconds: 3600,
    ...over,
  });
  await engine.start();
  return engine;
}

/** Move the fake clock and wait for the work it set off (store writes are real I/O). */
async function advance(ms: number): Promise<void> {
  clock.advance(ms);
  await engine?.settled();
}

const phase = async (name: string) => (await store.get(name))?.status?.phase;

describe('expiry engine', () => {
  it('expires each grant exactly once, on time, and marks it Expired', async () => {
    await store.create(grant('10.0.0.2', 60));
    await store.create(grant('10.0.0.3', 120));
    await startEngine();
    await advance(59_999);
    expect(closed).toEqual([]);
    expect(await phase('ssh-0a000002')).toBeUndefined();
    await advance(1);
    expect(closed).toEqual(['ssh-0a000002']);
    expect(await phase('ssh-0a000002')).toBe('Expired');
    await advance(60_000);
    expect(closed).toEqual(['ssh-0a000002', 'ssh-0a000003']);
    await advance(30_000); // sweeps run meanwhile: nothing fires twice
    expect(closed).toEqual(['ssh-0a000002', 'ssh-0a000003']);
  });

  it('tracks grants created after start', async () => {
    await startEngine();
    await store.create(grant('10.0.0.2', 5));
    await advance(5_000);
    expect(closed).toEqual(['ssh-0a000002']);
  });

  it('re-arms on extend', async () => {
    await startEngine();
    await store.create(grant('10.0.0.2', 60));
    await advance(30_000);
    await store.extend(grant('10.0.0.2', 60)); // now ends at 90 s
    await advance(30_000);
    expect(closed).toEqual([]);
    await advance(29_999);
    expect(closed).toEqual([]);
    await advance(1);
    expect(closed).toEqual(['ssh-0a000002']);
  });

  it('cancels on delete', async () => {
    await startEngine();
    await store.create(grant('10.0.0.2', 60));
    await store.delete('ssh-0a000002');
    await advance(120_000);
    expect(closed).toEqual([]);
  });

  it('expires a grant that replaced an expired one, once more', async () => {
    await startEngine();
    await store.create(grant('10.0.0.2', 60));
    await advance(60_000);
    await store.extend(grant('10.0.0.2', 60)); // replaces the Expired grant
    expect(await phase('ssh-0a000002')).toBeUndefined();
    await advance(60_000);
    expect(closed).toEqual(['ssh-0a000002', 'ssh-0a000002']);
  });

  it('does not expire a Revoked grant (already closed) but retains and deletes it', async () => {
    await startEngine();
    await store.create(grant('10.0.0.2', 60));
    await store.updateStatus('ssh-0a000002', { phase: 'Revoked' });
    await advance(60_000);
    expect(closed).toEqual([]);
    await advance(3600_000);
    expect(await store.get('ssh-0a000002')).toBeUndefined();
  });

  it('expires at start what fell due while the daemon was down', async () => {
    await store.create(grant('10.0.0.2', 60));
    await store.create(grant('10.0.0.3', 600));
    clock.advance(120_000);
    await startEngine();
    await engine?.settled();
    expect(closed).toEqual(['ssh-0a000002']);
    expect(await phase('ssh-0a000002')).toBe('Expired');
  });

  it('keeps expired grants for the retention, then deletes them', async () => {
    await startEngine();
    await store.create(grant('10.0.0.2', 60));
    await advance(60_000);
    await advance(3600_000 - 1);
    expect(await phase('ssh-0a000002')).toBe('Expired');
    await advance(1);
    expect(await store.get('ssh-0a000002')).toBeUndefined();
  });

  it('bounds the history in count, deleting the oldest first', async () => {
    await startEngine({ maxRetained: 2 });
    for (let i = 0; i < 4; i++) await store.create(grant(`10.0.0.${i + 2}`, 10 + i));
    await advance(20_000);
    await engine?.settled();
    expect(closed).toHaveLength(4);
    expect((await store.list()).map((g) => g.metadata.name)).toEqual(['ssh-0a000004', 'ssh-0a000005']);
  });

  it('closes the door even when the store cannot record the expiry, then records it later', async () => {
    let failures = 1;
    const flaky: GrantStore & { expireIfDue: LocalGrantStore['expireIfDue'] } = {
      create: (g) => store.create(g),
      extend: (g) => store.extend(g),
      get: (n) => store.get(n),
      list: () => store.list(),
      watch: (fn) => store.watch(fn),
      updateStatus: (n, s) => store.updateStatus(n, s),
      delete: (n) => store.delete(n),
      expireIfDue: (name, uid, now) =>
        failures-- > 0 ? Promise.reject(new Error('disk full')) : store.expireIfDue(name, uid, now),
    };
    await startEngine({ store: flaky });
    await store.create(grant('10.0.0.2', 60));
    await advance(60_000);
    expect(closed).toEqual(['ssh-0a000002']);
    expect(await phase('ssh-0a000002')).toBeUndefined();
    await advance(10_000); // the sweep retries the mark; the door is not closed twice
    expect(await phase('ssh-0a000002')).toBe('Expired');
    expect(closed).toEqual(['ssh-0a000002']);
  });

  it('works on a store without conditional expiry (the generic GrantStore interface)', async () => {
    const generic: GrantStore = {
      create: (g) => store.create(g),
      extend: (g) => store.extend(g),
      get: (n) => store.get(n),
      list: () => store.list(),
      watch: (fn) => store.watch(fn),
      updateStatus: (n, s) => store.updateStatus(n, s),
      delete: (n) => store.delete(n),
    };
    await startEngine({ store: generic });
    await store.create(grant('10.0.0.2', 60));
    await advance(60_000);
    await advance(60_000);
    expect(closed).toEqual(['ssh-0a000002']);
    expect(await phase('ssh-0a000002')).toBe('Expired');
  });

  it('arms one timer for many grants', async () => {
    for (let i = 0; i < 100; i++) await store.create(grant(`10.0.1.${i}`, 60 + i));
    await startEngine();
    expect(clock.pending()).toBe(2); // the earliest expiry and the sweep
  });
});

describe('reconcile on start', () => {
  it('splits grants into live ones to reapply and the rest, which must hold no firewall entry', () => {
    const live = grant('10.0.0.2', 60);
    const overdue = grant('10.0.0.3', 10);
    const revoked = { ...grant('10.0.0.4', 600), status: { phase: 'Revoked' as const } };
    const unparsable = grant('10.0.0.5', 60);
    unparsable.spec.expiresAt = 'soon';
    clock.advance(30_000);
    const { live: up, expired } = reconcileOnStart([live, overdue, revoked, unparsable], clock);
    expect(up.map((g) => g.metadata.name)).toEqual(['ssh-0a000002']);
    expect(expired.map((g) => g.metadata.name)).toEqual(['ssh-0a000003', 'ssh-0a000004', 'ssh-0a000005']);
  });
});

describe('10,000 grants', () => {
  it('all expire once, on time, and are deleted after the retention', async () => {
    const grants = Array.from({ length: 10_000 }, (_, i) =>
      grant(`10.3.${i >> 8}.${i & 255}`, 60 + (i % 60)),
    );
    const t0 = performance.now();
    await Promise.all(grants.map((g) => store.create(g)));
    console.log(`created in ${Math.round(performance.now() - t0)} ms`);
    await startEngine();
    const started = performance.now();
    await advance(59_000);
    expect(closed).toHaveLength(0);
    await advance(61_000);
    const expireMs = performance.now() - started;
    expect(closed).toHaveLength(10_000);
    expect(new Set(closed).size).toBe(10_000);
    expect((await store.list()).every((g) => g.status?.phase === 'Expired')).toBe(true);
    const t2 = performance.now();
    await advance(3600_000);
    expect(await store.list()).toHaveLength(0);
    expect(closed).toHaveLength(10_000);
    console.log(`deleted in ${Math.round(performance.now() - t2)} ms`);
    console.log(`10,000 grants expired and marked on disk in ${Math.round(expireMs)} ms`);
  });
});
