// Defaults and bounds of the local state dir (standalone mode), in one place.

export const LOCAL_STATE_DEFAULTS = {
  /** Where `knockgate standalone` keeps grants and used SPA digests. */
  stateDir: '/var/lib/knockgate',
  /**
   * Grant files written at once in one group commit. Bounds open file descriptors and libuv
   * threadpool queueing; later operations wait for the next batch.
   */
  maxParallelFileWrites: 64,
  /** Operations folded into one group commit (one directory fsync), so the first one is acknowledged soon. */
  maxBatchOperations: 4096,
  /** Used SPA digests remembered at once. When full, new claims are refused (fail closed). */
  maxReplayEntries: 100_000,
  /** How often expired replay entries are dropped and the log compacted. */
  replayCompactIntervalMs: 60_000,
  /** The replay log is rewritten when it holds this many more lines than live entries. */
  replayCompactSlackLines: 4096,
} as const;
