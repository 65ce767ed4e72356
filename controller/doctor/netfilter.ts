// Netfilter mode: which flavour `iptables` is (iptables-nft, the nf_tables kernel API, or
// iptables-legacy, the old x_tables one), whether nft is there, and whether rules live in both
// flavours at once. Both kinds of hooks run in the kernel, but each tool sees only its own: a node
// whose kube-proxy or CNI writes legacy rules while knockgate writes nf_tables (or the reverse)
// works, yet `iptables-save` shows only half of the picture and ordering between the two is by
// hook priority alone.

import type { Commands } from '../firewall/command.js';
import { parseIptablesVersion } from '../firewall/xtables.js';
import { fail, ok, warn, type CheckResult } from './report.js';
import { tryRun } from './run.js';

export interface NetfilterFacts {
  /** The flavour the unsuffixed `iptables` is, undefined when iptables is absent or unclear. */
  iptablesMode?: 'nft' | 'legacy';
  iptablesVersion?: string;
  nftVersion?: string;
  /** Rules (-A lines) each flavour holds, IPv4 and IPv6 together; undefined: that tool is absent. */
  legacyRules?: number;
  nftRules?: number;
}

const countRules = (text: string) => text.split('\n').filter((l) => l.startsWith('-A ')).length;

async function rulesOf(commands: Commands, flavour: 'nft' | 'legacy'): Promise<number | undefined> {
  let total: number | undefined;
  for (const tool of ['iptables', 'ip6tables']) {
    const r = await tryRun(commands, `${tool}-${flavour}-save`, []);
    if (r.ok) total = (total ?? 0) + countRules(r.stdout);
  }
  return total;
}

export async function netfilterFacts(commands: Commands): Promise<NetfilterFacts> {
  const facts: NetfilterFacts = {};
  const ipt = await tryRun(commands, 'iptables', ['--version']);
  if (ipt.ok) {
    facts.iptablesVersion = /v[\d.]+/.exec(ipt.stdout)?.[0];
    facts.iptablesMode = parseIptablesVersion(ipt.stdout);
  }
  const nft = await tryRun(commands, 'nft', ['--version']);
  if (nft.ok) facts.nftVersion = /v[\d.]+/.exec(nft.stdout)?.[0] ?? 'present';
  facts.legacyRules = await rulesOf(commands, 'legacy');
  facts.nftRules = await rulesOf(commands, 'nft');
  return facts;
}

export function netfilterCheck(f: NetfilterFacts, backend: string | undefined): CheckResult {
  const name = 'netfilter';
  const iptables =
    f.iptablesMode === undefined
      ? f.iptablesVersion
        ? `iptables ${f.iptablesVersion} of unknown flavour`
        : 'no iptables'
      : `iptables ${f.iptablesVersion ?? ''} is iptables-${f.iptablesMode}`.replace('  ', ' ');
  const nft = f.nftVersion ? `nft ${f.nftVersion}` : 'no nft';
  const rules = `rules: nf_tables ${f.nftRules ?? '-'}, legacy ${f.legacyRules ?? '-'}`;
  const seen = `${iptables}; ${nft}; ${rules}`;
  if (!f.nftVersion && !f.iptablesVersion)
    return fail(
      name,
      `${seen}: no netfilter tool, knockgate cannot install its rules (Debian: nftables, iptables)`,
    );
  if (backend === 'nftables' && !f.nftVersion)
    return fail(
      name,
      `${seen}: the nftables backend needs nft (Debian: nftables), or choose backend ipset/iptables`,
    );
  if ((backend === 'ipset' || backend === 'iptables') && !f.iptablesVersion)
    return fail(name, `${seen}: the ${backend} backend needs iptables (Debian: iptables)`);
  if ((f.legacyRules ?? 0) > 0 && (f.nftRules ?? 0) > 0)
    return warn(
      name,
      `${seen}: rules in both iptables-legacy and nf_tables — each tool shows only its own half; ` +
        'make kube-proxy, the CNI and knockgate use one flavour (knockgate: iptablesMode)',
    );
  if (f.iptablesMode === 'legacy' && (f.legacyRules ?? 0) > 0 && backend === 'nftables')
    return warn(
      name,
      `${seen}: this node's rules are iptables-legacy; knockgate's nftables table runs beside them`,
    );
  return ok(name, seen);
}
