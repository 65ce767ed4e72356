// Rendering of every backend's kernel input (golden strings) and parsing of tool output; no root.
import { describe, expect, it } from 'vitest';
import { conntrackArgs } from '../controller/firewall/conntrack.js';
import type { Element } from '../controller/firewall/elements.js';
import { datestop, renderGrantChain } from '../controller/firewall/iptables.js';
import { renderIpsetChanges, renderIpsetRestore } from '../controller/firewall/ipset.js';
import { changeOps, renderChanges, renderTable } from '../controller/firewall/nftables.js';
import { validateConfig } from '../controller/firewall/validate.js';
import {
  parseIptablesVersion,
  parseSave,
  renderChains,
  renderRemoval,
} from '../controller/firewall/xtables.js';

const now = Date.UTC(2026, 0, 1);
const config = validateConfig(
  {
    protectedPorts: [{ port: 22, proto: 'tcp' }],
    knockPorts: [{ port: 62201, proto: 'udp' }],
    alwaysAllow: ['192.0.2.0/24', '2001:db8::/32'],
    mode: 'Enforce',
    conntrackFlush: false,
  },
  'nftables',
);
const audit = { ...config, mode: 'Audit' as const };
const v4: Element = {
  family: 4,
  address: '203.0.113.7',
  proto: 'tcp',
  port: 22,
  expiresAt: now + 30_000,
  owner: 'g1',
};
const v6: Element = {
  family: 6,
  address: '2001:db8::7',
  proto: 'tcp',
  port: 22,
  expiresAt: now + 1_500,
  owner: 'g2',
};
const gone: Element = { ...v4, address: '203.0.113.8', expiresAt: now - 1 };

const lines = (...l: string[]) => `${l.join('\n')}\n`;

describe('nftables rendering', () => {
  it('renders the whole table as one delete-and-recreate transaction with per-element timeouts', () => {
    expect(renderTable(config, [v4, v6, gone], now)).toBe(
      lines(
        'table inet knockgate {}',
        'delete table inet knockgate',
        'table inet knockgate {',
        '  set protected { type inet_proto . inet_service; elements = { tcp . 22 }; }',
        '  set knock { type inet_proto . inet_service; elements = { udp . 62201 }; }',
        '  set allow4 { type ipv4_addr; flags interval; auto-merge; elements = { 192.0.2.0/24 }; }',
        '  set allow6 { type ipv6_addr; flags interval; auto-merge; elements = { 2001:db8::/32 }; }',
        '  set grants4 { type ipv4_addr . inet_proto . inet_service; flags timeout; elements = { 203.0.113.7 . tcp . 22 timeout 30000ms }; }',
        '  set grants6 { type ipv6_addr . inet_proto . inet_service; flags timeout; elements = { 2001:db8::7 . tcp . 22 timeout 1500ms }; }',
        '  counter denied {}',
        '  chain raw {',
        '    type filter hook prerouting priority -300; policy accept;',
        '    meta l4proto . th dport @knock notrack drop',
        '  }',
        '  chain prerouting {',
        '    type filter hook prerouting priority -150; policy accept;',
        '    iif "lo" accept',
        '    meta l4proto . th dport @protected jump guard',
        '  }',
        '  chain guard {',
        '    ip saddr @allow4 accept',
        '    ip6 saddr @allow6 accept',
        '    ct state established,related accept',
        '    ip saddr . meta l4proto . th dport @grants4 accept',
        '    ip6 saddr . meta l4proto . th dport @grants6 accept',
        '    counter name denied drop',
        '  }',
        '}',
      ),
    );
  });

  it('in Audit mode counts and logs instead of dropping, and does not drop knocks', () => {
    const text = renderTable(audit, [], now);
    expect(text).toContain('    meta l4proto . th dport @knock notrack\n');
    expect(text).toContain(
      '    counter name denied limit rate 10/second burst 20 packets log prefix "knockgate-audit: " level info\n',
    );
    expect(text).not.toMatch(/\bdrop\b/);
  });

  it('renders per-grant changes as one transaction that sets each element exactly', () => {
    expect(
      renderChanges(
        [
          { key: v4, element: v4 },
          { key: v6, element: undefined },
        ],
        now,
      ),
    ).toBe(
      'add element inet knockgate grants4 { 203.0.113.7 . tcp . 22 timeout 1s }; ' +
        'delete element inet knockgate grants4 { 203.0.113.7 . tcp . 22 }; ' +
        'add element inet knockgate grants4 { 203.0.113.7 . tcp . 22 timeout 30000ms }; ' +
        'add element inet knockgate grants6 { 2001:db8::7 . tcp . 22 timeout 1s }; ' +
        'delete element inet knockgate grants6 { 2001:db8::7 . tcp . 22 }',
    );
  });

  it('gives the same transaction as netlink element operations (native/nft_elements.c)', () => {
    const ops = changeOps(
      [
        { key: v4, element: v4 },
        { key: { ...v4, address: '203.0.113.8', proto: 'udp', port: 53 }, element: v4, fresh: true },
        { key: v6, element: undefined },
      ],
      now,
    );
    const one = { set: 'grants4', family: 4 };
    expect(ops).toEqual([
      { op: 0, ...one, addresses: ['203.0.113.7'], protos: [6], ports: [22], timeoutsMs: [1000] },
      { op: 1, ...one, addresses: ['203.0.113.7'], protos: [6], ports: [22] },
      {
        op: 0,
        ...one,
        addresses: ['203.0.113.7', '203.0.113.8'],
        protos: [6, 17],
        ports: [22, 53],
        timeoutsMs: [30000, 30000],
      },
      {
        op: 0,
        set: 'grants6',
        family: 6,
        addresses: ['2001:db8::7'],
        protos: [6],
        ports: [22],
        timeoutsMs: [1000],
      },
      { op: 1, set: 'grants6', family: 6, addresses: ['2001:db8::7'], protos: [6], ports: [22] },
    ]);
  });

  it('renders fresh keys as one plain add, in order, and leaves out elements already ended', () => {
    const key = (family: 4 | 6, address: string, proto: 'tcp' | 'udp', port: number) => ({
      family,
      address,
      proto,
      port,
    });
    const element = (k: ReturnType<typeof key>, ms: number): Element => ({
      ...k,
      expiresAt: now + ms,
      owner: 'g',
    });
    const a = key(4, '203.0.113.7', 'tcp', 22);
    const b = key(4, '203.0.113.8', 'udp', 53);
    const ended = key(4, '203.0.113.9', 'tcp', 22);
    const c = key(6, '2001:db8::7', 'tcp', 443);
    expect(
      renderChanges(
        [
          { key: a, element: element(a, 30_000), fresh: true },
          { key: b, element: element(b, 1500) },
          { key: ended, element: element(ended, 0), fresh: true },
          { key: c, element: element(c, 60_000), fresh: true },
        ],
        now,
      ),
    ).toBe(
      'add element inet knockgate grants4 { 203.0.113.8 . udp . 53 timeout 1s }; ' +
        'delete element inet knockgate grants4 { 203.0.113.8 . udp . 53 }; ' +
        'add element inet knockgate grants4 { 203.0.113.7 . tcp . 22 timeout 30000ms, 203.0.113.8 . udp . 53 timeout 1500ms }; ' +
        'add element inet knockgate grants6 { 2001:db8::7 . tcp . 443 timeout 60000ms }',
    );
  });
});

describe('ipset rendering', () => {
  it('fills fresh -next sets and swaps them in last; creates live sets only when missing', () => {
    const existing = new Set(['knockgate-grants4', 'knockgate-grants6-next']);
    expect(renderIpsetRestore(config, [v4, v6, gone], now, existing)).toEqual({
      fill: lines(
        'create knockgate-grants4-next hash:ip,port family inet timeout 0 maxelem 4194304',
        'add knockgate-grants4-next 203.0.113.7,tcp:22 timeout 30',
        'create knockgate-grants6 hash:ip,port family inet6 timeout 0 maxelem 4194304',
        'destroy knockgate-grants6-next',
        'create knockgate-grants6-next hash:ip,port family inet6 timeout 0 maxelem 4194304',
        'add knockgate-grants6-next 2001:db8::7,tcp:22 timeout 1',
      ),
      swap: lines(
        'swap knockgate-grants4-next knockgate-grants4',
        'destroy knockgate-grants4-next',
        'swap knockgate-grants6-next knockgate-grants6',
        'destroy knockgate-grants6-next',
      ),
    });
  });

  it('renders session lines; an element with under a second left is deleted, never made permanent', () => {
    const almost: Element = { ...v4, expiresAt: now + 900 };
    expect(
      renderIpsetChanges(
        [
          { key: v4, element: v4 },
          { key: v6, element: undefined },
          { key: almost, element: almost },
        ],
        now,
      ),
    ).toEqual([
      'add knockgate-grants4 203.0.113.7,tcp:22 timeout 30 -exist',
      'del knockgate-grants6 2001:db8::7,tcp:22 -exist',
      'del knockgate-grants4 203.0.113.7,tcp:22 -exist',
    ]);
  });
});

describe('iptables rendering', () => {
  it('renders the ipset flavour of the chains, inserting the PREROUTING jumps once', () => {
    expect(renderChains(config, 4, { kind: 'set', set: 'knockgate-grants4' }, parseSave(''))).toBe(
      lines(
        '*raw',
        ':KNOCKGATE-RAW - [0:0]',
        '-I PREROUTING 1 -j KNOCKGATE-RAW',
        '-A KNOCKGATE-RAW -p udp -m udp --dport 62201 -j CT --notrack',
        '-A KNOCKGATE-RAW -p udp -m udp --dport 62201 -j DROP',
        'COMMIT',
        '*mangle',
        ':KNOCKGATE - [0:0]',
        ':KNOCKGATE-GUARD - [0:0]',
        '-I PREROUTING 1 -j KNOCKGATE',
        '-A KNOCKGATE -i lo -j RETURN',
        '-A KNOCKGATE -p tcp -m tcp --dport 22 -j KNOCKGATE-GUARD',
        '-A KNOCKGATE-GUARD -s 192.0.2.0/24 -j RETURN',
        '-A KNOCKGATE-GUARD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
        '-A KNOCKGATE-GUARD -m set --match-set knockgate-grants4 src,dst -j RETURN',
        '-A KNOCKGATE-GUARD -j DROP',
        'COMMIT',
      ),
    );
  });

  it('renders the iptables flavour (Audit, IPv6, jump already present)', () => {
    const saved = lines(
      '*raw',
      ':PREROUTING ACCEPT [0:0]',
      ':KNOCKGATE-RAW - [0:0]',
      '-A PREROUTING -j KNOCKGATE-RAW',
      'COMMIT',
    );
    expect(renderChains(audit, 6, { kind: 'chain', rules: [] }, parseSave(saved))).toBe(
      lines(
        '*raw',
        ':KNOCKGATE-RAW - [0:0]',
        '-A KNOCKGATE-RAW -p udp -m udp --dport 62201 -j CT --notrack',
        'COMMIT',
        '*mangle',
        ':KNOCKGATE - [0:0]',
        ':KNOCKGATE-GUARD - [0:0]',
        ':KNOCKGATE-GRANTS - [0:0]',
        '-I PREROUTING 1 -j KNOCKGATE',
        '-A KNOCKGATE -i lo -j RETURN',
        '-A KNOCKGATE -p tcp -m tcp --dport 22 -j KNOCKGATE-GUARD',
        '-A KNOCKGATE-GUARD -s 2001:db8::/32 -j RETURN',
        '-A KNOCKGATE-GUARD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
        '-A KNOCKGATE-GUARD -j KNOCKGATE-GRANTS',
        '-A KNOCKGATE-GRANTS -m limit --limit 10/sec --limit-burst 20 -j LOG --log-prefix "knockgate-audit: " --log-level 6',
        'COMMIT',
      ),
    );
  });

  it('rewrites the grant chain with one rule per (source, port) ending at --datestop', () => {
    expect(renderGrantChain(config, [v4, v6, gone], 4, now)).toBe(
      lines(
        '*mangle',
        ':KNOCKGATE-GRANTS - [0:0]',
        '-A KNOCKGATE-GRANTS -s 203.0.113.7/32 -p tcp -m tcp --dport 22 -m time --datestop 2026-01-01T00:00:29 -m comment --comment g1 -j RETURN',
        '-A KNOCKGATE-GRANTS -j DROP',
        'COMMIT',
      ),
    );
  });

  it('puts --datestop at the last whole second before the end', () => {
    expect(datestop(Date.UTC(2026, 0, 1, 12, 0, 10))).toBe('2026-01-01T12:00:09');
    expect(datestop(Date.UTC(2026, 0, 1, 12, 0, 10, 999))).toBe('2026-01-01T12:00:09');
  });

  it('removes exactly our jumps and chains, leaving foreign ones', () => {
    const saved = lines(
      '# Generated by iptables-save',
      '*raw',
      ':PREROUTING ACCEPT [0:0]',
      ':KNOCKGATE-RAW - [0:0]',
      '-A PREROUTING -p tcp -j ACCEPT',
      '-A PREROUTING -j KNOCKGATE-RAW',
      '-A KNOCKGATE-RAW -p udp -j DROP',
      'COMMIT',
      '*mangle',
      ':PREROUTING ACCEPT [0:0]',
      ':KNOCKGATE - [0:0]',
      ':KNOCKGATE-GUARD - [0:0]',
      ':KNOCKGATEWAY - [0:0]',
      ':KNOCKGATE-OTHER - [0:0]',
      ':OTHER - [0:0]',
      '-A PREROUTING -j KNOCKGATE',
      '-A PREROUTING -j KNOCKGATEWAY',
      '-A PREROUTING -j KNOCKGATE-OTHER',
      '-A OTHER -j RETURN',
      'COMMIT',
    );
    expect(renderRemoval(parseSave(saved))).toBe(
      lines(
        '*mangle',
        '-D PREROUTING -j KNOCKGATE',
        '-F KNOCKGATE',
        '-F KNOCKGATE-GUARD',
        '-X KNOCKGATE',
        '-X KNOCKGATE-GUARD',
        'COMMIT',
        '*raw',
        '-D PREROUTING -j KNOCKGATE-RAW',
        '-F KNOCKGATE-RAW',
        '-X KNOCKGATE-RAW',
        'COMMIT',
      ),
    );
    expect(renderRemoval(parseSave(lines('*filter', ':INPUT ACCEPT [0:0]', 'COMMIT')))).toBe('');
  });

  it('tells legacy from nf_tables iptables', () => {
    expect(parseIptablesVersion('iptables v1.8.9 (nf_tables)\n')).toBe('nft');
    expect(parseIptablesVersion('iptables v1.8.7 (legacy)\n')).toBe('legacy');
    expect(parseIptablesVersion('iptables v1.6.1\n')).toBe('legacy');
    expect(parseIptablesVersion('something else')).toBeUndefined();
  });
});

describe('conntrack', () => {
  it('names the family, source, protocol and port', () => {
    expect(conntrackArgs(6, 'fd00::7', { proto: 'udp', port: 53 })).toEqual([
      '-D',
      '-f',
      'ipv6',
      '-s',
      'fd00::7',
      '-p',
      'udp',
      '--dport',
      '53',
    ]);
  });
});
