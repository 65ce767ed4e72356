// iptables/ip6tables plumbing shared by the ipset and iptables backends: legacy vs nf_tables
// detection, the restore/save tools of that flavour, rendering of knockgate's own chains, and
// removal of exactly those chains (in every flavour, so that an earlier run's leftovers go too).
//
//   raw    PREROUTING → KNOCKGATE-RAW     knock/SPA ports: CT --notrack, DROP (Audit: notrack only)
//   mangle PREROUTING → KNOCKGATE         lo → RETURN; protected ports → KNOCKGATE-GUARD
//          KNOCKGATE-GUARD                alwaysAllow → RETURN; ESTABLISHED,RELATED → RETURN;
//                                         granted → RETURN (ipset: -m set; iptables: KNOCKGATE-GRANTS);
//                                         DROP (Audit: rate-limited LOG)
//
// Allowed packets RETURN rather than ACCEPT so that other mangle PREROUTING rules (kube-proxy's,
// a CNI's) still see them. Both tables are raw/mangle PREROUTING: before DNAT in nat PREROUTING.

import type { PortRef } from '../../api/ports.js';
import { CommandError, type Commands } from './command.js';
import { FIREWALL_LIMITS, NAMES } from './limits.js';
import { FirewallUnavailableError, type IptablesMode } from './types.js';
import type { ValidConfig } from './validate.js';

export type Family = 4 | 6;
export type XtablesTool = 'iptables' | 'ip6tables';

export function toolOf(family: Family): XtablesTool {
  return family === 4 ? 'iptables' : 'ip6tables';
}

/** "iptables v1.8.9 (nf_tables)" → nft; "(legacy)" or a pre-1.8 version without a suffix → legacy. */
export function parseIptablesVersion(text: string): IptablesMode | undefined {
  if (/\(nf_tables\)/.test(text)) return 'nft';
  if (/\(legacy\)/.test(text)) return 'legacy';
  if (/^iptables v1\.[0-7]\./m.test(text)) return 'legacy';
  return undefined;
}

/** The restore/save programs of one flavour: explicit names when the mode was chosen, else the defaults. */
export class Xtables {
  private mode: IptablesMode | undefined;

  constructor(
    private readonly commands: Commands,
    private readonly explicitMode: IptablesMode | undefined,
  ) {
    this.mode = explicitMode;
  }

  private program(tool: XtablesTool, kind: 'restore' | 'save'): string {
    return this.explicitMode ? `${tool}-${this.explicitMode}-${kind}` : `${tool}-${kind}`;
  }

  /** Find which flavour `iptables` is, and that the restore tools of both families exist. */
  async detect(backend: string): Promise<IptablesMode> {
    const version = this.explicitMode ? `iptables-${this.explicitMode}` : 'iptables';
    let text: string;
    try {
      const r = await this.commands.run(version, ['--version']);
      text = r.stdout + r.stderr;
    } catch (err) {
      throw new FirewallUnavailableError(
        `${backend} backend: ${version} is not usable (Debian: iptables): ${(err as Error).message}`,
      );
    }
    const found = parseIptablesVersion(text);
    if (!found)
      throw new FirewallUnavailableError(
        `${backend} backend: cannot tell the iptables flavour from "${text.trim()}"`,
      );
    if (this.explicitMode && found !== this.explicitMode)
      throw new FirewallUnavailableError(
        `${backend} backend: ${version} reports ${found}, not ${this.explicitMode}`,
      );
    for (const tool of ['iptables', 'ip6tables'] as const) {
      try {
        await this.commands.run(this.program(tool, 'save'), []);
      } catch (err) {
        throw new FirewallUnavailableError(
          `${backend} backend: ${this.program(tool, 'save')} failed (no CAP_NET_ADMIN, or no ${tool} support in the kernel): ${(err as Error).message}`,
        );
      }
    }
    this.mode = found;
    return found;
  }

  get detectedMode(): IptablesMode | undefined {
    return this.mode;
  }

  save(tool: XtablesTool): Promise<string> {
    return this.commands.run(this.program(tool, 'save'), []).then((r) => r.stdout);
  }

  /** One atomic iptables-restore --noflush (per table), waiting for /run/xtables.lock. */
  async restore(tool: XtablesTool, input: string): Promise<void> {
    await this.commands.run(
      this.program(tool, 'restore'),
      ['-w', String(FIREWALL_LIMITS.xtablesLockWaitSeconds), '--noflush'],
      { input, timeoutMs: FIREWALL_LIMITS.applyTimeoutMs },
    );
  }
}

const RAW_JUMP = `-A PREROUTING -j ${NAMES.rawChain}`;
const MANGLE_JUMP = `-A PREROUTING -j ${NAMES.chain}`;
/** Exactly the chains knockgate creates: a foreign chain that merely looks similar is left alone. */
const OWN_CHAINS: ReadonlySet<string> = new Set([
  NAMES.chain,
  NAMES.guard,
  NAMES.grantsChain,
  NAMES.rawChain,
]);
const isOwn = (chain: string | undefined) => chain !== undefined && OWN_CHAINS.has(chain);

/** What iptables-save shows of ours, per table. */
export interface OwnState {
  /** Table → our chains that exist. */
  chains: Map<string, Set<string>>;
  /** Table → rules elsewhere (PREROUTING) that jump to our chains, as printed (-A ...). */
  jumps: Map<string, string[]>;
}

export function parseSave(text: string): OwnState {
  const chains = new Map<string, Set<string>>();
  const jumps = new Map<string, string[]>();
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0]!;
      if (isOwn(name)) {
        if (!chains.has(table)) chains.set(table, new Set());
        chains.get(table)!.add(name);
      }
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1]!;
      const target = / -[jg] (\S+)/.exec(line)?.[1];
      if (!isOwn(chain) && isOwn(target)) {
        if (!jumps.has(table)) jumps.set(table, []);
        jumps.get(table)!.push(line.trim());
      }
    }
  }
  return { chains, jumps };
}

/** Restore input that removes our jumps and chains, or "" when there is nothing of ours. */
export function renderRemoval(state: OwnState): string {
  const tables = new Set([...state.chains.keys(), ...state.jumps.keys()]);
  const out: string[] = [];
  for (const table of [...tables].sort()) {
    const chains = [...(state.chains.get(table) ?? [])].sort();
    out.push(`*${table}`);
    for (const j of state.jumps.get(table) ?? []) out.push(`-D${j.slice(2)}`);
    for (const c of chains) out.push(`-F ${c}`);
    for (const c of chains) out.push(`-X ${c}`);
    out.push('COMMIT');
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

/** How granted packets are recognised in the guard chain. */
export type GrantMatch = { kind: 'set'; set: string } | { kind: 'chain'; rules: string[] };

function portMatch(p: PortRef): string {
  return `-p ${p.proto} -m ${p.proto} --dport ${p.port}`;
}

/** The end of the guard: drop, or in Audit a rate-limited log line and nothing dropped. */
export function denyRules(chain: string, config: ValidConfig): string[] {
  if (config.mode === 'Enforce') return [`-A ${chain} -j DROP`];
  return [
    `-A ${chain} -m limit --limit ${FIREWALL_LIMITS.auditLogPerSecond}/sec --limit-burst ` +
      `${FIREWALL_LIMITS.auditLogBurst} -j LOG --log-prefix "${NAMES.auditLogPrefix}" --log-level 6`,
  ];
}

/**
 * The whole restore input for one family: our chains declared (declaring a chain in --noflush
 * input flushes it, so the rewrite is complete and atomic per table), their rules, and the jump
 * from PREROUTING when it is not there yet.
 */
export function renderChains(
  config: ValidConfig,
  family: Family,
  grants: GrantMatch,
  existing: OwnState,
): string {
  const hasJump = (table: string, jump: string) => (existing.jumps.get(table) ?? []).includes(jump);
  const allow = family === 4 ? config.allow4 : config.allow6;
  const out: string[] = ['*raw', `:${NAMES.rawChain} - [0:0]`];
  if (!hasJump('raw', RAW_JUMP)) out.push(`-I PREROUTING 1 -j ${NAMES.rawChain}`);
  for (const p of config.knockPorts) {
    out.push(`-A ${NAMES.rawChain} ${portMatch(p)} -j CT --notrack`);
    if (config.mode === 'Enforce') out.push(`-A ${NAMES.rawChain} ${portMatch(p)} -j DROP`);
  }
  out.push('COMMIT', '*mangle', `:${NAMES.chain} - [0:0]`, `:${NAMES.guard} - [0:0]`);
  if (grants.kind === 'chain') out.push(`:${NAMES.grantsChain} - [0:0]`);
  if (!hasJump('mangle', MANGLE_JUMP)) out.push(`-I PREROUTING 1 -j ${NAMES.chain}`);
  out.push(`-A ${NAMES.chain} -i lo -j RETURN`);
  for (const p of config.protectedPorts) out.push(`-A ${NAMES.chain} ${portMatch(p)} -j ${NAMES.guard}`);
  for (const cidr of allow) out.push(`-A ${NAMES.guard} -s ${cidr} -j RETURN`);
  out.push(`-A ${NAMES.guard} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`);
  if (grants.kind === 'set') {
    out.push(`-A ${NAMES.guard} -m set --match-set ${grants.set} src,dst -j RETURN`);
    out.push(...denyRules(NAMES.guard, config));
  } else {
    out.push(`-A ${NAMES.guard} -j ${NAMES.grantsChain}`);
    out.push(...grants.rules, ...denyRules(NAMES.grantsChain, config));
  }
  out.push('COMMIT', '');
  return out.join('\n');
}

/** What *-save says when the kernel has no tables of its flavour (module missing or not loaded). */
const KERNEL_ABSENT = /insmod|does not exist|not supported|Protocol not supported|can't initialize/i;

/** Which of our chains a removal spares: `flavour` is "nft", "legacy" or "" (the unsuffixed tools). */
export type KeepChain = (flavour: string, table: string, chain: string) => boolean;

/** `state` without the chains `keep` spares, and without the jumps into them. */
export function withoutKept(state: OwnState, flavour: string, keep: KeepChain): OwnState {
  const chains = new Map<string, Set<string>>();
  const jumps = new Map<string, string[]>();
  for (const [table, names] of state.chains) {
    const gone = [...names].filter((c) => !keep(flavour, table, c));
    if (gone.length > 0) chains.set(table, new Set(gone));
  }
  for (const [table, rules] of state.jumps) {
    const gone = rules.filter((r) => !keep(flavour, table, / -[jg] (\S+)/.exec(r)![1]!));
    if (gone.length > 0) jumps.set(table, gone);
  }
  return { chains, jumps };
}

/**
 * For removeOthers() of the ipset and iptables backends: spare our chains in the flavour `mode`
 * this backend runs (and the unsuffixed tools, which are that flavour), except `alsoRemove`.
 */
export function keepFlavour(mode: IptablesMode | undefined, alsoRemove: string[] = []): KeepChain {
  return (flavour, _table, chain) => (flavour === '' || flavour === mode) && !alsoRemove.includes(chain);
}

/** One line per chain in `state`, e.g. "iptables-legacy mangle chain KNOCKGATE-GUARD". */
function describe(program: string, state: OwnState): string[] {
  const out: string[] = [];
  for (const [table, names] of state.chains)
    for (const c of [...names].sort()) out.push(`${program} ${table} chain ${c}`);
  return out;
}

/**
 * Remove our chains and jumps in every flavour installed here (legacy and nf_tables), except those
 * `keep` spares (the active backend's own, when another backend's leftovers are removed).
 * Returns one line per chain removed.
 */
export async function removeOwnChains(commands: Commands, keep: KeepChain = () => false): Promise<string[]> {
  const errors: string[] = [];
  const removed: string[] = [];
  let anyTool = false;
  for (const flavour of ['nft', 'legacy', undefined] as const) {
    for (const tool of ['iptables', 'ip6tables'] as const) {
      const suffix = flavour ? `-${flavour}` : '';
      let saved: string;
      try {
        saved = (await commands.run(`${tool}${suffix}-save`, [])).stdout;
      } catch (err) {
        // Not installed, or this flavour's kernel side is absent (nothing of ours can be there).
        if (err instanceof CommandError && (err.notFound || KERNEL_ABSENT.test(err.message))) continue;
        errors.push((err as Error).message);
        continue;
      }
      anyTool = true;
      const doomed = withoutKept(parseSave(saved), flavour ?? '', keep);
      const removal = renderRemoval(doomed);
      if (removal === '') continue;
      try {
        await commands.run(
          `${tool}${suffix}-restore`,
          ['-w', String(FIREWALL_LIMITS.xtablesLockWaitSeconds), '--noflush'],
          { input: removal },
        );
        removed.push(...describe(`${tool}${suffix}`, doomed));
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    // The unsuffixed tools are one of the two flavours: only asked when neither suffixed one exists.
    if (anyTool && flavour === 'legacy') break;
  }
  if (errors.length > 0) throw new Error(errors.join('; '));
  return removed;
}
