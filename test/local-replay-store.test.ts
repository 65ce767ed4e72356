// LocalReplayStore on a real state dir: a used SPA digest is refused again, also after a restart,
// forgotten after its expiresAt, the log survives a torn append and reports damaged lines, and a
// full store refuses new claims (fail closed) instead of forgetting live ones; claimNow answers from
// memory at once and reports its durable write separately.

import { appendFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import { LocalReplayStore, ReplayStoreFullError } from '../controller/local/replay-store.js';
import { StateDir } from '../controller/local/state-dir.js';

let root: string;
let clock: FakeClock;
let state: StateDir | undefined;
let store: LocalReplayStore | undefined;

const digest = (n: number) => n.toString(16).padStart(64, '0');
const inSeconds = (s: number) => new Date(clock.now() + s * 1000);

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'knockgate-replay-'));
  clock = new FakeClock();
});

afterEach(async () => {
  await store?.close();
  await state?.close();
  store = state = undefined;
  await rm(root, { recursive: true, force: true });
});

async function open(
  opts: { maxEntries?: number; compactIntervalMs?: number } = {},
): Promise<LocalReplayStore> {
  await store?.close();
  await state?.close();
  state = await StateDir.open(root);
  store = await LocalReplayStore.open(state, { clock, ...opts });
  return store;
}

describe('LocalReplayStore', () => {
  it('claims a digest once; the second claim is a replay', async () => {
    const s = await open();
    expect(await s.claim(digest(1), inSeconds(180), 'ssh')).toBe('claimed');
    expect(await s.claim(digest(1), inSeconds(180), 'ssh')).toBe('replay');
    expect(await s.claim(digest(2), inSeconds(180))).toBe('claimed');
  });

  it('of two concurrent claims of one digest exactly one wins', async () => {
    const s = await open();
    const results = await Promise.all([s.claim(digest(7), inSeconds(60)), s.claim(digest(7), inSeconds(60))]);
    expect(results.sort()).toEqual(['claimed', 'replay']);
  });

  it('still refuses a used digest after a restart', async () => {
    const s = await open();
    await s.claim(digest(1), inSeconds(180), 'ssh');
    const again = await open();
    expect(again.problems).toEqual([]);
    expect(await again.claim(digest(1), inSeconds(180), 'ssh')).toBe('replay');
  });

  it('forgets a digest after its expiresAt, also across a restart', async () => {
    const s = await open();
    await s.claim(digest(1), inSeconds(100));
    await s.claim(digest(2), inSeconds(300));
    clock.advance(99_000);
    expect(await s.claim(digest(1), inSeconds(100))).toBe('replay');
    clock.advance(1_000);
    const again = await open();
    expect(again.size).toBe(1); // digest 1 dropped at load, digest 2 still live
    expect(await again.claim(digest(2), inSeconds(100))).toBe('replay');
    expect(await again.claim(digest(1), inSeconds(100))).toBe('claimed');
  });

  it('drops a torn last line (an unacknowledged append) and keeps everything before it', async () => {
    const s = await open();
    await s.claim(digest(1), inSeconds(180));
    await s.close();
    await appendFile(join(root, 'replay', 'log'), `{"d":"${digest(2)}","e":`);
    const again = await open();
    expect(again.problems).toEqual([]);
    expect(await again.claim(digest(1), inSeconds(180))).toBe('replay');
    expect(await again.claim(digest(2), inSeconds(180))).toBe('claimed');
  });

  it('reports a damaged line with file:line, keeps the valid entries and the damaged log aside', async () => {
    const s = await open();
    await s.claim(digest(1), inSeconds(180));
    await s.close();
    await appendFile(
      join(root, 'replay', 'log'),
      `garbage\n{"d":"${digest(3)}","e":${clock.now() + 180_000}}\n`,
    );
    const again = await open();
    expect(again.problems[0]).toBe(`replay log ${join(root, 'replay', 'log')}:2: not a valid entry, skipped`);
    expect(again.problems[1]).toMatch(/damaged lines found; the original is kept as .*log\.\d+\.corrupt$/);
    expect(await again.claim(digest(1), inSeconds(180))).toBe('replay');
    expect(await again.claim(digest(3), inSeconds(180))).toBe('replay');
    expect((await readdir(join(root, 'replay'))).filter((f) => f.endsWith('.corrupt'))).toHaveLength(1);
  });

  it('refuses new claims when full of live digests, and accepts again once some expire', async () => {
    const s = await open({ maxEntries: 3 });
    await s.claim(digest(1), inSeconds(10));
    await s.claim(digest(2), inSeconds(60));
    await s.claim(digest(3), inSeconds(60));
    await expect(s.claim(digest(4), inSeconds(60))).rejects.toThrow(
      'replay store full: 3 used SPA digests are still within their lifetime; refusing new packets until some expire',
    );
    await expect(s.claim(digest(4), inSeconds(60))).rejects.toBeInstanceOf(ReplayStoreFullError);
    // A known digest is still recognised as a replay when full.
    expect(await s.claim(digest(2), inSeconds(60))).toBe('replay');
    clock.advance(10_000);
    expect(await s.claim(digest(4), inSeconds(60))).toBe('claimed');
    expect(await s.claim(digest(2), inSeconds(60))).toBe('replay');
  });

  it('rejects a malformed digest or time instead of recording it', async () => {
    const s = await open();
    await expect(s.claim('ABCDEF0123456789', inSeconds(60))).rejects.toThrow(
      /digest is not 16-128 lowercase hex/,
    );
    await expect(s.claim(digest(1), new Date(NaN))).rejects.toThrow(/expiresAt is not a valid time/);
  });

  it('compacts the log periodically on the clock, dropping expired entries', async () => {
    const s = await open({ compactIntervalMs: 60_000 });
    for (let i = 0; i < 5000; i++) await s.claim(digest(i + 1), inSeconds(30));
    await s.claim(digest(99_999), inSeconds(3600));
    const before = (await stat(join(root, 'replay', 'log'))).size;
    clock.advance(60_000); // all but one expired: the compaction rewrites the log
    await s.close(); // waits for the compaction
    const text = await readFile(join(root, 'replay', 'log'), 'utf8');
    expect(text.trim().split('\n')).toHaveLength(1);
    expect(text.length).toBeLessThan(before / 1000);
    const again = await open();
    expect(await again.claim(digest(99_999), inSeconds(60))).toBe('replay');
  });

  it('claimNow decides in memory at once; its durable write lands in the log', async () => {
    const s = await open();
    const first = s.claimNow(digest(3), inSeconds(60), 'ssh');
    // Before the write has settled, the same digest is already a replay.
    expect(s.claimNow(digest(3), inSeconds(60), 'ssh')).toEqual({ result: 'replay' });
    expect(first.result).toBe('claimed');
    if (first.result === 'claimed') await first.durable;
    const text = await readFile(join(root, 'replay', 'log'), 'utf8');
    expect(text).toContain(digest(3));
    const again = await open();
    expect(await again.claim(digest(3), inSeconds(60))).toBe('replay');
  });

  it('claimNow with writeAfter: nothing is written before the gate opens, then the line lands', async () => {
    const s = await open();
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    const claimed = s.claimNow(digest(6), inSeconds(60), 'ssh', gate);
    expect(claimed.result).toBe('claimed');
    let settled = false;
    if (claimed.result === 'claimed') void claimed.durable.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    expect(await readFile(join(root, 'replay', 'log'), 'utf8').catch(() => '')).not.toContain(digest(6));
    // A later claim without a gate stays in order: it is written once the gate opens, not before.
    const later = s.claim(digest(7), inSeconds(60));
    openGate();
    if (claimed.result === 'claimed') await claimed.durable;
    expect(await later).toBe('claimed');
    const text = await readFile(join(root, 'replay', 'log'), 'utf8');
    expect(text.indexOf(digest(6))).toBeGreaterThanOrEqual(0);
    expect(text.indexOf(digest(7))).toBeGreaterThan(text.indexOf(digest(6)));
  });

  it('claimNow: a write that fails rejects durable, and the digest stays refused here', async () => {
    const s = await open();
    // The log's file handle closed underneath the store: the append fails as an I/O error would.
    await (s as unknown as { handle: { close(): Promise<void> } }).handle.close();
    const claimed = s.claimNow(digest(4), inSeconds(60));
    expect(claimed.result).toBe('claimed');
    if (claimed.result === 'claimed') await expect(claimed.durable).rejects.toThrow(/cannot write/);
    expect(s.claimNow(digest(4), inSeconds(60))).toEqual({ result: 'replay' });
    await expect(s.claim(digest(5), inSeconds(60))).rejects.toThrow(/cannot write/);
  });

  it('writes the log 0600', async () => {
    const s = await open();
    await s.claim(digest(1), inSeconds(60));
    expect((await stat(join(root, 'replay', 'log'))).mode & 0o777).toBe(0o600);
  });
});
