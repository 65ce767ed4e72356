// Defaults and bounds of `knockgate sniffer`, in one place.

export const SNIFFER_DEFAULTS = {
  /**
   * Live grants one policy may hold through this sniffer at once. A flood of spoofed sources
   * completing a sniffed knock sequence costs at most this many AccessGrants per node and policy.
   */
  maxLiveGrantsPerPolicy: 256,
  /** Grant writes (creations and extensions) per second, sustained (token bucket rate). */
  grantsPerSecond: 10,
  /** Grant writes allowed in a burst (token bucket size). */
  grantsBurst: 20,
  /** Refusal log lines per second at most; the rest are only counted (metrics count every one). */
  refusalLogsPerSecond: 20,
  /** Used SPA packets remembered locally (in front of the cluster-wide ReplayClaims). */
  maxLocalReplayClaims: 100_000,
  /** How often the watches' health is checked (metric and log on a change). */
  healthIntervalMs: 5_000,
  /** start() waits this long for the first list of policies, nodes and Secrets. */
  initialSyncTimeoutMs: 30_000,
} as const;

export const SNIFFER_BOUNDS = {
  maxLiveGrantsPerPolicy: 100_000,
  grantsPerSecond: 10_000,
  grantsBurst: 100_000,
} as const;
