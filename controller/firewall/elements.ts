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
  return keyId(k.address, k.proto, k.port);
}

/** keyString of the key these make, without building the key first (GrantTable.put, per port). */
function keyId(address: string, proto: string, port: number): string {
  return `${address} ${proto} ${port}`;
}

export function grantKeys(g: ValidGrant): ElementKey[] {
  return g.ports.map((p) => ({ family: g.family, address: g.address, proto: p.proto, port: p.port }));
}

/** One element's bookkeeping: the grants covering it, in arrival order, and the element they make. */
interface Slot {
  id: string;
  key: ElementKey;
  names: string[];
  /** The element the names make (the latest end wins; of equal ends the earliest name): cached. */
  element: Element | undefined;
}

/**
 * The keys touched while a batch of changes is staged, each with whether a grant covered it before
 * its first touch (GrantTable.put and delete note them; GrantTable.changes reads them back).
 */
export class TouchJournal {
  /** @internal By key string, in order of first touch. */
  readonly touched = new Map<string, { key: ElementKey; fresh: boolean }>();

  /** @internal Noted before the key's element changes; only the first touch counts. */
  touch(id: string, key: ElementKey, coveredBefore: boolean): void {
    if (!this.touched.has(id)) this.touched.set(id, { key, fresh: !coveredBefore });
  }
}

/**
 * The grants currently wanted, indexed by element so that a change to one grant yields exactly the
 * elements whose end changes. Built for bursts (10,000 grants staged in one batch): each key's
 * string is computed once per put, and each element is kept, not rebuilt, so a change allocates
 * little beyond the grant itself.
 */
export class GrantTable {
  private readonly byName = new Map<string, { grant: ValidGrant; slots: Slot[] }>();
  private readonly slots = new Map<string, Slot>();

  get size(): number {
    return this.byName.size;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  get(name: string): ValidGrant | undefined {
    return this.byName.get(name)?.grant;
  }

  values(): ValidGrant[] {
    return [...this.byName.values()].map((e) => e.grant);
  }

  /** Insert or replace (by name); every key it changes is noted in `journal`. */
  put(g: ValidGrant, journal?: TouchJournal): void {
    this.delete(g.name, journal);
    const slots: Slot[] = [];
    for (const p of g.ports) {
      const id = keyId(g.address, p.proto, p.port);
      let slot = this.slots.get(id);
      const covered = slot !== undefined;
      slot ??= this.newSlot(id, g, p);
      journal?.touch(id, slot.key, covered);
      slot.names.push(g.name);
      if (!slot.element || slot.names.length === 1 || g.expiresAt > slot.element.expiresAt)
        slot.element = elementOf(slot.key, g.expiresAt, g.name);
      slots.push(slot);
    }
    this.byName.set(g.name, { grant: g, slots });
  }

  /** Remove by name (nothing when unknown); every key it changes is noted in `journal`. */
  delete(name: string, journal?: TouchJournal): void {
    const entry = this.byName.get(name);
    if (!entry) return;
    this.byName.delete(name);
    for (const slot of entry.slots) {
      journal?.touch(slot.id, slot.key, true);
      slot.names.splice(slot.names.indexOf(name), 1);
      if (slot.names.length === 0) {
        this.slots.delete(slot.id);
        slot.element = undefined;
      } else if (slot.element?.owner === name) slot.element = this.latest(slot);
    }
  }

  /** What each key `journal` noted should now be (insertion order = order of first touch). */
  changes(journal: TouchJournal): ElementChange[] {
    const out: ElementChange[] = [];
    for (const [id, { key, fresh }] of journal.touched) {
      const element = this.slots.get(id)?.element;
      out.push(fresh ? { key, element, fresh: true } : { key, element });
    }
    return out;
  }

  /** The element `key` should be, given every grant covering it (the latest end wins). */
  element(key: ElementKey): Element | undefined {
    return this.slots.get(keyString(key))?.element;
  }

  /** Every element, each once. */
  elements(): Element[] {
    const out: Element[] = [];
    for (const slot of this.slots.values()) out.push(slot.element!);
    return out;
  }

  private newSlot(id: string, g: ValidGrant, p: ValidGrant['ports'][number]): Slot {
    const slot: Slot = {
      id,
      key: { family: g.family, address: g.address, proto: p.proto, port: p.port },
      names: [],
      element: undefined,
    };
    this.slots.set(id, slot);
    return slot;
  }

  private latest(slot: Slot): Element | undefined {
    let best: Element | undefined;
    for (const name of slot.names) {
      const g = this.byName.get(name)!.grant;
      if (!best || g.expiresAt > best.expiresAt) best = elementOf(slot.key, g.expiresAt, name);
    }
    return best;
  }
}

/** A literal, not a spread: one object shape for every element, and no copy loop. */
function elementOf(k: ElementKey, expiresAt: number, owner: string): Element {
  return { family: k.family, address: k.address, proto: k.proto, port: k.port, expiresAt, owner };
}
