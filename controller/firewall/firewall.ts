// The Firewall: owns the grants (by name), validates everything before it reaches a backend, turns
// a grant change into exactly the kernel elements whose end changes, and drives one Backend. Like
// kube-proxy's proxier it can always recompute the whole desired state and apply it atomically
// (install, sync); per-grant changes are the fast path. Operations are serialised: a sync never
// interleaves with an add.

import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import { FIREWALL_BACKENDS } from '../../api/standalone.js';
import type { Backend } from './backend.js';
import { Commands } from './command.js';
import { flushConntrack } from './conntrack.js';
import { GrantTable, grantKeys, TouchJournal, type ElementChange } from './elements.js';
import { FIREWALL_LIMITS } from './limits.js';
import { IpsetBackend } from './ipset.js';
import { IptablesBackend } from './iptables.js';
import { addonNft } from './nft-in-process.js';
import { NftablesBackend } from './nftables.js';
import {
  FirewallApplyError,
  FirewallInputError,
  MaxGrantsError,
  type Firewall,
  type FirewallBackend,
  type FirewallConfig,
  type FirewallGrant,
  type FirewallOptions,
  type FirewallStats,
  type RemoveReason,
} from './types.js';
import { validateConfig, validateGrant, type ValidConfig, type ValidGrant } from './validate.js';

export interface KernelFirewallDeps {
  backend: Backend;
  /** Every backend's cleaner (the active one included): cleanup() removes what any of them left. */
  cleaners: Backend[];
  commands: Commands;
  logger: Logger;
  clock: Clock;
  config?: FirewallConfig;
}

/**
 * One grant operation: an add (`grant`) or a remove (`name`, `reason`), and once its batch has
 * staged it (the table holds its result), what it did: an add `added`, with the grant of that name
 * it replaced (`previous`); a remove `removed`. Undone by undo(), not by a closure of its own. One
 * flat object of one shape per operation (a burst makes 10,000).
 */
interface Pending {
  grant: FirewallGrant | undefined;
  name: unknown;
  reason: RemoveReason | undefined;
  /** An add's: called the moment the kernel holds it (Firewall.add). */
  onApplied: (() => void) | undefined;
  resolve: () => void;
  reject: (err: Error) => void;
  added: ValidGrant | undefined;
  previous: ValidGrant | undefined;
  removed: ValidGrant | undefined;
}

const unset = (): void => undefined;
/** The operation whose promise is being made: settle() below hands it the promise's functions. */
let settling: Pending | undefined;

/** The executor of every operation's promise: one function for all, not a closure per operation. */
function settle(resolve: () => void, reject: (err: Error) => void): void {
  settling!.resolve = resolve;
  settling!.reject = reject;
}

export class KernelFirewall implements Firewall {
  readonly backend: FirewallBackend;
  private config: ValidConfig | undefined;
  private table = new GrantTable();
  private refusedMaxGrants = 0;
  private applyFailures = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Grant operations waiting for their batch to start (joined by those that arrive meanwhile). */
  private openBatch: Pending[] | undefined;
  /** Whether another backend's leftovers have been looked for and removed (leftovers.ts). */
  private othersRemoved = false;

  constructor(private readonly deps: KernelFirewallDeps) {
    this.backend = deps.backend.name;
  }

  /** Run `op` after every earlier operation has finished (whatever its outcome). */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    // Grant operations that arrive after this one start a new batch behind it.
    this.openBatch = undefined;
    const run = this.queue.then(() => {
      if (this.closed) throw new FirewallApplyError('firewall: closed');
      return op();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private requireConfig(): ValidConfig {
    if (!this.config) throw new FirewallApplyError('firewall: install() has not succeeded yet');
    return this.config;
  }

  install(config?: FirewallConfig): Promise<void> {
    return this.serial(async () => {
      const given = config ?? this.deps.config;
      if (!given) throw new FirewallInputError('firewall config: missing');
      const valid = validateConfig(given, this.backend);
      await this.deps.backend.preflight(valid);
      const now = this.deps.clock.now();
      // A smaller maxGrants than the live count keeps the live grants (they were admitted) but
      // admits no new one until the count falls below it.
      await this.applyWhole(valid, this.table, now);
      this.config = valid;
      await this.removeOthers();
      this.deps.logger.info(
        {
          backend: this.backend,
          mode: valid.mode,
          protectedPorts: valid.protectedPorts.length,
          knockPorts: valid.knockPorts.length,
          maxGrants: valid.maxGrants,
          grants: this.table.size,
        },
        'firewall installed',
      );
    });
  }

  sync(grants: FirewallGrant[]): Promise<void> {
    return this.serial(async () => {
      const config = this.requireConfig();
      const now = this.deps.clock.now();
      if (!Array.isArray(grants)) throw new FirewallInputError('firewall sync: grants must be a list');
      const next = new GrantTable();
      for (const g of grants) {
        const valid = validateGrant(g, now);
        if (valid.expiresAt > now) next.put(valid);
      }
      if (next.size > config.maxGrants) {
        this.refusedMaxGrants += next.size - config.maxGrants;
        this.deps.logger.warn(
          { grants: next.size, maxGrants: config.maxGrants },
          'firewall sync refused: more live grants than maxGrants',
        );
        throw new MaxGrantsError(
          `firewall sync: ${next.size} live grants exceed maxGrants ${config.maxGrants}; nothing applied`,
        );
      }
      await this.applyWhole(config, next, now);
      this.table = next;
      await this.removeOthers();
      this.deps.logger.debug({ grants: next.size }, 'firewall synced');
    });
  }

  add(grant: FirewallGrant, onApplied?: () => void): Promise<void> {
    return this.enqueue(grant, undefined, undefined, onApplied);
  }

  remove(grant: Pick<FirewallGrant, 'name'>, reason: RemoveReason): Promise<void> {
    return this.enqueue(undefined, grant?.name, reason);
  }

  /**
   * Per-grant operations that arrive while another operation runs are coalesced into one backend
   * change (one nft transaction, one run of ipset lines): the cost of a flood of grants grows with
   * the number of batches, not of grants. Order is kept: a batch never passes an earlier sync.
   */
  private enqueue(
    grant: FirewallGrant | undefined,
    name: unknown,
    reason: RemoveReason | undefined,
    onApplied?: () => void,
  ): Promise<void> {
    const pending: Pending = {
      grant,
      name,
      reason,
      onApplied,
      resolve: unset,
      reject: unset,
      added: undefined,
      previous: undefined,
      removed: undefined,
    };
    settling = pending;
    const promise = new Promise<void>(settle);
    settling = undefined;
    if (this.openBatch) this.openBatch.push(pending);
    else this.startBatch(pending);
    return promise;
  }

  /** A new batch, starting with `first`, open to the operations that arrive before it runs. */
  private startBatch(first: Pending): void {
    const batch: Pending[] = [first];
    const started = this.serial(async () => {
      if (this.openBatch === batch) this.openBatch = undefined;
      const config = this.requireConfig();
      const max = FIREWALL_LIMITS.maxOpsPerBatch;
      if (batch.length <= max) return this.runBatch(config, batch);
      for (let i = 0; i < batch.length; i += max) await this.runBatch(config, batch.slice(i, i + max));
    });
    // Open for joiners only now: serial() closes whatever batch was open before it.
    this.openBatch = batch;
    started.catch((err: unknown) => {
      // Only reached when the batch could not start (closed, not installed): all of it fails.
      for (const p of batch) p.reject(err as Error);
    });
  }

  private async runBatch(config: ValidConfig, batch: Pending[]): Promise<void> {
    const now = this.deps.clock.now();
    const done: Pending[] = [];
    // Each touched key and whether a grant covered it before this batch (at its first touch).
    const journal = new TouchJournal();
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      try {
        if (this.stage(config, p, now, journal)) done.push(p);
      } catch (err) {
        p.reject(err as Error);
      }
    }
    if (done.length === 0) return;
    try {
      await this.applyChanges(config, this.table.changes(journal), now);
    } catch (err) {
      for (let i = done.length - 1; i >= 0; i--) this.undo(done[i]!);
      if (done.length > 1) {
        // One bad change must not fail the others: each is tried on its own.
        await this.recover(config, now);
        for (const d of done) await this.runBatch(config, [d]);
        return;
      }
      await this.failedAlone(config, done[0]!, err as Error, now);
      return;
    }
    for (let i = 0; i < done.length; i++) done[i]!.onApplied?.();
    // The debug lines' objects are only built when they are written (a burst resolves 10,000).
    const debug = this.deps.logger.isLevelEnabled('debug');
    for (let i = 0; i < done.length; i++) {
      const d = done[i]!;
      if (debug) this.logDone(d);
      if (config.conntrackFlush && d.removed) await this.flush(d.removed, d.reason!);
      d.resolve();
    }
  }

  /** Take a staged operation back out of the table (its batch was refused). */
  private undo(d: Pending): void {
    if (d.removed) return this.table.put(d.removed);
    this.table.delete(d.added!.name);
    if (d.previous) this.table.put(d.previous);
  }

  /** Apply one operation to the table (noting the keys it touches); false for a no-op. */
  private stage(config: ValidConfig, p: Pending, now: number, journal: TouchJournal): boolean {
    if (p.grant === undefined) {
      const removed = typeof p.name === 'string' ? this.table.get(p.name) : undefined;
      if (!removed) {
        p.resolve();
        return false;
      }
      this.table.delete(removed.name, journal);
      p.added = undefined;
      p.previous = undefined;
      p.removed = removed;
      return true;
    }
    const valid = validateGrant(p.grant, now);
    if (valid.expiresAt <= now)
      throw new FirewallInputError(`grant ${valid.name}: already expired, nothing applied`);
    const previous = this.table.get(valid.name);
    if (!previous && this.table.size >= config.maxGrants) {
      this.refusedMaxGrants++;
      this.deps.logger.warn(
        { grant: valid.name, source: valid.address, maxGrants: config.maxGrants },
        'grant refused: maxGrants reached',
      );
      throw new MaxGrantsError(
        `grant ${valid.name}: refused, ${config.maxGrants} grants (maxGrants) already open`,
      );
    }
    this.table.put(valid, journal, previous ?? null);
    p.added = valid;
    p.previous = previous;
    p.removed = undefined;
    return true;
  }

  /** A single change the backend refused (its table change is already undone). */
  private async failedAlone(config: ValidConfig, d: Pending, err: Error, now: number): Promise<void> {
    if (d.added) {
      await this.recover(config, now);
      return d.reject(err);
    }
    // Closing must not be lost: the whole state without this grant is applied instead.
    const removed = d.removed!;
    this.deps.logger.warn({ grant: removed.name, err: err.message }, 'grant close: resyncing');
    this.table.delete(removed.name);
    try {
      await this.applyWhole(config, this.table, now);
    } catch (again) {
      this.table.put(removed);
      return d.reject(again as Error);
    }
    this.logDone(d);
    if (config.conntrackFlush) await this.flush(removed, d.reason!);
    d.resolve();
  }

  private logDone(d: Pending): void {
    if (d.added)
      this.deps.logger.debug(
        {
          grant: d.added.name,
          source: d.added.address,
          ports: d.added.ports.length,
          expiresAt: d.added.expiresAt,
        },
        d.previous ? 'firewall grant extended' : 'firewall grant opened',
      );
    else this.deps.logger.debug({ grant: d.removed!.name, reason: d.reason }, 'firewall grant closed');
  }

  grants(): FirewallGrant[] {
    return this.table.values().map(toFirewallGrant);
  }

  stats(): FirewallStats {
    return {
      grants: this.table.size,
      maxGrants: this.config?.maxGrants ?? 0,
      refusedMaxGrants: this.refusedMaxGrants,
      applyFailures: this.applyFailures,
    };
  }

  cleanup(): Promise<void> {
    return this.serial(async () => {
      const errors: string[] = [];
      for (const b of this.deps.cleaners) {
        try {
          if (await b.toolPresent()) await b.removeOwn();
        } catch (err) {
          errors.push(`${b.name}: ${(err as Error).message}`);
        }
      }
      this.table = new GrantTable();
      if (errors.length > 0)
        throw new FirewallApplyError(`firewall cleanup incomplete: ${errors.join('; ')}`);
      this.deps.logger.info({ backends: this.deps.cleaners.map((b) => b.name) }, 'firewall objects removed');
    });
  }

  async close(): Promise<void> {
    await this.queue;
    this.closed = true;
    await Promise.all(this.deps.cleaners.map((b) => b.close()));
  }

  private async applyWhole(config: ValidConfig, table: GrantTable, now: number): Promise<void> {
    try {
      await this.deps.backend.applyAll(config, table.elements(), now);
    } catch (err) {
      this.applyFailures++;
      throw err;
    }
  }

  private async applyChanges(config: ValidConfig, changes: ElementChange[], now: number): Promise<void> {
    try {
      await this.deps.backend.applyChanges(config, changes, () => this.table.elements(), now);
    } catch (err) {
      this.applyFailures++;
      throw err;
    }
  }

  /**
   * Once this backend's state is in place: remove what another backend left in an earlier run (its
   * DROP would refuse what this one grants). A failure is logged and retried at the next sync; it
   * never undoes the install (the leftovers only ever refuse more, never open).
   */
  private async removeOthers(): Promise<void> {
    if (this.othersRemoved) return;
    try {
      const removed = await this.deps.backend.removeOthers();
      for (const object of removed)
        this.deps.logger.warn(
          { backend: this.backend, object },
          'removed a leftover of another firewall backend (an earlier run with another --backend)',
        );
      this.othersRemoved = true;
    } catch (err) {
      this.deps.logger.error(
        { backend: this.backend, err: (err as Error).message },
        'could not remove the leftovers of another firewall backend; retrying at the next sync',
      );
    }
  }

  /** After a failed per-grant change on a backend whose changes are not one transaction. */
  private async recover(config: ValidConfig, now: number): Promise<void> {
    if (this.deps.backend.atomicChanges) return;
    try {
      await this.applyWhole(config, this.table, now);
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, 'firewall resync after a failed change failed');
    }
  }

  /** Revoke: every port no grant covers any more; expiry: only UDP ones (TCP ends by itself). */
  private async flush(g: ValidGrant, reason: RemoveReason): Promise<void> {
    const closed = grantKeys(g).filter(
      (k) => this.table.element(k) === undefined && (reason === 'revoked' || k.proto === 'udp'),
    );
    if (closed.length === 0) return;
    await flushConntrack(this.deps.commands, this.deps.logger, g.family, g.address, closed);
  }
}

function toFirewallGrant(g: ValidGrant): FirewallGrant {
  const prefix = g.family === 4 ? 32 : 128;
  return { name: g.name, source: `${g.address}/${prefix}`, ports: g.ports, expiresAt: g.expiresAt };
}

/**
 * The Firewall for `options.backend`. Nothing touches the kernel until install(). Every backend is
 * built too, only as a cleaner: cleanup() also removes what another backend left in an earlier run.
 */
export function createFirewall(options: FirewallOptions): Firewall {
  if (!FIREWALL_BACKENDS.includes(options.backend))
    throw new FirewallInputError(
      `firewall: unknown backend "${String(options.backend)}" (want ${FIREWALL_BACKENDS.join(', ')})`,
    );
  const commands = new Commands(options.commandPrefix ?? [], options.logger, options.clock);
  const backends: Record<FirewallBackend, Backend> = {
    nftables: new NftablesBackend(
      commands,
      options.logger,
      options.clock,
      options.inProcessNft === false ? undefined : addonNft,
    ),
    ipset: new IpsetBackend(commands, options.logger, options.clock, options.iptablesMode),
    iptables: new IptablesBackend(commands, options.iptablesMode),
  };
  return new KernelFirewall({
    backend: backends[options.backend],
    // iptables before ipset: the ipset sets can only go once no rule references them.
    cleaners: [backends.nftables, backends.iptables, backends.ipset],
    commands,
    logger: options.logger,
    clock: options.clock,
    ...(options.config ? { config: options.config } : {}),
  });
}
