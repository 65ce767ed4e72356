// ipset backend: grants are elements of two hash:ip,port sets (inet and inet6) with per-element
// timeouts, so the kernel drops them at their end even if knockgate is gone; iptables/ip6tables
// rules in knockgate's own raw/mangle chains (xtables.ts) match the sets.
//
// Whole state: one `ipset restore` fills fresh "-next" sets (nothing live changes), one
// `iptables-restore --noflush` per family rewrites the chains, and a last `ipset restore` swaps
// the filled sets in (each swap is atomic). Per-grant changes are lines on a long-lived `ipset -` process.

import type { Clock } from '../../api/clock.js';
import { BOUNDS } from '../../api/limits.js';
import type { Logger } from '../../api/log.js';
import type { Backend } from './backend.js';
import { CommandError, excerpt, type Commands } from './command.js';
import type { Element, ElementChange, ElementKey } from './elements.js';
import { FIREWALL_LIMITS, NAMES } from './limits.js';
import { LineSession } from './session.js';
import { FirewallApplyError, FirewallUnavailableError, type IptablesMode } from './types.js';
import type { ValidConfig } from './validate.js';
import { removeNftTable } from './leftovers.js';
import {
  keepFlavour,
  parseSave,
  removeOwnChains,
  renderChains,
  toolOf,
  Xtables,
  type Family,
} from './xtables.js';

export function ipsetName(family: Family): string {
  return family === 4 ? NAMES.ipsetGrants4 : NAMES.ipsetGrants6;
}

export function ipsetEntry(k: ElementKey): string {
  return `${k.address},${k.proto}:${k.port}`;
}

/** Whole seconds left (ipset's resolution), rounded down; undefined when under a second is left. */
export function ipsetTimeout(e: Element, now: number): number | undefined {
  const s = Math.floor((e.expiresAt - now) / 1000);
  return s >= 1 ? s : undefined;
}

function createLine(name: string, family: Family, maxelem: number): string {
  return `create ${name} hash:ip,port family ${family === 4 ? 'inet' : 'inet6'} timeout 0 maxelem ${maxelem}`;
}

/** Elements a set must hold at most: every grant with every port. */
function maxElements(config: ValidConfig): number {
  return Math.max(65_536, config.maxGrants * BOUNDS.maxPortsPerGrant);
}

/**
 * The whole state in two `ipset restore` inputs. `fill` creates a live set only when missing
 * (iptables rules reference them), replaces any stale "-next" set and fills fresh ones; nothing
 * live changes. `swap` then exchanges each pair atomically and drops the old contents.
 */
export function renderIpsetRestore(
  config: ValidConfig,
  elements: Element[],
  now: number,
  existing: ReadonlySet<string>,
): { fill: string; swap: string } {
  const fill: string[] = [];
  const swap: string[] = [];
  for (const family of [4, 6] as const) {
    const live = ipsetName(family);
    const next = `${live}${NAMES.ipsetNextSuffix}`;
    const maxelem = maxElements(config);
    if (!existing.has(live)) fill.push(createLine(live, family, maxelem));
    if (existing.has(next)) fill.push(`destroy ${next}`);
    fill.push(createLine(next, family, maxelem));
    for (const e of elements) {
      if (e.family !== family) continue;
      const s = ipsetTimeout(e, now);
      if (s !== undefined) fill.push(`add ${next} ${ipsetEntry(e)} timeout ${s}`);
    }
    swap.push(`swap ${next} ${live}`, `destroy ${next}`);
  }
  return { fill: [...fill, ''].join('\n'), swap: [...swap, ''].join('\n') };
}

/** Session lines: `add -exist` replaces an element's timeout; `del -exist` is quiet when it is gone. */
export function renderIpsetChanges(changes: ElementChange[], now: number): string[] {
  return changes.map((c) => {
    const set = ipsetName(c.key.family);
    const s = c.element && ipsetTimeout(c.element, now);
    return s !== undefined
      ? `add ${set} ${ipsetEntry(c.key)} timeout ${s} -exist`
      : `del ${set} ${ipsetEntry(c.key)} -exist`;
  });
}

export class IpsetBackend implements Backend {
  readonly name = 'ipset' as const;
  readonly atomicChanges = false;
  private readonly session: LineSession;
  private readonly xtables: Xtables;

  constructor(
    private readonly commands: Commands,
    logger: Logger,
    clock: Clock,
    iptablesMode?: IptablesMode,
  ) {
    this.xtables = new Xtables(commands, iptablesMode);
    this.session = new LineSession(
      commands,
      {
        command: 'ipset',
        args: ['-'],
        // `test` of an element that is never granted (loopback) answers "... is NOT in set ..." on
        // stderr, carrying the sequence number as the port.
        sentinel: (seq) => ({
          line: `test ${NAMES.ipsetGrants4} 127.0.0.1,tcp:${seq}`,
          answer: new RegExp(`(?:^|\\n)127\\.0\\.0\\.1,tcp:${seq} is NOT in set ${NAMES.ipsetGrants4}\\.\\n`),
        }),
      },
      logger,
      clock,
    );
  }

  async toolPresent(): Promise<boolean> {
    // Our chains may be left even where ipset is gone: removeOwn() checks each tool itself.
    return true;
  }

  async preflight(): Promise<void> {
    try {
      await this.commands.run('ipset', ['--version']);
    } catch (err) {
      if (err instanceof CommandError && err.notFound)
        throw new FirewallUnavailableError(
          'ipset backend: the ipset program is not installed (Debian: ipset)',
        );
      throw new FirewallUnavailableError(`ipset backend: ${(err as Error).message}`);
    }
    try {
      await this.commands.run('ipset', ['list', '-n']);
    } catch (err) {
      throw new FirewallUnavailableError(
        `ipset backend: the kernel does not answer ipset (ip_set module missing or no CAP_NET_ADMIN): ${(err as Error).message}`,
      );
    }
    await this.xtables.detect('ipset');
  }

  private async setNames(): Promise<Set<string>> {
    const r = await this.commands.run('ipset', ['list', '-n']);
    return new Set(
      r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    );
  }

  async applyAll(config: ValidConfig, elements: Element[], now: number): Promise<void> {
    // Sets filled first, then the rules, then the swap: a failure before the swap leaves the
    // grants in the kernel as they were.
    try {
      const { fill, swap } = renderIpsetRestore(config, elements, now, await this.setNames());
      const timeoutMs = FIREWALL_LIMITS.applyTimeoutMs;
      await this.commands.run('ipset', ['restore'], { input: fill, timeoutMs });
      for (const family of [4, 6] as const) {
        const tool = toolOf(family);
        const existing = parseSave(await this.xtables.save(tool));
        const grants = { kind: 'set', set: ipsetName(family) } as const;
        await this.xtables.restore(tool, renderChains(config, family, grants, existing));
      }
      await this.commands.run('ipset', ['restore'], { input: swap, timeoutMs });
    } catch (err) {
      throw new FirewallApplyError(`ipset: state not applied: ${(err as Error).message}`);
    }
  }

  async applyChanges(
    _config: ValidConfig,
    changes: ElementChange[],
    _all: () => Element[],
    now: number,
  ): Promise<void> {
    const lines = renderIpsetChanges(changes, now);
    for (let i = 0; i < lines.length; i += FIREWALL_LIMITS.maxOpsPerBatch) {
      let answer: string;
      try {
        answer = await this.session.request(lines.slice(i, i + FIREWALL_LIMITS.maxOpsPerBatch));
      } catch (err) {
        throw new FirewallApplyError(`ipset: ${(err as Error).message}`);
      }
      if (answer !== '') throw new FirewallApplyError(`ipset: grant change refused: ${excerpt(answer)}`);
    }
  }

  async removeOthers(): Promise<string[]> {
    // The iptables backend's grant chain is unreferenced once applyAll() rewrote the guard.
    const keep = keepFlavour(this.xtables.detectedMode, [NAMES.grantsChain]);
    return [...(await removeNftTable(this.commands)), ...(await removeOwnChains(this.commands, keep))];
  }

  async removeOwn(): Promise<void> {
    // Rules first: a set still referenced by a rule cannot be destroyed.
    await removeOwnChains(this.commands);
    await this.session.close();
    let names: Set<string>;
    try {
      names = await this.setNames();
    } catch (err) {
      if (err instanceof CommandError && err.notFound) return;
      throw err;
    }
    const ours = [...names].filter((n) => n.startsWith(NAMES.ipsetPrefix));
    for (const n of ours) await this.commands.run('ipset', ['destroy', n]);
  }

  close(): Promise<void> {
    return this.session.close();
  }
}
