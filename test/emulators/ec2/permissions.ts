// IpPermissions as EC2 reads them: protocol (tcp/udp/icmp/icmpv6/-1 or a number), port range,
// IpRanges (CidrIp, Description) and Ipv6Ranges (CidrIpv6, Description); one rule per source.
// CIDRs are canonicalised as EC2 does (host bits cleared: 192.0.2.7/24 is stored as 192.0.2.0/24).
// Not implemented (answered InvalidParameterValue so a test notices): UserIdGroupPairs, PrefixListIds.

import { isIPv4, isIPv6 } from 'node:net';
import { invalidParameterValue, missingParameter } from './errors.js';
import type { Params } from './query.js';

export interface RuleSpec {
  ipProtocol: string;
  fromPort: number;
  toPort: number;
  cidrIpv4?: string;
  cidrIpv6?: string;
  description?: string;
}

const PROTOCOL_NAMES: Record<string, string> = {
  '6': 'tcp',
  '17': 'udp',
  '1': 'icmp',
  '58': 'icmpv6',
  all: '-1',
};
// EC2's allowed description characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*
const DESCRIPTION = /^[a-zA-Z0-9 ._\-:/()#,@[\]+=&;{}!$*]{0,255}$/;

export function parsePermissions(params: Params, prefix = 'IpPermissions'): RuleSpec[] {
  const out: RuleSpec[] = [];
  for (const p of params.members(prefix)) {
    const raw = (params.get(`${p}.IpProtocol`) ?? '').toLowerCase();
    if (raw === '') throw missingParameter(`${p}.IpProtocol`);
    const ipProtocol = PROTOCOL_NAMES[raw] ?? raw;
    if (!['tcp', 'udp', 'icmp', 'icmpv6', '-1'].includes(ipProtocol) && !/^\d{1,3}$/.test(ipProtocol))
      throw invalidParameterValue(`Invalid value '${raw}' for IP protocol. Unknown protocol.`);
    let fromPort = params.int(`${p}.FromPort`) ?? -1;
    let toPort = params.int(`${p}.ToPort`) ?? -1;
    if (ipProtocol === 'tcp' || ipProtocol === 'udp') {
      if (fromPort < 0 || toPort > 65535 || fromPort > toPort)
        throw invalidParameterValue(
          `Invalid port range ${fromPort}-${toPort}: FromPort and ToPort must be 0-65535, FromPort <= ToPort`,
        );
    } else if (ipProtocol === '-1') {
      fromPort = -1;
      toPort = -1;
    }
    if (params.members(`${p}.Groups`).length || params.members(`${p}.PrefixListIds`).length)
      throw invalidParameterValue('the EC2 emulator implements IpRanges and Ipv6Ranges sources only');
    const sources: RuleSpec[] = [];
    for (const r of params.members(`${p}.IpRanges`)) {
      const cidr = params.get(`${r}.CidrIp`);
      if (!cidr) throw missingParameter(`${r}.CidrIp`);
      sources.push({
        ipProtocol,
        fromPort,
        toPort,
        cidrIpv4: canonicalCidr(cidr, 4),
        description: description(params.get(`${r}.Description`)),
      });
    }
    for (const r of params.members(`${p}.Ipv6Ranges`)) {
      const cidr = params.get(`${r}.CidrIpv6`);
      if (!cidr) throw missingParameter(`${r}.CidrIpv6`);
      sources.push({
        ipProtocol,
        fromPort,
        toPort,
        cidrIpv6: canonicalCidr(cidr, 6),
        description: description(params.get(`${r}.Description`)),
      });
    }
    if (sources.length === 0) throw missingParameter(`${p}.IpRanges or ${p}.Ipv6Ranges`);
    out.push(...sources);
  }
  return out;
}

function description(d: string | undefined): string | undefined {
  if (d === undefined) return undefined;
  if (!DESCRIPTION.test(d))
    throw invalidParameterValue(
      `Invalid rule description. Valid descriptions are strings less than 256 characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*`,
    );
  return d;
}

export function canonicalCidr(cidr: string, family: 4 | 6): string {
  const [addr, lenText, extra] = cidr.split('/');
  const max = family === 4 ? 32 : 128;
  const len = Number(lenText);
  const ok = family === 4 ? isIPv4(addr) : isIPv6(addr);
  if (!ok || extra !== undefined || !/^\d{1,3}$/.test(lenText ?? '') || len > max)
    throw invalidParameterValue(`CIDR block ${cidr} is malformed`);
  let bits = toBigInt(addr, family);
  const mask = len === 0 ? 0n : ((1n << BigInt(max)) - 1n) ^ ((1n << BigInt(max - len)) - 1n);
  bits &= mask;
  return `${fromBigInt(bits, family)}/${len}`;
}

function toBigInt(addr: string, family: 4 | 6): bigint {
  if (family === 4) return addr.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n);
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two hex groups first.
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4) {
    const n = Number(toBigInt(v4[2], 4));
    addr = `${v4[1]}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function fromBigInt(bits: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => Number((bits >> s) & 255n)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((bits >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run (>1) of zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Same rule as far as InvalidPermission.Duplicate is concerned (description and tags do not count). */
export function sameRule(a: RuleSpec, b: RuleSpec): boolean {
  return (
    a.ipProtocol === b.ipProtocol &&
    a.fromPort === b.fromPort &&
    a.toPort === b.toPort &&
    a.cidrIpv4 === b.cidrIpv4 &&
    a.cidrIpv6 === b.cidrIpv6
  );
}

export function ruleText(r: RuleSpec): string {
  const proto = r.ipProtocol === '-1' ? 'ALL' : r.ipProtocol.toUpperCase();
  return `peer: ${r.cidrIpv4 ?? r.cidrIpv6}, ${proto}, from port: ${r.fromPort}, to port: ${r.toPort}, ALLOW`;
}
