// LocalGrantStore on a real state dir under os.tmpdir(): the GrantStore contract (create, extend,
// replace after expiry, updateStatus, delete, watch order), persistence across a simulated restart,
// crash leftovers and corrupt files, permissions, the state-dir lock, and 10,000 grants on disk.

import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import { AlreadyExistsError, NotFoundError, type GrantEvent } from '../api/store.js';
import type { AccessGrant } from '../api/types.js';
import { buildGrant } from '../controller/grants/build.js';
import { LocalGrantStore, loadGrantDir } from '../controller/local/grant-store.js';
import { StateDir, StateDirError } from '../controller/local/state-dir.js';

let root: string;
let clock: FakeClock;
const opened: { close(): Promise<void> }[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'knockgate-store-'));
  clock = new FakeClock();
});

afterEach(async () => {
  for (const thing of opened.splice(0).reverse()) await thing.close();
  await rm(root, { recursive: true, force: true });
});

async function openStore(dir = root): Promise<{ state: StateDir; store: LocalGrantStore }> {
  const state = await StateDir.open(dir);
  opened.push(state);
  const store = await LocalGrantStore.open(state, { clock });
  opened.push(store);
  return { state, store };
}

/** Simulated restart: close everything (as a clean stop would) and open the same dir again. */
async function restart(): Promise<LocalGrantStore> {
  for (const thing of opened.splice(0).reverse()) await thing.close();
  return (await openStore()).store;
}

function knockGrant(source: string, seconds = 60, ports = ['22/tcp']): AccessGrant {
  return buildGrant(
    { kind: 'grant', policy: 'ssh', method: 'knock', source, ports, durationSeconds: seconds },
    { clock, node: 'host-a' },
  );
}

describe('LocalGrantStore contract', () => {
  it('creates, refuses a second create of the same name, and reads back', async () => {
    const { store } = await openStore();
    const created = await store.create(knockGrant('10.0.0.2'));
    expect(created.metadata.name).toBe('ssh-0a000002');
    expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata.creationTimestamp).toBe(new Date(clock.now()).toISOString());
    await expect(store.create(knockGrant('10.0.0.2'))).rejects.toBeInstanceOf(AlreadyExistsError);
    expect(await store.get('ssh-0a000002')).toEqual(created);
    expect((await store.list()).map((g) => g.metadata.name)).toEqual(['ssh-0a000002']);
    expect(await store.get('ssh-0a000003')).toBeUndefined();
  });

  it('lets exactly one of two concurrent creates of one name win', async () => {
    const { store } = await openStore();
    const results = await Promise.allSettled([
      store.create(knockGrant('10.0.0.2')),
      store.create(knockGrant('10.0.0.2')),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('ignores status on create, as the Kubernetes status subresource does', async () => {
    const { store } = await openStore();
    const grant = { ...knockGrant('10.0.0.2'), status: { phase: 'Active' as const } };
    expect((await store.create(grant)).status).toBeUndefined();
  });

  it('rejects a malformed grant with one line naming it and the field', async () => {
    const { store } = await openStore();
    const bad = knockGrant('10.0.0.2');
    bad.spec.source = '10.0.0.0/24';
    await expect(store.create(bad)).rejects.toThrow(
      'accessgrant ssh-0a000002: spec.source "10.0.0.0/24" is not a single host',
    );
    const badName = knockGrant('10.0.0.2');
    badName.metadata.name = '../escape';
    await expect(store.create(badName)).rejects.toThrow(/not a lowercase DNS-1123 name/);
    expect(await readdir(join(root, 'grants'))).toEqual([]);
  });

  it('extend pushes a live grant later, never earlier, and unions ports', async () => {
    const { store } = await openStore();
    const first = await store.create(knockGrant('10.0.0.2', 60));
    clock.advance(30_000);
    const later = await store.extend(knockGrant('10.0.0.2', 60));
    expect(Date.parse(later.spec.expiresAt)).toBe(Date.parse(first.spec.expiresAt) + 30_000);
    expect(later.metadata.uid).toBe(first.metadata.uid);
    expect(later.metadata.generation).toBe(2);
    const shorter = await store.extend(knockGrant('10.0.0.2', 1));
    expect(shorter.spec.expiresAt).toBe(later.spec.expiresAt);
    const morePorts = await store.extend(knockGrant('10.0.0.2', 1, ['80/tcp']));
    expect(morePorts.spec.ports).toEqual(['22/tcp', '80/tcp']);
    expect(morePorts.spec.expiresAt).toBe(later.spec.expiresAt);
  });

  it('extend creates an absent grant and replaces an Expired, Revoked or Failed one (no lock-out)', async () => {
    const { store } = await openStore();
    const created = await store.extend(knockGrant('10.0.0.2'));
    for (const phase of ['Expired', 'Revoked', 'Failed'] as const) {
      const old = await store.updateStatus(created.metadata.name, { phase });
      clock.advance(120_000);
      const replaced = await store.extend(knockGrant('10.0.0.2', 60));
      expect(replaced.metadata.uid).not.toBe(old.metadata.uid);
      expect(replaced.status).toBeUndefined();
      expect(Date.parse(replaced.spec.expiresAt)).toBe(clock.now() + 60_000);
    }
  });

  it('updateStatus merges maps key by key and conditions by type; unknown names are NotFound', async () => {
    const { store } = await openStore();
    const { metadata } = await store.create(knockGrant('10.0.0.2'));
    const since = new Date(clock.now()).toISOString();
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
    await expect(store.updateStatus('nope', { phase: 'Active' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.delete('nope')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('watch delivers ADDED, MODIFIED, DELETED in the order the mutations were issued', async () => {
    const { store } = await openStore();
    const events: string[] = [];
    const stop = store.watch((e: GrantEvent) =>
      events.push(`${e.type} ${e.grant.metadata.name} ${e.grant.status?.phase ?? '-'}`),
    );
    // Issued together: one group commit, still in order.
    await Promise.all([
      store.create(knockGrant('10.0.0.2')),
      store.create(knockGrant('10.0.0.3')),
      store.updateStatus('ssh-0a000002', { phase: 'Active' }),
      store.delete('ssh-0a000003'),
    ]);
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

  it('a watcher that throws does not break the store or other watchers', async () => {
    const { store } = await openStore();
    const seen: string[] = [];
    store.watch(() => {
      throw new Error('boom');
    });
    store.watch((e) => seen.push(e.type));
    await store.create(knockGrant('10.0.0.2'));
    expect(seen).toEqual(['ADDED']);
  });
});

describe('LocalGrantStore on disk', () => {
  it('survives a restart: grants, extensions, statuses and deletions are all on disk', async () => {
    const { store } = await openStore();
    const a = await store.create(knockGrant('10.0.0.2'));
    await store.create(knockGrant('fd00::2'));
    await store.create(knockGrant('10.0.0.9'));
    clock.advance(5000);
    const extended = await store.extend(knockGrant('10.0.0.2'));
    await store.updateStatus(a.metadata.name, { phase: 'Active' });
    await store.delete('ssh-0a000009');
    const again = await restart();
    expect(again.problems).toEqual([]);
    const names = (await again.list()).map((g) => g.metadata.name);
    expect(names).toEqual(['ssh-0a000002', 'ssh-fd000000000000000000000000000002']);
    const back = await again.get(a.metadata.name);
    expect(back?.spec.expiresAt).toBe(extended.spec.expiresAt);
    expect(back?.status?.phase).toBe('Active');
    // resourceVersion keeps growing after a restart.
    const updated = await again.updateStatus(a.metadata.name, { message: 'x' });
    expect(Number(updated.metadata.resourceVersion)).toBeGreaterThan(Number(back?.metadata.resourceVersion));
  });

  it('ignores and removes a torn temp file left by a crash', async () => {
    const { store } = await openStore();
    await store.create(knockGrant('10.0.0.2'));
    await writeFile(
      join(root, 'grants', '.ssh-0a000003.json.tmp-4242-0'),
      '{"apiVersion":"knockgate.io/v1al',
    );
    const again = await restart();
    expect((await again.list()).map((g) => g.metadata.name)).toEqual(['ssh-0a000002']);
    expect(again.problems).toEqual([]);
    expect(await readdir(join(root, 'grants'))).toEqual(['ssh-0a000002.json']);
  });

  it('quarantines a corrupt or invalid grant file, reports it in one line, and never opens it', async () => {
    const { store } = await openStore();
    await store.create(knockGrant('10.0.0.2'));
    const good = await readFile(join(root, 'grants', 'ssh-0a000002.json'), 'utf8');
    await writeFile(join(root, 'grants', 'ssh-0a000003.json'), good.slice(0, 40));
    await writeFile(join(root, 'grants', 'ssh-0a000004.json'), good.replace('10.0.0.2/32', '0.0.0.0/0'));
    await writeFile(join(root, 'grants', 'ssh-0a000005.json'), good); // holds another grant's name
    const again = await restart();
    expect((await again.list()).map((g) => g.metadata.name)).toEqual(['ssh-0a000002']);
    const byFile = (f: string) => again.problems.find((p) => p.startsWith(join(root, 'grants', f)));
    expect(byFile('ssh-0a000003.json')).toMatch(
      /: not valid JSON .*; quarantined as .*ssh-0a000003\.json\.\d+\.corrupt, grant not opened$/,
    );
    expect(byFile('ssh-0a000004.json')).toMatch(
      /spec\.source "0\.0\.0\.0\/0" is not a single host; quarantined/,
    );
    expect(byFile('ssh-0a000005.json')).toMatch(/holds grant ssh-0a000002, not ssh-0a000005; quarantined/);
    for (const line of again.problems) expect(line).not.toMatch(/\n/);
    const files = await readdir(join(root, 'grants'));
    expect(files.filter((f) => f.endsWith('.corrupt'))).toHaveLength(3);
    // Next start: still not opened, still reported (until someone removes them).
    const third = await restart();
    expect((await third.list()).map((g) => g.metadata.name)).toEqual(['ssh-0a000002']);
    expect(third.problems.filter((p) => p.includes('quarantined earlier'))).toHaveLength(3);
  });

  it('loadGrantDir for read-only callers reports but changes nothing', async () => {
    const { store } = await openStore();
    await store.create(knockGrant('10.0.0.2'));
    await writeFile(join(root, 'grants', 'ssh-0a000003.json'), '{');
    const loaded = await loadGrantDir(join(root, 'grants'), { quarantine: false });
    expect(loaded.grants.map((g) => g.metadata.name)).toEqual(['ssh-0a000002']);
    expect(loaded.problems).toEqual([expect.stringMatching(/ssh-0a000003\.json: not valid JSON/)]);
    expect((await readdir(join(root, 'grants'))).sort()).toEqual(['ssh-0a000002.json', 'ssh-0a000003.json']);
  });

  it('writes files 0600 in dirs 0700', async () => {
    const { store } = await openStore(join(root, 'state'));
    await store.create(knockGrant('10.0.0.2'));
    expect((await stat(join(root, 'state'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(root, 'state', 'grants'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(root, 'state', 'grants', 'ssh-0a000002.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(root, 'state', 'lock'))).mode & 0o777).toBe(0o600);
  });

  it('refuses a state dir others can write to', async () => {
    const shared = join(root, 'shared');
    await (await import('node:fs/promises')).mkdir(shared, { mode: 0o777 });
    await (await import('node:fs/promises')).chmod(shared, 0o777);
    await expect(StateDir.open(shared)).rejects.toThrow(
      `state dir ${shared}: writable by group or others (mode 777); want 700`,
    );
  });
});

describe('state dir lock', () => {
  it('refuses a second owner while the first runs, and frees the dir on close', async () => {
    const first = await StateDir.open(root);
    await expect(StateDir.open(root)).rejects.toThrow(`state dir ${root} is in use by pid ${process.pid}`);
    await expect(StateDir.open(root)).rejects.toBeInstanceOf(StateDirError);
    await first.close();
    const second = await StateDir.open(root);
    await second.close();
  });

  it('takes over a stale lock whose process is gone', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    await writeFile(join(root, 'lock'), `${dead.stdout}\n`, { mode: 0o600 });
    const state = await StateDir.open(root);
    expect((await readFile(join(root, 'lock'), 'utf8')).trim()).toBe(String(process.pid));
    await state.close();
    expect(await readdir(root)).not.toContain('lock');
  });
});

describe('10,000 grants on disk', () => {
  it('creates 10,000 grants concurrently, all acknowledged on disk, and reads them back', async () => {
    const { store } = await openStore();
    const grants = Array.from({ length: 10_000 }, (_, i) => knockGrant(`10.1.${i >> 8}.${i & 255}`));
    const started = performance.now();
    await Promise.all(grants.map((g) => store.create(g)));
    const concurrentMs = performance.now() - started;
    expect(await readdir(join(root, 'grants'))).toHaveLength(10_000);
    const again = await restart();
    expect(await again.list()).toHaveLength(10_000);
    console.log(`10,000 concurrent creates on ${tmpdir()}: ${Math.round(concurrentMs)} ms`);
  });

  it('creates 1,000 grants one after another (each acknowledged before the next)', async () => {
    const { store } = await openStore();
    const started = performance.now();
    for (let i = 0; i < 1000; i++) await store.create(knockGrant(`10.2.${i >> 8}.${i & 255}`));
    console.log(`1,000 sequential creates on ${tmpdir()}: ${Math.round(performance.now() - started)} ms`);
    expect(await store.list()).toHaveLength(1000);
  });
});
