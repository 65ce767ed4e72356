// LocalGrantStore: the GrantStore of `knockgate standalone`, one JSON file per grant in
// <state dir>/grants/<name>.json.
//
// Why one file per grant: a change rewrites a few hundred bytes, not every grant (10,000 grants in
// one file would make each create rewrite megabytes), and a damaged file costs one grant, which is
// quarantined, not the whole store.
//
// Durability contract: a mutation (create, extend, updateStatus, delete) resolves only once its
// result is on disk: the grant file written to a temp file, fsynced, renamed over the old one, and
// the directory fsynced. Mutations issued concurrently are group-committed: their files are written
// in parallel and share one directory fsync, so 10,000 concurrent creates cost 10,000 small file
// fsyncs and a few directory fsyncs. A crash leaves each file either old or new, never torn; temp
// files left behind are removed at the next start. Reads (get, list) and watch events only ever
// show committed state, and events are delivered in the order the mutations were issued.
//
// When a write fails (disk full, I/O error) the mutation is rejected and the in-memory state keeps
// the old grant; if only the directory fsync failed, the new file may still surface after a crash
// (a grant that was never acknowledged, which then expires on its own).
//
// As on Kubernetes (status subresource), create and extend ignore `status`: status changes only
// through updateStatus.

import { randomUUID } from 'node:crypto';
import { readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import {
  AlreadyExistsError,
  NotFoundError,
  type GrantEvent,
  type GrantStore,
  type WatchEventType,
} from '../../api/store.js';
import type { AccessGrant, AccessGrantStatus } from '../../api/types.js';
import { expiresAtMs, isLive, isTerminal } from '../grants/phase.js';
import { expiredStatus, mergeStatus } from '../grants/status.js';
import { checkGrant, checkGrantName, unionPorts, validGrantCopy } from '../grants/validate.js';
import { forEachLimit } from './concurrency.js';
import { DirSyncer, isTempFileName, writeFileDurably } from './durable-file.js';
import { LOCAL_STATE_DEFAULTS } from './limits.js';
import { StateDirError, type StateDir } from './state-dir.js';

const GRANT_SUFFIX = '.json';
const QUARANTINE_SUFFIX = '.corrupt';

export interface LocalGrantStoreOptions {
  clock?: Clock;
  logger?: Logger;
}

/** What one mutation does to the grant of its name. */
interface Change {
  /** The grant after the change; null = deleted; undefined = nothing changed. */
  next: AccessGrant | null | undefined;
  event?: WatchEventType;
  result: AccessGrant | undefined;
}

interface PendingOp {
  name: string;
  apply(current: AccessGrant | undefined): Change;
  resolve(value: AccessGrant | undefined): void;
  reject(err: Error): void;
}

export class LocalGrantStore implements GrantStore {
  private readonly grants = new Map<string, AccessGrant>();
  private readonly watchers = new Set<(event: GrantEvent) => void>();
  private readonly dirSyncer: DirSyncer;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private queue: PendingOp[] = [];
  private flushing: Promise<void> | undefined;
  private resourceVersion = 0;
  private closed = false;
  /** One line per state file that could not be used at start (already logged). */
  readonly problems: string[] = [];

  private constructor(
    private readonly dir: string,
    opts: LocalGrantStoreOptions,
  ) {
    this.dirSyncer = new DirSyncer(dir);
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger;
  }

  /** Load the grants of a locked state dir. Corrupt files are quarantined and listed in `problems`. */
  static async open(state: StateDir, opts: LocalGrantStoreOptions = {}): Promise<LocalGrantStore> {
    const store = new LocalGrantStore(state.grantsDir, opts);
    const loaded = await loadGrantDir(state.grantsDir, { quarantine: true });
    for (const grant of loaded.grants) {
      store.grants.set(grant.metadata.name, grant);
      store.resourceVersion = Math.max(store.resourceVersion, Number(grant.metadata.resourceVersion) || 0);
    }
    for (const line of loaded.problems) {
      store.problems.push(line);
      store.logger?.error({ event: 'state-file-error' }, line);
    }
    return store;
  }

  // --- reads -----------------------------------------------------------------------------------

  async get(name: string): Promise<AccessGrant | undefined> {
    const grant = this.grants.get(name);
    return grant && structuredClone(grant);
  }

  async list(): Promise<AccessGrant[]> {
    return [...this.grants.values()].map((g) => structuredClone(g));
  }

  watch(onEvent: (event: GrantEvent) => void): () => void {
    this.watchers.add(onEvent);
    return () => void this.watchers.delete(onEvent);
  }

  // --- mutations -------------------------------------------------------------------------------

  async create(grant: AccessGrant): Promise<AccessGrant> {
    const fresh = this.fresh(grant);
    return this.enqueueDefined(fresh.metadata.name, (current) => {
      if (current) throw new AlreadyExistsError(fresh.metadata.name);
      return { next: fresh, event: 'ADDED', result: fresh };
    });
  }

  /**
   * Create, or extend a live grant of the same name. `status`, when given, is recorded with a new
   * grant in the same write (the standalone daemon records an opened grant as Active in one fsync'd
   * write, not a create then a status update).
   */
  async extend(grant: AccessGrant, status?: AccessGrantStatus): Promise<AccessGrant> {
    const fresh = this.fresh(grant);
    if (status) fresh.status = structuredClone(status);
    return this.enqueueDefined(fresh.metadata.name, (current) => {
      if (!current) return { next: fresh, event: 'ADDED', result: fresh };
      if (isTerminal(current)) {
        // Replace the history entry: a new grant of the same name (never a lock-out).
        return { next: fresh, event: 'MODIFIED', result: fresh };
      }
      const later = Math.max(expiresAtMs(current), expiresAtMs(fresh));
      const ports = unionPorts(current.spec.ports, fresh.spec.ports);
      if (later === expiresAtMs(current) && ports.length === current.spec.ports.length)
        return { next: undefined, result: current };
      const next: AccessGrant = structuredClone(current);
      next.spec.expiresAt = new Date(later).toISOString();
      next.spec.ports = ports;
      next.metadata.generation = (current.metadata.generation ?? 1) + 1;
      next.metadata.resourceVersion = String(++this.resourceVersion);
      return { next, event: 'MODIFIED', result: next };
    });
  }

  async updateStatus(name: string, status: AccessGrantStatus): Promise<AccessGrant> {
    return this.enqueueDefined(name, (current) => {
      if (!current) throw new NotFoundError(name);
      const next: AccessGrant = { ...current, status: mergeStatus(current.status, status) };
      next.metadata = { ...current.metadata, resourceVersion: String(++this.resourceVersion) };
      return { next, event: 'MODIFIED', result: next };
    });
  }

  /**
   * Mark a grant Expired only if it is still the same grant (uid), still live-phased and due at
   * `now`: a grant extended or replaced meanwhile is left alone. Resolves to the expired grant, or
   * undefined when there was nothing to expire. (Used by the expiry engine to close the race between
   * its timer and a repeated knock.)
   */
  async expireIfDue(name: string, uid: string | undefined, now: number): Promise<AccessGrant | undefined> {
    return this.enqueue(name, (current) => {
      if (!current || current.metadata.uid !== uid || isTerminal(current) || isLive(current, now))
        return { next: undefined, result: undefined };
      const next: AccessGrant = {
        ...current,
        metadata: { ...current.metadata, resourceVersion: String(++this.resourceVersion) },
        status: mergeStatus(current.status, expiredStatus(now)),
      };
      return { next, event: 'MODIFIED', result: next };
    });
  }

  async delete(name: string): Promise<void> {
    await this.enqueue(name, (current) => {
      if (!current) throw new NotFoundError(name);
      return { next: null, event: 'DELETED', result: current };
    });
  }

  /** Finish pending writes and refuse further mutations. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await this.flushing;
  }

  // --- internals -------------------------------------------------------------------------------

  /** A validated copy of `grant` with store-assigned metadata and no status. */
  private fresh(grant: AccessGrant): AccessGrant {
    const copy = validGrantCopy(grant);
    copy.metadata = {
      ...copy.metadata,
      uid: randomUUID(),
      generation: 1,
      creationTimestamp: new Date(this.clock.now()).toISOString(),
      resourceVersion: String(++this.resourceVersion),
    };
    return copy;
  }

  private async enqueueDefined(name: string, apply: PendingOp['apply']): Promise<AccessGrant> {
    return (await this.enqueue(name, apply)) as AccessGrant;
  }

  private enqueue(name: string, apply: PendingOp['apply']): Promise<AccessGrant | undefined> {
    if (this.closed) return Promise.reject(new Error(`grant store ${this.dir} is closed`));
    try {
      checkGrantName(name);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ name, apply, resolve, reject });
      // A microtask later, so that mutations issued together share one commit.
      if (!this.flushing) this.flushing = Promise.resolve().then(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        await this.commitBatch(this.queue.splice(0, LOCAL_STATE_DEFAULTS.maxBatchOperations));
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async commitBatch(batch: PendingOp[]): Promise<void> {
    // Apply in order against committed state plus the batch's own earlier changes.
    const staged = new Map<string, AccessGrant | null>();
    const outcomes: { op: PendingOp; change?: Change; error?: Error }[] = [];
    for (const op of batch) {
      const current = staged.has(op.name) ? (staged.get(op.name) ?? undefined) : this.grants.get(op.name);
      try {
        const change = op.apply(current);
        if (change.next !== undefined) staged.set(op.name, change.next);
        outcomes.push({ op, change });
      } catch (err) {
        outcomes.push({ op, error: err as Error });
      }
    }

    const failed = new Map<string, Error>();
    await forEachLimit([...staged], LOCAL_STATE_DEFAULTS.maxParallelFileWrites, async ([name, grant]) => {
      try {
        if (grant) await writeFileDurably(this.dir, name + GRANT_SUFFIX, JSON.stringify(grant));
        else await unlinkIfPresent(join(this.dir, name + GRANT_SUFFIX));
      } catch (err) {
        failed.set(name, err as Error);
      }
    });
    if (staged.size > failed.size) {
      try {
        await this.dirSyncer.sync();
      } catch (err) {
        for (const name of staged.keys()) failed.set(name, err as Error);
      }
    }

    for (const [name, grant] of staged) {
      if (failed.has(name)) continue;
      if (grant) this.grants.set(name, grant);
      else this.grants.delete(name);
    }

    for (const { op, change, error } of outcomes) {
      const writeError = failed.get(op.name);
      if (error) op.reject(error);
      else if (writeError && change?.next !== undefined)
        op.reject(new Error(`state dir ${this.dir}: cannot write grant ${op.name}: ${writeError.message}`));
      else {
        op.resolve(change?.result && structuredClone(change.result));
        if (change?.event && change.result) this.emit({ type: change.event, grant: change.result });
      }
    }
  }

  private emit(event: GrantEvent): void {
    for (const watcher of this.watchers) {
      try {
        watcher({ type: event.type, grant: structuredClone(event.grant) });
      } catch (err) {
        this.logger?.error(
          { event: 'watch-handler-error', grant: event.grant.metadata.name },
          (err as Error).message,
        );
      }
    }
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export interface LoadedGrants {
  grants: AccessGrant[];
  /** One line per file that could not be used: what and where. */
  problems: string[];
}

/**
 * Read every grant file of `dir`. Crash leftovers (temp files) are ignored, and removed when
 * `quarantine` is set. A file that cannot be read or is not a valid grant is never used: with
 * `quarantine` it is renamed to *.corrupt so the next start does not trip on it again. Without
 * `quarantine` nothing is changed (read-only callers such as `knockgate grants`).
 */
export async function loadGrantDir(dir: string, opts: { quarantine: boolean }): Promise<LoadedGrants> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new StateDirError(`state dir ${dir}: cannot read: ${(err as Error).message}`);
  }
  const grants: AccessGrant[] = [];
  const problems: string[] = [];
  const grantFiles: string[] = [];
  for (const fileName of names) {
    if (isTempFileName(fileName)) {
      if (opts.quarantine) await unlinkIfPresent(join(dir, fileName)).catch(() => undefined);
    } else if (fileName.endsWith(QUARANTINE_SUFFIX)) {
      problems.push(`${join(dir, fileName)}: quarantined earlier, not used (inspect and remove it)`);
    } else if (fileName.endsWith(GRANT_SUFFIX)) {
      grantFiles.push(fileName);
    } else {
      problems.push(`${join(dir, fileName)}: not a grant file, ignored`);
    }
  }
  await forEachLimit(grantFiles, LOCAL_STATE_DEFAULTS.maxParallelFileWrites, async (fileName) => {
    const path = join(dir, fileName);
    try {
      const grant = checkGrant(JSON.parse(await readFile(path, 'utf8')));
      if (`${grant.metadata.name}${GRANT_SUFFIX}` !== fileName)
        throw new Error(`holds grant ${grant.metadata.name}, not ${fileName.slice(0, -GRANT_SUFFIX.length)}`);
      grants.push(grant);
    } catch (err) {
      problems.push(`${path}: ${oneLine(err)}${opts.quarantine ? await quarantine(path) : ''}`);
    }
  });
  grants.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return { grants, problems };
}

async function quarantine(path: string): Promise<string> {
  const target = `${path}.${Date.now()}${QUARANTINE_SUFFIX}`;
  try {
    await rename(path, target);
    return `; quarantined as ${target}, grant not opened`;
  } catch (err) {
    return `; could not quarantine (${(err as Error).message}), grant not opened`;
  }
}

function oneLine(err: unknown): string {
  const text = err instanceof SyntaxError ? `not valid JSON (${err.message})` : (err as Error).message;
  return text.replace(/\s+/g, ' ');
}
