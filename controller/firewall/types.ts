// The firewall module's public shape: the whole desired state in (config + grants), kernel state out.
// Backends (nftables, ipset, iptables) are interchangeable behind the Firewall interface.

import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { PortRef } from '../../api/ports.js';
import type { FirewallBackend, StandaloneMode } from '../../api/standalone.js';

export type { FirewallBackend };

export interface FirewallConfig {
  /** Dropped unless granted (matched before DNAT, so NodePort/hostPort services are covered too). */
  protectedPorts: PortRef[];
  /** Knock and SPA ports: NOTRACK + DROP in raw, so the host answers nothing; pcap still sees them. */
  knockPorts: PortRef[];
  /** CIDRs (v4 or v6) accepted before anything else. */
  alwaysAllow: string[];
  /** Audit: log what would be dropped, drop nothing (grants are still maintained in the kernel). */
  mode: StandaloneMode;
  /** Live grants at most. Default DEFAULT_MAX_GRANTS[backend] (controller/firewall/limits.ts). */
  maxGrants?: number;
  /** `conntrack -D` a source's flows at revoke (all granted ports) and at expiry (UDP ports only). */
  conntrackFlush: boolean;
}

export interface FirewallGrant {
  /** The owning grant (AccessGrant name); unique key: a grant of the same name replaces it. */
  name: string;
  /** One host: "203.0.113.7/32", "fd00::7/128" (a bare address is accepted). */
  source: string;
  ports: PortRef[];
  /** Ms since the epoch; the kernel entry carries this end itself. */
  expiresAt: number;
}

/** Why a grant is removed: a revoke closes every flow (with conntrackFlush); an expiry only UDP ones. */
export type RemoveReason = 'revoked' | 'expired';

export interface FirewallStats {
  /** Grants currently applied. */
  grants: number;
  maxGrants: number;
  /** Grants refused because maxGrants was reached, since creation. */
  refusedMaxGrants: number;
  /** Applies (whole or per grant) that failed, since creation. */
  applyFailures: number;
}

export interface Firewall {
  readonly backend: FirewallBackend;
  /** Check the tools and kernel, then apply the table/chains/sets for `config` atomically. */
  install(config?: FirewallConfig): Promise<void>;
  /** Replace every grant with `grants` in one atomic apply (start-up and periodic resync). */
  sync(grants: FirewallGrant[]): Promise<void>;
  /**
   * Open (or extend, by name) one grant. Throws MaxGrantsError, FirewallInputError, FirewallApplyError.
   * `onApplied` is called the moment the kernel holds it, before the promise settles (the promise
   * waits for the rest of its batch's bookkeeping): for stage timings.
   */
  add(grant: FirewallGrant, onApplied?: () => void): Promise<void>;
  /** Close one grant by name (a no-op when unknown). */
  remove(grant: Pick<FirewallGrant, 'name'>, reason: RemoveReason): Promise<void>;
  /** Grants currently applied (expired ones included until removed or resynced). */
  grants(): FirewallGrant[];
  stats(): FirewallStats;
  /** Remove everything knockgate installed (every backend's objects) and nothing else. */
  cleanup(): Promise<void>;
  /** Stop the long-lived processes. The kernel state stays (and expires on its own). */
  close(): Promise<void>;
}

export interface FirewallOptions {
  backend: FirewallBackend;
  /** The config install() applies when called without one. */
  config?: FirewallConfig;
  logger: Logger;
  clock: Clock;
  /**
   * Prepended to every command, e.g. ["ip", "netns", "exec", "srv"] to manage another network
   * namespace. Default none.
   */
  commandPrefix?: string[];
  /**
   * nftables: per-grant changes through libnftables in this process when it loads and there is no
   * commandPrefix (default true); false: always the long-lived `nft -i`.
   */
  inProcessNft?: boolean;
  /** iptables flavour for the ipset and iptables backends. Default: detected from `iptables --version`. */
  iptablesMode?: IptablesMode;
}

export type IptablesMode = 'nft' | 'legacy';

/** Bad input (config or grant): nothing was applied. */
export class FirewallInputError extends Error {}

/** maxGrants reached: the grant was refused, nothing was applied. */
export class MaxGrantsError extends Error {}

/** The kernel or a tool refused the change; the previous state is kept. */
export class FirewallApplyError extends Error {}

/** This host cannot run the backend (missing binary, kernel module, or netfilter bypassed). */
export class FirewallUnavailableError extends Error {}
