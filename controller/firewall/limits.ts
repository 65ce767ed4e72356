// Every default, bound and kernel-object name of the firewall module, in one place.

import type { FirewallBackend } from '../../api/standalone.js';

/**
 * Live grants per backend unless configured. nftables and ipset keep grants in hash sets (one lookup
 * per packet whatever their size; 65,536 is ipset's own default maxelem). The iptables backend has no
 * sets: every (source, port) is one rule evaluated in order for each new packet to a protected port,
 * and each change rewrites the whole chain, so cost grows linearly with the count; 2,000 keeps a
 * chain rewrite in the tens of milliseconds and per-packet matching cheap.
 */
export const DEFAULT_MAX_GRANTS: Readonly<Record<FirewallBackend, number>> = {
  nftables: 65_536,
  ipset: 65_536,
  iptables: 2_000,
};

/** No configuration may raise maxGrants beyond these (memory and rewrite time stay bounded). */
export const HARD_MAX_GRANTS: Readonly<Record<FirewallBackend, number>> = {
  nftables: 1_000_000,
  ipset: 1_000_000,
  iptables: 20_000,
};

export const FIREWALL_LIMITS = {
  /** A one-shot command (list, probe, conntrack) that runs longer is killed and counts as failed. */
  commandTimeoutMs: 15_000,
  /** A whole-state apply (nft -f, ipset restore, iptables-restore) of up to maxGrants entries. */
  applyTimeoutMs: 120_000,
  /** One request to the long-lived nft/ipset process. */
  sessionRequestTimeoutMs: 15_000,
  /** Grant operations coalesced into one backend change (one nft transaction, one run of ipset lines). */
  maxOpsPerBatch: 10_000,
  /**
   * nftables without libnftables in-process (a command prefix, or the library missing): element
   * changes up to this many go to the long-lived `nft -i` (about 1 ms for one);
   * larger ones to a one-shot `nft -f -`. nft's interactive line reader costs ~70 us per element
   * (1,000 elements ~70 ms on one line) where `nft -f` parses 10,000 in ~100 ms fork included.
   */
  nftSessionMaxElements: 64,
  /** iptables-restore --wait: seconds to wait for /run/xtables.lock. */
  xtablesLockWaitSeconds: 10,
  /** stderr/stdout kept for logs and error messages, per stream. */
  maxOutputChars: 2_000,
  /** Audit-mode log lines, per second and burst (the kernel log must not be flooded). */
  auditLogPerSecond: 10,
  auditLogBurst: 20,
  /** alwaysAllow / protectedPorts / knockPorts entries in one config. */
  maxConfigEntries: 1_024,
  /** The longest grant accepted, ms after now (a week, as BOUNDS.maxDurationSeconds, plus slack). */
  maxGrantLifetimeMs: (7 * 24 * 3600 + 3600) * 1000,
  /** Grant names: Kubernetes object names (DNS-1123 subdomain). */
  maxGrantNameLength: 253,
} as const;

/** Kernel object names. Everything knockgate installs carries one of these, and nothing else does. */
export const NAMES = {
  nftTable: 'knockgate',
  /** ipset sets; `${name}${ipsetNextSuffix}` is the temporary set an atomic sync swaps in. */
  ipsetGrants4: 'knockgate-grants4',
  ipsetGrants6: 'knockgate-grants6',
  ipsetNextSuffix: '-next',
  /** The prefix every knockgate ipset name starts with (cleanup removes exactly these). */
  ipsetPrefix: 'knockgate-',
  /** iptables chains (ipset and iptables backends): mangle PREROUTING jumps to `chain`, which sends protected ports to `guard`. */
  chain: 'KNOCKGATE',
  guard: 'KNOCKGATE-GUARD',
  /** iptables backend: one rule per granted (source, port), rewritten atomically on each change. */
  grantsChain: 'KNOCKGATE-GRANTS',
  /** raw PREROUTING jumps here: NOTRACK + DROP of knock and SPA ports. */
  rawChain: 'KNOCKGATE-RAW',
  auditLogPrefix: 'knockgate-audit: ',
} as const;
