// GrantTable and TouchJournal: the elements a batch of grant changes makes, the cached element of
// each key (latest end wins, earliest name on a tie), and which keys are fresh to the kernel.

import { describe, expect, it } from 'vitest';
import { AddressError, CidrSet, parseCidr } from '../api/addresses.js';
import { GrantTable, TouchJournal } from '../controller/firewall/elements.js';
import type { ValidGrant } from '../controller/firewall/validate.js';

function grant(name: string, address: string, ports: number[], expiresAt: number): ValidGrant {
  return { name, family: 4, address, ports: ports.map((port) => ({ port, proto: 'tcp' })), expiresAt };
}

const summary = (t: GrantTable, j: TouchJournal) =>
  t.changes(j).map((c) => [c.key.port, c.element?.owner, c.element?.expiresAt, c.fresh ?? false]);

describe('GrantTable', () => {
  it('notes each touched key once, fresh only when no grant covered it before the batch', () => {
    const t = new GrantTable();
    t.put(grant('a', '10.0.0.1', [22], 100));
    const j = new TouchJournal();
    t.put(grant('a', '10.0.0.1', [22, 80], 200), j); // extends 22, adds 80
    t.put(grant('b', '10.0.0.1', [80], 50), j); // 80 again: a's later end keeps it
    expect(summary(t, j)).toEqual([
      [22, 'a', 200, false],
      [80, 'a', 200, true],
    ]);
  });

  it('a key removed and added again in one batch is not fresh and carries the new end', () => {
    const t = new GrantTable();
    t.put(grant('a', '10.0.0.1', [22], 100));
    const j = new TouchJournal();
    t.delete('a', j);
    t.put(grant('c', '10.0.0.1', [22], 300), j);
    expect(summary(t, j)).toEqual([[22, 'c', 300, false]]);
    expect(t.elements().map((e) => e.owner)).toEqual(['c']);
  });

  it('removing the owner hands the element to the latest remaining end; ties keep the earliest name', () => {
    const t = new GrantTable();
    t.put(grant('a', '10.0.0.1', [22], 100));
    t.put(grant('b', '10.0.0.1', [22], 100));
    t.put(grant('c', '10.0.0.1', [22], 300));
    expect(t.element({ family: 4, address: '10.0.0.1', proto: 'tcp', port: 22 })?.owner).toBe('c');
    const j = new TouchJournal();
    t.delete('c', j);
    expect(summary(t, j)).toEqual([[22, 'a', 100, false]]);
    t.delete('a');
    t.delete('b', j);
    expect(summary(t, j)).toEqual([[22, undefined, undefined, false]]);
    expect(t.elements()).toEqual([]);
    expect(t.size).toBe(0);
  });
});

describe('GrantTable slots of one address (a chain per address)', () => {
  const key = (port: number) => ({ family: 4 as const, address: '10.0.0.1', proto: 'tcp' as const, port });

  it('keeps every key of an address through removals from the head, middle and tail', () => {
    const t = new GrantTable();
    t.put(grant('a', '10.0.0.1', [22, 80, 443], 100));
    t.put(grant('b', '10.0.0.1', [8080], 200));
    t.put(grant('c', '10.0.0.2', [22], 300));
    expect(t.elements().length).toBe(5);
    t.delete('b'); // the chain's head (newest)
    expect([22, 80, 443, 8080].map((p) => t.element(key(p))?.owner)).toEqual(['a', 'a', 'a', undefined]);
    t.put(grant('a', '10.0.0.1', [80], 150)); // 22 and 443 go (tail and head), 80 stays
    expect([22, 80, 443].map((p) => t.element(key(p))?.expiresAt)).toEqual([undefined, 150, undefined]);
    expect(
      t
        .elements()
        .map((e) => `${e.address}:${e.port}`)
        .sort(),
    ).toEqual(['10.0.0.1:80', '10.0.0.2:22']);
    t.delete('a');
    t.delete('c');
    expect(t.elements()).toEqual([]);
  });

  it('a key emptied and covered again in one batch, among other keys of its address, is one touch', () => {
    const t = new GrantTable();
    t.put(grant('a', '10.0.0.1', [22, 80], 100));
    const j = new TouchJournal();
    t.delete('a', j);
    t.put(grant('b', '10.0.0.1', [443, 80], 200), j);
    t.put(grant('c', '10.0.0.1', [22], 50), j);
    expect(summary(t, j)).toEqual([
      [22, 'c', 50, false],
      [80, 'b', 200, false],
      [443, 'b', 200, true],
    ]);
    expect(t.elements().length).toBe(3);
  });
});

describe('parseCidr prefixes', () => {
  it('reads 1-3 decimal digits after one slash, as before', () => {
    expect(parseCidr(' 10.0.0.0/8 ')).toEqual({ address: '10.0.0.0', prefix: 8, family: 4 });
    expect(parseCidr('fd00::1/128')).toEqual({ address: 'fd00::1', prefix: 128, family: 6 });
    expect(parseCidr('10.0.0.1/032').prefix).toBe(32);
    expect(parseCidr('10.0.0.1').prefix).toBe(32);
    for (const bad of [
      '10.0.0.1/',
      '10.0.0.1/1234',
      '10.0.0.1/+8',
      '10.0.0.1/0x8',
      '10.0.0.1/8/8',
      '10.0.0.1/33',
    ])
      expect(() => parseCidr(bad), bad).toThrow(AddressError);
  });
});

describe('CidrSet IPv4 arithmetic', () => {
  it('matches addresses against subnets octet by octet', () => {
    const s = new CidrSet(['10.99.0.0/16', '192.0.2.255/32', '0.0.0.0/8']);
    expect(['10.99.255.1', '192.0.2.255', '0.1.2.3'].map((a) => s.has(a))).toEqual([true, true, true]);
    expect(['10.98.0.1', '192.0.2.254', '255.255.255.255', '1.0.0.0'].map((a) => s.has(a))).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});
