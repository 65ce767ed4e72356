// What each backend (nftables, ipset, iptables) implements. The Firewall (firewall.ts) owns the
// grants and decides what changes; a backend only renders and applies.

import type { FirewallBackend } from './types.js';
import type { Element, ElementChange } from './elements.js';
import type { ValidConfig } from './validate.js';

export interface Backend {
  readonly name: FirewallBackend;
  /**
   * True when a failed applyChanges() leaves nothing half-applied (one nft transaction). When false
   * (ipset lines, one by one), the Firewall follows a failure with a whole-state sync.
   */
  readonly atomicChanges: boolean;
  /** Throws FirewallUnavailableError (one line: what is missing) when this host cannot run it. */
  preflight(config: ValidConfig): Promise<void>;
  /** Apply the whole state (tables, chains, sets, every element) atomically; on failure keep the old. */
  applyAll(config: ValidConfig, elements: Element[], now: number): Promise<void>;
  /**
   * Apply per-grant element changes through the long-lived process (iptables: an atomic rewrite of
   * the grant chain from `all()`, computed only when asked: it costs time linear in the grants).
   * Throws FirewallApplyError with the tool's message.
   */
  applyChanges(
    config: ValidConfig,
    changes: ElementChange[],
    all: () => Element[],
    now: number,
  ): Promise<void>;
  /**
   * Remove what the other backends left (an earlier run with another --backend; see leftovers.ts),
   * sparing this backend's own objects. Called once applyAll() has installed this backend's state.
   * Returns one line per object removed.
   */
  removeOthers(): Promise<string[]>;
  /** Remove what this backend installs (idempotent; nothing else is touched). */
  removeOwn(): Promise<void>;
  /** Whether this backend's tool is installed at all (a missing tool means nothing of ours to clean). */
  toolPresent(): Promise<boolean>;
  close(): Promise<void>;
}
