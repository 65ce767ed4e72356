// Defaults and bounds of the Kubernetes stores, in one place.

export const KUBE_STORE_DEFAULTS = {
  /** First wait before restarting a failed list or watch; doubles up to watchBackoffMaxMs. */
  watchBackoffInitialMs: 800,
  /** Longest wait between list/watch attempts (client-go's reflector uses 30 s as well). */
  watchBackoffMaxMs: 30_000,
  /** A watch that ends without an error sooner than this after opening makes the next one back off. */
  watchMinLifetimeMs: 1_000,
  /**
   * How often the informer relists from scratch. A watch can stop delivering without ending (a
   * half-open connection): the relist replaces it and turns whatever was missed into events.
   */
  resyncIntervalMs: 5 * 60_000,
  /** get()/list() wait this long for the informer's first list before failing. */
  initialSyncTimeoutMs: 30_000,
  /** A mutation waits this long for the informer to show it (read-your-writes) before resolving anyway. */
  cacheCatchUpTimeoutMs: 5_000,
  /**
   * Deadline of one API request (not of a watch), from sending it to the end of the answer: a server
   * or proxy that accepts and never answers fails the request instead of hanging it. Like
   * kubectl's --request-timeout, but on by default.
   */
  requestTimeoutMs: 10_000,
  /**
   * A watch that delivers nothing (no event, no bookmark; bookmarks are requested, and real servers
   * send one about every minute) for this long is taken for a dead connection and reopened from its
   * resourceVersion. 0 = never.
   */
  watchIdleTimeoutMs: 120_000,
  /** Attempts of one API request that fails with 429, 5xx or a refused/reset connection. */
  requestAttempts: 4,
  /** First wait between those attempts; doubles each time. */
  requestBackoffInitialMs: 200,
  /** Cap on a server's Retry-After and on the wait between request attempts. */
  requestBackoffMaxMs: 2_000,
  /** Optimistic-concurrency retries (409 on a stale resourceVersion) of extend/updateStatus/claim. */
  conflictAttempts: 8,
  /**
   * Generations of a grant name an extend reads before giving up (generations.ts): history entries
   * of the same request kept for retention, and other nodes' live grants of a shared name, each
   * take one. The controller keeps fewer history entries per name than this (reconciler).
   */
  maxGenerations: 32,
} as const;
