// The protected ports and alwaysAllow in force: read back from the firewall itself (knockgate's
// `table inet knockgate`, or its KNOCKGATE chains in iptables-nft / iptables-legacy), and compared
// with what the configuration says. What matters is what the kernel does, not what a file says:
// a port the config protects but the rules do not is open to everyone.

import type { Commands } from '../firewall/command.js';
import { NAMES } from '../firewall/limits.js';
import { fail, ok, warn, type CheckResult } from './report.js';
import { tryRun } from './run.js';

/** What one installation of knockgate's rules does. */
export interface RulesInForce {
  /** "nftables table inet knockgate", "iptables-nft chains", "iptables-legacy chains". */
  where: string;
  /** "22/tcp", sorted. */
  protectedPorts: string[];
  /** CIDRs (a single address as written by the kernel), sorted. */
  alwaysAllow: string[];
  /** Knock and SPA ports the raw table silences. */
  knockPorts: string[];
  /** The protected ports are dropped (Enforce); false: only logged (Audit). */
  drops: boolean;
  /** The table's entry chain is hooked (nft) or jumped to from PREROUTING (iptables). */
  hooked: boolean;
  liveGrants: number;
}

/** What the configuration asks for (from a standalone config or an AgentConfig). */
export interface Expected {
  file: string;
  protectedPorts: string[];
  alwaysAllow: string[];
  mode: 'Enforce' | 'Audit';
  backend: string;
}

type NftObject = Record<string, Record<string, unknown>>;
type NftElem =
  | string
  | number
  | {
      prefix?: { addr: string; len: number };
      range?: [string, string];
      concat?: unknown[];
      elem?: { val?: unknown };
    };

function elemText(e: NftElem): string {
  if (typeof e !== 'object') return String(e);
  if (e.prefix) return `${e.prefix.addr}/${e.prefix.len}`;
  if (e.range) return `${e.range[0]}-${e.range[1]}`;
  if (e.concat) return e.concat.map(String).join(' . ');
  if (e.elem?.val !== undefined) return elemText(e.elem.val as NftElem);
  return JSON.stringify(e);
}

/** "tcp . 22" → "22/tcp". */
const portOf = (concat: string) => {
  const [proto, port] = concat.split(' . ');
  return `${port}/${proto}`;
};

export function parseNftTable(json: string): RulesInForce | undefined {
  let objects: NftObject[];
  try {
    objects = (JSON.parse(json) as { nftables?: NftObject[] }).nftables ?? [];
  } catch {
    return undefined;
  }
  const sets = new Map<string, string[]>();
  for (const o of objects) {
    const s = o.set as { name?: string; elem?: NftElem[] } | undefined;
    if (s?.name) sets.set(s.name, (s.elem ?? []).map(elemText));
  }
  if (!sets.has('protected')) return undefined;
  const rules = objects.map(
    (o) => o.rule as { chain?: string; expr?: Record<string, unknown>[] } | undefined,
  );
  const chains = objects.map((o) => o.chain as { name?: string; hook?: string } | undefined);
  return {
    where: `nftables table inet ${NAMES.nftTable}`,
    protectedPorts: (sets.get('protected') ?? []).map(portOf).sort(),
    alwaysAllow: [...(sets.get('allow4') ?? []), ...(sets.get('allow6') ?? [])].sort(),
    knockPorts: (sets.get('knock') ?? []).map(portOf).sort(),
    drops: rules.some((r) => r?.chain === 'guard' && r.expr?.some((e) => 'drop' in e)),
    hooked: chains.some((c) => c?.name === 'prerouting' && c.hook === 'prerouting'),
    liveGrants: (sets.get('grants4') ?? []).length + (sets.get('grants6') ?? []).length,
  };
}

/** knockgate's chains in one iptables-save output (mangle and raw), or undefined when absent. */
export function parseXtablesSave(text: string, where: string): RulesInForce | undefined {
  const lines = text.split('\n');
  if (!lines.some((l) => l.startsWith(`:${NAMES.chain} `))) return undefined;
  const arg = (l: string, flag: string) => new RegExp(`(?:^| )${flag} (\\S+)`).exec(l)?.[1];
  const port = (l: string) => `${arg(l, '--dport')}/${arg(l, '-p')}`;
  const ruleOf = (chain: string) => lines.filter((l) => l.startsWith(`-A ${chain} `));
  const guardish = [...ruleOf(NAMES.guard), ...ruleOf(NAMES.grantsChain)];
  return {
    where,
    protectedPorts: [
      ...new Set(
        ruleOf(NAMES.chain)
          .filter((l) => l.endsWith(`-j ${NAMES.guard}`))
          .map(port),
      ),
    ].sort(),
    alwaysAllow: ruleOf(NAMES.guard)
      .filter((l) => / -s \S+ -j RETURN$/.test(l))
      .map((l) => arg(l, '-s')!.replace(/\/(32|128)$/, ''))
      .sort(),
    knockPorts: [...new Set(ruleOf(NAMES.rawChain).map(port))].sort(),
    drops: guardish.some((l) => l.endsWith('-j DROP')),
    hooked: lines.some((l) => l.startsWith('-A PREROUTING ') && l.endsWith(`-j ${NAMES.chain}`)),
    liveGrants: ruleOf(NAMES.grantsChain).filter((l) => l.endsWith('-j RETURN')).length,
  };
}

/** Every installation of knockgate's rules in this network namespace (normally one). */
export async function rulesInForce(commands: Commands): Promise<RulesInForce[]> {
  const found: RulesInForce[] = [];
  const nft = await tryRun(commands, 'nft', ['-j', 'list', 'table', 'inet', NAMES.nftTable]);
  const table = nft.ok ? parseNftTable(nft.stdout) : undefined;
  if (table) found.push(table);
  for (const flavour of ['nft', 'legacy']) {
    // IPv4 and IPv6 read as one text: the same chains, alwaysAllow of both families.
    const v4 = await tryRun(commands, `iptables-${flavour}-save`, []);
    const v6 = await tryRun(commands, `ip6tables-${flavour}-save`, []);
    const text = `${v4.ok ? v4.stdout : ''}\n${v6.ok ? v6.stdout : ''}`;
    const chains = parseXtablesSave(text, `iptables-${flavour} chains`);
    if (chains) {
      for (const set of [NAMES.ipsetGrants4, NAMES.ipsetGrants6]) {
        const ipset = await tryRun(commands, 'ipset', ['list', set, '-terse']);
        const entries = /Number of entries: (\d+)/.exec(ipset.stdout)?.[1];
        if (entries !== undefined) chains.liveGrants += Number(entries);
      }
      found.push(chains);
    }
  }
  return found;
}

/** A single address is written without its /32 or /128 by the tools: compare them alike. */
const bare = (cidr: string) => cidr.replace(/\/(32|128)$/, '');

export function firewallCheck(found: readonly RulesInForce[], expected: Expected | undefined): CheckResult {
  const name = 'firewall';
  if (found.length === 0) {
    if (!expected) return warn(name, "no knockgate rules in this host's firewall: nothing is protected here");
    return fail(
      name,
      `no knockgate rules in this host's firewall, yet ${expected.file} protects ${expected.protectedPorts.join(', ')}: ` +
        'those ports are open to everyone — is knockgate (standalone or agent) running on this host?',
    );
  }
  const r = found[0]!;
  const seen =
    `${r.where}: ${r.drops ? 'drops' : 'only logs (Audit)'} ${r.protectedPorts.join(', ') || 'no port'} unless granted, ` +
    `alwaysAllow ${r.alwaysAllow.join(', ') || 'none'}, knock/SPA ports silenced ${r.knockPorts.join(', ') || 'none'}, ` +
    `${r.liveGrants} live grant entr${r.liveGrants === 1 ? 'y' : 'ies'}`;
  if (!r.hooked)
    return fail(name, `${seen}; but its entry chain is not hooked into prerouting: it drops nothing`);
  if (expected) {
    const missing = expected.protectedPorts.filter((p) => !r.protectedPorts.includes(p));
    if (missing.length > 0)
      return fail(
        name,
        `${seen}; ${expected.file} also protects ${missing.join(', ')}, which the rules leave open to everyone`,
      );
    const allowIn = new Set(r.alwaysAllow.map(bare));
    const allowWant = new Set(expected.alwaysAllow.map(bare));
    const extra = [...allowIn].filter((c) => !allowWant.has(c));
    if (extra.length > 0)
      return fail(name, `${seen}; alwaysAllow ${extra.join(', ')} is in force but not in ${expected.file}`);
    if (expected.mode === 'Enforce' && !r.drops)
      return fail(
        name,
        `${seen}; ${expected.file} says Enforce, the rules only log: restart knockgate to apply it`,
      );
    const absent = [...allowWant].filter((c) => !allowIn.has(c));
    if (absent.length > 0)
      return warn(
        name,
        `${seen}; alwaysAllow ${absent.join(', ')} of ${expected.file} is not in force (break-glass access lost)`,
      );
  }
  if (found.length > 1)
    return warn(
      name,
      `${seen}; also ${found
        .slice(1)
        .map((f) => f.where)
        .join(', ')}: two backends' rules, run knockgate standalone --cleanup or restart the agent`,
    );
  if (!r.drops)
    return warn(
      name,
      `${seen}: Audit mode drops nothing; switch mode to Enforce once the audit log looks right`,
    );
  return ok(name, seen);
}
