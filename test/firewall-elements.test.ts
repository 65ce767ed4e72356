// GrantTable and TouchJournal: the elements a batch of grant changes makes, the cached element of
// each key (latest end wins, earliest name on a tie), and which keys are fresh to the kernel.

import { describe, expect, it } from 'vitest';
import { CidrSet } from '../api/addresses.js';
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
