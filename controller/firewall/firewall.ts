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
import { GrantTable, keyString, type ElementChange, type ElementKey } from './elements.js';
import { IpsetBackend } from './ipset.js';
import { IptablesBackend } from './iptables.js';
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

export class KernelFirewall implements Firewall {
  readonly backend: FirewallBackend;
  private config: ValidConfig | undefined;
  private table = new GrantTable();
  private refusedMaxGrants = 0;
  private applyFailures = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly deps: KernelFirewallDeps) {
    this.backend = deps.backend.name;
  }

  /** Run `op` after every earlier operation has finished (whatever its outcome). */
  private serial<T>(op: () => Promise<T>): Promise<T> {
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
      this.deps.logger.debug({ grants: next.size }, 'firewall synced');
    });
  }

  add(grant: FirewallGrant): Promise<void> {
    return this.serial(async () => {
      const config = this.requireConfig();
      const now = this.deps.clock.now();
      const valid = validateGrant(grant, now);
      if (valid.expiresAt <= now)
        throw new FirewallInputError(`grant ${valid.name}: already expired, nothing applied`);
      if (!this.table.has(valid.name) && this.table.size >= config.maxGrants) {
        this.refusedMaxGrants++;
        this.deps.logger.warn(
          { grant: valid.name, source: valid.address, maxGrants: config.maxGrants },
          'grant refused: maxGrants reached',
        );
        throw new MaxGrantsError(
          `grant ${valid.name}: refused, ${config.maxGrants} grants (maxGrants) already open`,
        );
      }
      const previous = this.table.get(valid.name);
      const changes = this.changesFor(this.table.put(valid));
      try {
        await this.applyChanges(config, changes, now);
      } catch (err) {
        // Nothing of this grant counts as applied: the table goes back to what the kernel holds.
        this.table.delete(valid.name);
        if (previous) this.table.put(previous);
        await this.recover(config, now);
        throw err;
      }
      this.deps.logger.debug(
        { grant: valid.name, source: valid.address, ports: valid.ports.length, expiresAt: valid.expiresAt },
        previous ? 'firewall grant extended' : 'firewall grant opened',
      );
    });
  }

  remove(grant: Pick<FirewallGrant, 'name'>, reason: RemoveReason): Promise<void> {
    return this.serial(async () => {
      const config = this.requireConfig();
      const name = grant?.name;
      const removed = typeof name === 'string' ? this.table.get(name) : undefined;
      if (!removed) return;
      const now = this.deps.clock.now();
      const changes = this.changesFor(this.table.delete(removed.name));
      try {
        await this.applyChanges(config, changes, now);
      } catch (err) {
        // Closing must not be lost: the whole state (without this grant) is applied instead.
        this.deps.logger.warn({ grant: removed.name, err: (err as Error).message }, 'grant close: resyncing');
        try {
          await this.applyWhole(config, this.table, now);
        } catch (again) {
          this.table.put(removed);
          throw again;
        }
      }
      this.deps.logger.debug({ grant: removed.name, reason }, 'firewall grant closed');
      if (config.conntrackFlush) await this.flush(removed, changes, reason);
    });
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

  /** The element each touched key should now be (deduplicated: put() reports old and new keys). */
  private changesFor(keys: ElementKey[]): ElementChange[] {
    const seen = new Map<string, ElementKey>();
    for (const k of keys) seen.set(keyString(k), k);
    return [...seen.values()].map((key) => ({ key, element: this.table.element(key) }));
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
      await this.deps.backend.applyChanges(config, changes, this.table.elements(), now);
    } catch (err) {
      this.applyFailures++;
      throw err;
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

  /** Revoke: every port that is now closed; expiry: only UDP ones (TCP ends by itself). */
  private async flush(g: ValidGrant, changes: ElementChange[], reason: RemoveReason): Promise<void> {
    const closed = changes
      .filter((c) => c.element === undefined && (reason === 'revoked' || c.key.proto === 'udp'))
      .map((c) => c.key);
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
    nftables: new NftablesBackend(commands, options.logger, options.clock),
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
