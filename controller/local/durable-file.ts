// Crash-safe file writes: write a temp file in the same directory, fsync it, rename it over the
// target, fsync the directory. A crash leaves either the old file or the new one, never a torn one;
// at worst a temp file (named `.<name>.tmp-…`) is left behind, which the loaders ignore and remove.

import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Mode of every file knockgate writes in its state dir: grants and digests are root's business. */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

const TEMP_MARK = '.tmp-';
let tempCounter = 0;

/** True for the temp files writeFileDurably makes (leftovers of a crash). */
export function isTempFileName(fileName: string): boolean {
  return fileName.startsWith('.') && fileName.includes(TEMP_MARK);
}

/**
 * Write `data` to dir/fileName atomically (temp + fsync + rename). The rename is durable only once
 * the directory is fsynced: call syncDir (or a DirSyncer) before acknowledging.
 */
export async function writeFileDurably(dir: string, fileName: string, data: string): Promise<void> {
  const temp = join(dir, `.${fileName}${TEMP_MARK}${process.pid}-${tempCounter++}`);
  const handle = await open(temp, 'wx', FILE_MODE);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, join(dir, fileName));
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

/** fsync a directory, making the renames and unlinks done in it durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Coalesces directory fsyncs: every caller of sync() is resolved by an fsync that *started after*
 * its call, and callers that arrive while one runs share the next one (group commit).
 */
export class DirSyncer {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    if (!this.running) {
      this.running = syncDir(this.dir).finally(() => (this.running = undefined));
      return this.running;
    }
    if (!this.next) {
      const after = this.running.catch(() => undefined);
      this.next = after.then(() => {
        this.next = undefined;
        return this.sync();
      });
    }
    return this.next;
  }
}
