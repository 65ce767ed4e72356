// The standalone state dir: where grants and used SPA digests live, owned by one daemon at a time.
//
// Layout:   <dir>/lock            pid of the daemon that owns the dir
//           <dir>/grants/*.json   one AccessGrant per file (LocalGrantStore)
//           <dir>/replay/log      used SPA digests, JSON lines (LocalReplayStore)
//
// The lock is a pid file made with link(2), which fails when the name exists, so the file appears
// with its content in one step; a lock whose pid no longer runs is stale and taken over.

import { link, lstat, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DIR_MODE, FILE_MODE, syncDir } from './durable-file.js';

export class StateDirError extends Error {}

/** Where `knockgate standalone` keeps its state unless told otherwise. */
export const DEFAULT_STATE_DIR = '/var/lib/knockgate';

const LOCK_NAME = 'lock';

/** Check (or create) a directory that only its owner may write: refuse anything others could plant files in. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
  } catch (err) {
    throw new StateDirError(`state dir ${dir}: cannot create: ${(err as Error).message}`);
  }
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new StateDirError(`state dir ${dir}: not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new StateDirError(`state dir ${dir}: owned by uid ${st.uid}, not by this process (uid ${uid})`);
  if ((st.mode & 0o022) !== 0)
    throw new StateDirError(
      `state dir ${dir}: writable by group or others (mode ${(st.mode & 0o777).toString(8)}); want 700`,
    );
}

/** Is a process with this pid running (or at least present)? */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parsePid(text: string): number | undefined {
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export class StateDir {
  private released = false;

  private constructor(
    readonly path: string,
    private readonly lockPath: string,
  ) {}

  get grantsDir(): string {
    return join(this.path, 'grants');
  }

  get replayDir(): string {
    return join(this.path, 'replay');
  }

  /** Open `path` for exclusive use by this process. Throws StateDirError (one line) when it cannot. */
  static async open(path: string): Promise<StateDir> {
    await ensurePrivateDir(path);
    const lockPath = join(path, LOCK_NAME);
    await takeLock(path, lockPath);
    const dir = new StateDir(path, lockPath);
    try {
      await ensurePrivateDir(dir.grantsDir);
      await ensurePrivateDir(dir.replayDir);
    } catch (err) {
      await dir.close();
      throw err;
    }
    return dir;
  }

  /** Release the lock (only if it is still ours). */
  async close(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const text = await readFile(this.lockPath, 'utf8').catch(() => '');
    if (parsePid(text) === process.pid) await unlink(this.lockPath).catch(() => undefined);
  }
}

async function takeLock(dir: string, lockPath: string): Promise<void> {
  const temp = join(dir, `.${LOCK_NAME}.tmp-${process.pid}`);
  const handle = await open(temp, 'w', FILE_MODE);
  try {
    await handle.writeFile(`${process.pid}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    // Two attempts: the second after a stale lock was moved aside.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(temp, lockPath);
        await syncDir(dir);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      await clearStaleLock(dir, lockPath);
    }
    throw new StateDirError(`state dir ${dir}: could not take ${lockPath}`);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Throws when the lock belongs to a running process; moves a stale one aside. */
async function clearStaleLock(dir: string, lockPath: string): Promise<void> {
  const text = await readFile(lockPath, 'utf8').catch(() => undefined);
  if (text === undefined) return; // vanished meanwhile: just retry
  const pid = parsePid(text);
  if (pid !== undefined && pidAlive(pid))
    throw new StateDirError(
      `state dir ${dir} is in use by pid ${pid} (${lockPath}); stop that knockgate first, or remove the lock file if no knockgate runs`,
    );
  // rename is atomic: of two processes finding the same stale lock, one moves it; the other's
  // rename fails and it simply retries the link.
  const aside = `${lockPath}.stale-${process.pid}`;
  try {
    await rename(lockPath, aside);
  } catch {
    return;
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  const movedPid = parsePid(moved);
  if (movedPid !== undefined && movedPid !== pid && pidAlive(movedPid)) {
    // Someone took the lock between our read and our rename: put it back and give up.
    await link(aside, lockPath).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    throw new StateDirError(`state dir ${dir} is in use by pid ${movedPid} (${lockPath})`);
  }
  await unlink(aside).catch(() => undefined);
}
