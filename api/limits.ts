// Every default and bound of the API in one place.

export const DEFAULTS = {
  /** knockd seq_timeout default. */
  sequenceTimeoutSeconds: 15,
  /** fwknopd MAX_SPA_PACKET_AGE default. */
  maxPacketAgeSeconds: 120,
  /** Clock skew allowed on top of maxPacketAgeSeconds when a replay claim's lifetime is computed. */
  replayClockSkewSeconds: 60,
  /** knockd cmd_timeout default / fwknopd FW_ACCESS_TIMEOUT default. */
  durationSeconds: 30,
  /** Sources the knock matcher tracks at once; the oldest is evicted first. */
  maxTrackedSources: 65_536,
  /** Expired grants stay listed this long (a recent history). */
  retentionSeconds: 24 * 3600,
} as const;

export const BOUNDS = {
  /** Longest knock sequence. */
  maxSequenceLength: 64,
  maxSequenceTimeoutSeconds: 3600,
  /** No grant lasts longer than a week. */
  maxDurationSeconds: 7 * 24 * 3600,
  maxPacketAgeSeconds: 24 * 3600,
  maxPortsPerGrant: 64,
} as const;

/** Bounds on lists in a policy or settings object, so that a config can never make state unbounded. */
export const LIST_BOUNDS = {
  maxOneTimeSequences: 1024,
  maxAllowedSources: 256,
  maxSecurityGroups: 16,
  /** Nodes a grant's targets may name. */
  maxTargetNodes: 10_000,
  /** alwaysAllow / neverGrant / protectedPorts / interfaces in a StandaloneConfig. */
  maxSettingsEntries: 1024,
} as const;
