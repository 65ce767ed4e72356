// The kernel-facing unit: one (source host, protocol, port) with an end. A grant with three ports is
// three elements; two grants covering the same element keep it until the later of their ends.

import type { Proto } from '../../api/ports.js';
import type { ValidGrant } from './validate.js';

export interface Element {
  family: 4 | 6;
  address: string;
  proto: Proto;
  port: number;
  expiresAt: number;
  /** The grant whose end this element carries (iptables writes it as the rule's comment). */
  owner: string;
}

/** What one element should become: set to `element`, or removed when `element` is undefined. */
export interface ElementChange {
  key: ElementKey;
  element: Element | undefined;
  /**
   * No grant covered the key before this change: the kernel holds no live element for it (the
   * table is the kernel's state: applied whole at install and every sync, and every element it
   * drops is deleted or has timed out), so a plain add sets it exactly.
   */
  fresh?: boolean;
}

export interface ElementKey {
  family: 4 | 6;
  address: string;
  proto: Proto;
  port: number;
}

export function keyString(k: ElementKey): string {
  return `${k.address} ${k.proto} ${k.port}`;
}

export function grantKeys(g: ValidGrant): ElementKey[] {
  return g.ports.map((p) => ({ family: g.family, address: g.address, proto: p.proto, port: p.port }));
}

/**
 * The grants currently wanted, indexed by element so that a change to one grant yields exactly the
 * elements whose end changes.
 */
export class GrantTable {
  private readonly byName = new Map<string, ValidGrant>();
  private readonly owners = new Map<string, { key: ElementKey; names: Set<string> }>();

  get size(): number {
    return this.byName.size;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  get(name: string): ValidGrant | undefined {
    return this.byName.get(name);
  }

  values(): ValidGrant[] {
    return [...this.byName.values()];
  }

  /** Insert or replace (by name). Returns the keys whose element may have changed. */
  put(g: ValidGrant): ElementKey[] {
    const touched = this.delete(g.name);
    this.byName.set(g.name, g);
    for (const key of grantKeys(g)) {
      const s = keyString(key);
      let entry = this.owners.get(s);
      if (!entry) this.owners.set(s, (entry = { key, names: new Set() }));
      entry.names.add(g.name);
      touched.push(key);
    }
    return touched;
  }

  /** Returns the keys whose element may have changed (none when `name` is unknown). */
  delete(name: string): ElementKey[] {
    const g = this.byName.get(name);
    if (!g) return [];
    this.byName.delete(name);
    const keys = grantKeys(g);
    for (const key of keys) {
      const s = keyString(key);
      const entry = this.owners.get(s);
      entry?.names.delete(name);
      if (entry?.names.size === 0) this.owners.delete(s);
    }
    return keys;
  }

  /** Does some grant cover `key`? */
  covers(key: ElementKey): boolean {
    return this.owners.has(keyString(key));
  }

  /** The element `key` should be, given every grant covering it (the latest end wins). */
  element(key: ElementKey): Element | undefined {
    let best: Element | undefined;
    for (const name of this.owners.get(keyString(key))?.names ?? []) {
      const g = this.byName.get(name)!;
      if (!best || g.expiresAt > best.expiresAt) best = { ...key, expiresAt: g.expiresAt, owner: name };
    }
    return best;
  }

  /** Every element, each once. */
  elements(): Element[] {
    return [...this.owners.values()].map((e) => this.element(e.key)!);
  }
}
