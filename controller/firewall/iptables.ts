// iptables backend, for hosts without nftables sets or ipset: one rule per granted (source, port)
// in knockgate's own KNOCKGATE-GRANTS chain, each carrying `-m time --datestop` so the kernel stops
// matching at the grant's end even if knockgate is gone. Every change is an atomic
// `iptables-restore --noflush` rewrite of the grant chain of the family it touches (the chain is
// declared, hence flushed, and refilled in one table commit); the whole state rewrites every chain.

import type { Backend } from './backend.js';
import { CommandError, type Commands } from './command.js';
import type { Element, ElementChange } from './elements.js';
import { destroyOwnSets, removeNftTable } from './leftovers.js';
import { NAMES } from './limits.js';
import { FirewallApplyError, type IptablesMode } from './types.js';
import type { ValidConfig } from './validate.js';
import {
  denyRules,
  keepFlavour,
  parseSave,
  removeOwnChains,
  renderChains,
  toolOf,
  Xtables,
  type Family,
} from './xtables.js';

/**
 * xt_time compares whole UTC seconds and matches while now ≤ datestop: the last second that lies
 * entirely before the end, so a rule never outlives its grant (it may stop up to a second early).
 */
export function datestop(expiresAt: number): string {
  const lastSecond = Math.floor(expiresAt / 1000) - 1;
  return new Date(lastSecond * 1000).toISOString().slice(0, 19);
}

/** The grant rules of one family (elements whose end has passed are left out). */
export function grantRules(elements: Element[], family: Family, now: number): string[] {
  const prefix = family === 4 ? 32 : 128;
  return elements
    .filter((e) => e.family === family && e.expiresAt > now)
    .sort((a, b) => a.address.localeCompare(b.address) || a.port - b.port || a.proto.localeCompare(b.proto))
    .map(
      (e) =>
        `-A ${NAMES.grantsChain} -s ${e.address}/${prefix} -p ${e.proto} -m ${e.proto} --dport ${e.port} ` +
        `-m time --datestop ${datestop(e.expiresAt)} -m comment --comment ${e.owner} -j RETURN`,
    );
}

/** The restore input that rewrites only the grant chain of one family. */
export function renderGrantChain(
  config: ValidConfig,
  elements: Element[],
  family: Family,
  now: number,
): string {
  return [
    '*mangle',
    `:${NAMES.grantsChain} - [0:0]`,
    ...grantRules(elements, family, now),
    ...denyRules(NAMES.grantsChain, config),
    'COMMIT',
    '',
  ].join('\n');
}

export class IptablesBackend implements Backend {
  readonly name = 'iptables' as const;
  /** One commit per family: a change that touched both could be half-applied. */
  readonly atomicChanges = false;
  private readonly xtables: Xtables;

  constructor(
    private readonly commands: Commands,
    iptablesMode?: IptablesMode,
  ) {
    this.xtables = new Xtables(commands, iptablesMode);
  }

  async toolPresent(): Promise<boolean> {
    return true; // removeOwn() skips flavours that are not installed
  }

  async preflight(): Promise<void> {
    await this.xtables.detect('iptables');
  }

  async applyAll(config: ValidConfig, elements: Element[], now: number): Promise<void> {
    try {
      for (const family of [4, 6] as const) {
        const tool = toolOf(family);
        const existing = parseSave(await this.xtables.save(tool));
        const grants = { kind: 'chain', rules: grantRules(elements, family, now) } as const;
        await this.xtables.restore(tool, renderChains(config, family, grants, existing));
      }
    } catch (err) {
      throw new FirewallApplyError(`iptables: state not applied: ${(err as Error).message}`);
    }
  }

  async applyChanges(
    config: ValidConfig,
    changes: ElementChange[],
    all: () => Element[],
    now: number,
  ): Promise<void> {
    const families = new Set(changes.map((c) => c.key.family));
    const elements = all();
    for (const family of [4, 6] as const) {
      if (!families.has(family)) continue;
      try {
        await this.xtables.restore(toolOf(family), renderGrantChain(config, elements, family, now));
      } catch (err) {
        throw new FirewallApplyError(`iptables: grant change refused: ${(err as Error).message}`);
      }
    }
  }

  async removeOthers(): Promise<string[]> {
    // Other-flavour chains first: they may still reference the ipsets.
    const keep = keepFlavour(this.xtables.detectedMode);
    return [
      ...(await removeNftTable(this.commands)),
      ...(await removeOwnChains(this.commands, keep)),
      ...(await destroyOwnSets(this.commands)),
    ];
  }

  async removeOwn(): Promise<void> {
    try {
      await removeOwnChains(this.commands);
    } catch (err) {
      if (err instanceof CommandError && err.notFound) return;
      throw err;
    }
  }

  async close(): Promise<void> {}
}
