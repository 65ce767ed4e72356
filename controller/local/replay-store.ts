// LocalReplayStore: the ReplayStore of `knockgate standalone`. Used SPA digests (and used one-time
// knock sequences) are remembered until their expiresAt, across restarts, so a captured packet
// opens at most once.
//
// On disk: <state dir>/replay/log, one JSON line per claim ({"d":digest,"e":expiresAt ms,"p":policy}),
// appended and fdatasynced before claim() answers 'claimed' (claims issued together share one
// fdatasync). claimNow() answers at once from memory and hands back the append as a promise, for a
// caller that does its own work first (the standalone daemon's kernel change): the append may wait
// for a gate the caller opens when that work is done, so that the write's syscalls and the disk's
// journal do not take the two cores' time from it. At start and periodically the log is compacted:
// the live entries are written to a new
// file that replaces the log by rename (see durable-file.ts). A torn last line (a crash during an
// append that was never acknowledged) is dropped; any other broken line is reported with its line
// number and the damaged log is kept aside as log.<time>.corrupt.
//
// Bounded: at most maxEntries digests are remembered. When that many are still live, claim()
// throws ReplayStoreFullError and the caller refuses the packet: forgetting a live digest would let
// its packet be replayed, so the store fails closed instead.

import { open, readFile, copyFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock, type TimerHandle } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { ClaimResult, ReplayStore } from '../../api/store.js';
import { FILE_MODE, syncDir, writeFileDurably } from './durable-file.js';
import { LOCAL_STATE_DEFAULTS } from './limits.js';
import { StateDirError, type StateDir } from './state-dir.js';

const LOG_NAME = 'log';
const DIGEST_RE = /^[0-9a-f]{16,128}$/;

export class ReplayStoreFullError extends Error {}

export interface LocalReplayStoreOptions {
  clock?: Clock;
  logger?: Logger;
  /** Digests remembered at once (default LOCAL_STATE_DEFAULTS.maxReplayEntries). */
  maxEntries?: number;
  /** How often expired digests are dropped and the log compacted. */
  compactIntervalMs?: number;
}

interface Entry {
  expiresAt: number;
  policy?: string;
}

interface PendingAppend {
  line: string;
  resolve(): void;
  reject(err: Error): void;
}

export class LocalReplayStore implements ReplayStore {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly maxEntries: number;
  private readonly compactIntervalMs: number;
  private readonly logPath: string;
  private handle: FileHandle | undefined;
  /** Every file operation runs on this chain, one at a time (appends never race a compaction). */
  private io: Promise<void> = Promise.resolve();
  private pending: PendingAppend[] = [];
  private appendScheduled = false;
  private linesInLog = 0;
  private timer: TimerHandle | undefined;
  private closed = false;
  /** One line per problem found in the log at start (already logged). */
  readonly problems: string[] = [];

  private constructor(
    private readonly dir: string,
    opts: LocalReplayStoreOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger;
    this.maxEntries = opts.maxEntries ?? LOCAL_STATE_DEFAULTS.maxReplayEntries;
    this.compactIntervalMs = opts.compactIntervalMs ?? LOCAL_STATE_DEFAULTS.replayCompactIntervalMs;
    this.logPath = join(dir, LOG_NAME);
  }

  static async open(state: StateDir, opts: LocalReplayStoreOptions = {}): Promise<LocalReplayStore> {
    const store = new LocalReplayStore(state.replayDir, opts);
    await store.load();
    await store.compact();
    store.armCompaction();
    return store;
  }

  async claim(digest: string, expiresAt: Date, policy?: string): Promise<ClaimResult> {
    const claimed = this.claimNow(digest, expiresAt, policy);
    if (claimed.result === 'claimed') await claimed.durable;
    return claimed.result;
  }

  /**
   * The claim decided in memory at once (synchronously), its durable append still under way:
   * 'replay' when the digest is live here, else 'claimed' with `durable`, which resolves once the
   * line is fdatasynced and rejects when it could not be written. A caller that acts before
   * `durable` settles must undo what it did when it rejects, and must not record anything that
   * outlives a crash (a grant) before it resolves: see StandaloneDaemon.open(). Throws (the packet
   * is refused) when the store is closed, the input is invalid or the store is full.
   *
   * `writeAfter`: the append starts once it settles (either way). Appends stay in claim order, so a
   * gate holds back every later claim's write too: the caller must settle it soon, on every path.
   */
  claimNow(
    digest: string,
    expiresAt: Date,
    policy?: string,
    writeAfter?: Promise<unknown>,
  ): { result: 'replay' } | { result: 'claimed'; durable: Promise<void> } {
    if (this.closed) throw new Error(`replay store ${this.dir} is closed`);
    if (!DIGEST_RE.test(digest))
      throw new Error(`replay claim: digest is not 16-128 lowercase hex characters`);
    const end = expiresAt.getTime();
    if (!Number.isFinite(end)) throw new Error(`replay claim: expiresAt is not a valid time`);
    const now = this.clock.now();
    const known = this.entries.get(digest);
    if (known && known.expiresAt > now) return { result: 'replay' };
    if (known) this.entries.delete(digest);
    if (this.entries.size >= this.maxEntries) this.dropExpired(now);
    if (this.entries.size >= this.maxEntries)
      throw new ReplayStoreFullError(
        `replay store full: ${this.maxEntries} used SPA digests are still within their lifetime; refusing new packets until some expire`,
      );
    // Remembered before the write, so a concurrent claim of the same digest already sees 'replay';
    // kept even if the write fails (this process still refuses the packet).
    this.entries.set(digest, policy === undefined ? { expiresAt: end } : { expiresAt: end, policy });
    const durable = this.append(
      JSON.stringify(policy === undefined ? { d: digest, e: end } : { d: digest, e: end, p: policy }),
      writeAfter,
    );
    return { result: 'claimed', durable };
  }

  /** Digests currently remembered (live or not yet dropped). */
  get size(): number {
    return this.entries.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    await this.io;
    await this.handle?.close();
    this.handle = undefined;
  }

  // --- internals -------------------------------------------------------------------------------

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.logPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new StateDirError(`replay log ${this.logPath}: cannot read: ${(err as Error).message}`);
    }
    const lines = text.split('\n');
    // The text after the last newline is a torn append (never acknowledged) or empty.
    lines.pop();
    let damaged = false;
    lines.forEach((line, index) => {
      const entry = parseLine(line);
      if (!entry) {
        damaged = true;
        this.report(`replay log ${this.logPath}:${index + 1}: not a valid entry, skipped`);
        return;
      }
      const known = this.entries.get(entry.digest);
      if (!known || known.expiresAt < entry.expiresAt) this.entries.set(entry.digest, entry);
    });
    if (damaged) {
      const aside = `${this.logPath}.${this.clock.now()}.corrupt`;
      await copyFile(this.logPath, aside);
      this.report(`replay log ${this.logPath}: damaged lines found; the original is kept as ${aside}`);
    }
  }

  private report(line: string): void {
    this.problems.push(line);
    this.logger?.error({ event: 'state-file-error' }, line);
  }

  private dropExpired(now: number): void {
    for (const [digest, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(digest);
  }

  private append(line: string, writeAfter?: Promise<unknown>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ line, resolve, reject });
      if (writeAfter) {
        // Its own flush after the gate; an earlier flush may take this line with it.
        const gate = writeAfter.then(
          () => undefined,
          () => undefined,
        );
        this.io = this.io.then(() => gate).then(() => this.flushAppends());
        return;
      }
      if (this.appendScheduled) return;
      this.appendScheduled = true;
      this.io = this.io.then(() => this.flushAppends());
    });
  }

  /** Write every pending line with one write and one fdatasync (group commit). */
  private async flushAppends(): Promise<void> {
    this.appendScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      if (!this.handle) throw new Error('replay log is not open');
      await this.handle.write(batch.map((p) => p.line + '\n').join(''));
      await this.handle.datasync();
      this.linesInLog += batch.length;
      for (const p of batch) p.resolve();
    } catch (err) {
      const error = new Error(`replay log ${this.logPath}: cannot write: ${(err as Error).message}`);
      for (const p of batch) p.reject(error);
    }
  }

  /** Replace the log with the live entries only (write-and-rename), then append to the new file. */
  private async compact(): Promise<void> {
    this.dropExpired(this.clock.now());
    const lines = [...this.entries].map(([d, e]) =>
      JSON.stringify(e.policy === undefined ? { d, e: e.expiresAt } : { d, e: e.expiresAt, p: e.policy }),
    );
    await writeFileDurably(this.dir, LOG_NAME, lines.map((l) => l + '\n').join(''));
    // The old handle now points at the replaced file: appends must go to the new one. If the
    // reopen fails, claims fail (closed) until a compaction succeeds.
    const old = this.handle;
    this.handle = undefined;
    await old?.close();
    this.handle = await open(this.logPath, 'a', FILE_MODE);
    this.linesInLog = lines.length;
    await syncDir(this.dir);
  }

  private armCompaction(): void {
    this.timer = this.clock.setTimeout(() => {
      if (this.closed) return;
      this.dropExpired(this.clock.now());
      if (
        !this.handle ||
        this.linesInLog > this.entries.size + LOCAL_STATE_DEFAULTS.replayCompactSlackLines
      ) {
        this.io = this.io.then(() =>
          this.compact().catch((err: Error) =>
            this.logger?.error(
              { event: 'replay-compact-error' },
              `replay log ${this.logPath}: ${err.message}`,
            ),
          ),
        );
      }
      this.armCompaction();
    }, this.compactIntervalMs);
  }
}

function parseLine(line: string): ({ digest: string } & Entry) | undefined {
  try {
    const v = JSON.parse(line) as { d?: unknown; e?: unknown; p?: unknown };
    if (typeof v.d !== 'string' || !DIGEST_RE.test(v.d)) return undefined;
    if (typeof v.e !== 'number' || !Number.isFinite(v.e)) return undefined;
    if (v.p !== undefined && typeof v.p !== 'string') return undefined;
    return v.p === undefined ? { digest: v.d, expiresAt: v.e } : { digest: v.d, expiresAt: v.e, policy: v.p };
  } catch {
    return undefined;
  }
}
