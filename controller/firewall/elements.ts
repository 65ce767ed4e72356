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

export function grantKeys(g: ValidGrant): ElementKey[] {
  return g.ports.map((p) => ({ family: g.family, address: g.address, proto: p.proto, port: p.port }));
}

/**
 * One element's bookkeeping: the key itself (a slot is its own ElementKey: one object per key), the
 * grants covering it, in arrival order, and the element they make. The slots of one address are a
 * chain (`next`) hanging from the address in GrantTable's index: no key string per element, and
 * an address has one or a few keys.
 */
interface Slot extends ElementKey {
  next: Slot | undefined;
  names: string[];
  /** The element the names make (the latest end wins; of equal ends the earliest name): cached. */
  element: Element | undefined;
  /** The TouchJournal (by its number) that last noted this slot, and whether it was fresh there. */
  touchedBy: number;
  fresh: boolean;
}

/** Slots by address, each address's chained. */
type SlotIndex = Map<string, Slot>;

function findSlot(index: SlotIndex, address: string, proto: Proto, port: number): Slot | undefined {
  let slot = index.get(address);
  while (slot !== undefined && (slot.port !== port || slot.proto !== proto)) slot = slot.next;
  return slot;
}

function addSlot(index: SlotIndex, slot: Slot): void {
  slot.next = index.get(slot.address);
  index.set(slot.address, slot);
}

function removeSlot(index: SlotIndex, slot: Slot): void {
  const head = index.get(slot.address);
  if (head === slot) {
    if (slot.next === undefined) index.delete(slot.address);
    else index.set(slot.address, slot.next);
  } else {
    let prev = head;
    while (prev !== undefined && prev.next !== slot) prev = prev.next;
    if (prev !== undefined) prev.next = slot.next;
  }
  slot.next = undefined;
}

let journals = 0;

/**
 * The keys touched while a batch of changes is staged, each with whether a grant covered it before
 * its first touch (GrantTable.put and delete note them; GrantTable.changes reads them back). The
 * note is kept on the slot itself (the journal's number), not in a map of its own: a burst of
 * 10,000 new grants notes 10,000 keys.
 */
export class TouchJournal {
  /** @internal */
  readonly id = ++journals;
  /** @internal The touched slots, in order of first touch. */
  readonly slots: Slot[] = [];
  /**
   * @internal Slots emptied while this journal was open: a key emptied and covered again in the
   * same batch gets its slot back, so it is one touch (not fresh), not two.
   */
  readonly emptied: SlotIndex = new Map();

  /** @internal Noted before the key's element changes; only the first touch counts. */
  touch(slot: Slot, coveredBefore: boolean): void {
    if (slot.touchedBy === this.id) return;
    slot.touchedBy = this.id;
    slot.fresh = !coveredBefore;
    this.slots.push(slot);
  }
}

/**
 * The grants currently wanted, indexed by element so that a change to one grant yields exactly the
 * elements whose end changes. Built for bursts (10,000 grants staged in one batch): each element is
 * kept, not rebuilt, and a new grant of one port allocates its slot, its element and little else.
 */
export class GrantTable {
  /** The grants by name; a grant's slots are found again from its ports (no list of its own). */
  private readonly byName = new Map<string, ValidGrant>();
  private readonly slots: SlotIndex = new Map();
  private slotCount = 0;

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

  /**
   * Insert or replace (by name); every key it changes is noted in `journal`. `previous`: the grant
   * of that name, when the caller has just looked it up (null: none), so it is not looked up again.
   */
  put(g: ValidGrant, journal?: TouchJournal, previous?: ValidGrant | null): void {
    const old = previous === undefined ? this.byName.get(g.name) : previous;
    if (old) this.remove(old, journal);
    const ports = g.ports;
    for (let i = 0; i < ports.length; i++) {
      const p = ports[i]!;
      const head = this.slots.get(g.address);
      let slot = head;
      while (slot !== undefined && (slot.port !== p.port || slot.proto !== p.proto)) slot = slot.next;
      if (slot === undefined) {
        slot = this.newSlot(g, p, journal, head);
        journal?.touch(slot, false);
        slot.element = elementOf(slot, g.expiresAt, g.name);
      } else {
        journal?.touch(slot, true);
        slot.names.push(g.name);
        if (!slot.element || g.expiresAt > slot.element.expiresAt)
          slot.element = elementOf(slot, g.expiresAt, g.name);
      }
    }
    this.byName.set(g.name, g);
  }

  /** Remove by name (nothing when unknown); every key it changes is noted in `journal`. */
  delete(name: string, journal?: TouchJournal): void {
    const g = this.byName.get(name);
    if (g) this.remove(g, journal);
  }

  /** Remove `g`, which the table holds. */
  private remove(g: ValidGrant, journal: TouchJournal | undefined): void {
    const name = g.name;
    this.byName.delete(name);
    for (const p of g.ports) {
      const slot = findSlot(this.slots, g.address, p.proto, p.port)!;
      journal?.touch(slot, true);
      slot.names.splice(slot.names.indexOf(name), 1);
      if (slot.names.length === 0) {
        removeSlot(this.slots, slot);
        this.slotCount--;
        slot.element = undefined;
        if (journal) addSlot(journal.emptied, slot);
      } else if (slot.element?.owner === name) slot.element = this.latest(slot);
    }
  }

  /** What each key `journal` noted should now be (in order of first touch). */
  changes(journal: TouchJournal): ElementChange[] {
    const touched = journal.slots;
    const out = new Array<ElementChange>(touched.length);
    for (let i = 0; i < touched.length; i++) {
      const slot = touched[i]!;
      out[i] = { key: slot, element: slot.element, fresh: slot.fresh };
    }
    return out;
  }

  /** The element `key` should be, given every grant covering it (the latest end wins). */
  element(key: ElementKey): Element | undefined {
    return findSlot(this.slots, key.address, key.proto, key.port)?.element;
  }

  /** Every element, each once. */
  elements(): Element[] {
    const out = new Array<Element>(this.slotCount);
    let i = 0;
    for (const head of this.slots.values())
      for (let slot: Slot | undefined = head; slot !== undefined; slot = slot.next) out[i++] = slot.element!;
    return out;
  }

  /**
   * A slot for a key no grant covers, holding `g`'s name: the one emptied earlier in this batch, else
   * a new one (its names a literal: a push onto an empty array would reserve room for 16).
   */
  private newSlot(
    g: ValidGrant,
    p: ValidGrant['ports'][number],
    journal: TouchJournal | undefined,
    head: Slot | undefined,
  ): Slot {
    const again = journal && findSlot(journal.emptied, g.address, p.proto, p.port);
    let slot: Slot;
    if (again) {
      removeSlot(journal.emptied, again);
      again.names.push(g.name);
      slot = again;
    } else
      slot = {
        family: g.family,
        address: g.address,
        proto: p.proto,
        port: p.port,
        next: undefined,
        names: [g.name],
        element: undefined,
        touchedBy: 0,
        fresh: false,
      };
    // At the head of its address's chain (`head`: the chain's head now).
    slot.next = head;
    this.slots.set(slot.address, slot);
    this.slotCount++;
    return slot;
  }

  private latest(slot: Slot): Element | undefined {
    let best: Element | undefined;
    for (const name of slot.names) {
      const g = this.byName.get(name)!;
      if (!best || g.expiresAt > best.expiresAt) best = elementOf(slot, g.expiresAt, name);
    }
    return best;
  }
}

/** A literal, not a spread: one object shape for every element, and no copy loop. */
function elementOf(k: ElementKey, expiresAt: number, owner: string): Element {
  return { family: k.family, address: k.address, proto: k.proto, port: k.port, expiresAt, owner };
}
