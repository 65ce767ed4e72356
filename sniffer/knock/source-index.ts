// Source address → small integer, in typed arrays only: the knock door's index from a source to its
// attempt's slot. A flood of spoofed sources then allocates nothing per packet (no key string, no
// boxed number, no Map entry for the garbage collector to trace or promote).
//
// An address is 4 32-bit words plus its family (IPv4: 0, 0, 0, the address), loaded into the
// index's probe key by setProbeFromFrame() or setProbeFromText() before get/set/delete. Open
// addressing with linear probing, at most half full, backward-shift deletion (no tombstones, so no
// slowdown after many deletions). The hash is seeded per index, so spoofed sources cannot be chosen
// to collide.

import { randomBytes } from 'node:crypto';
import type { DecodedFrame } from '../frames/frame.js';
import { parseSourceText } from '../frames/source-key.js';

const EMPTY = 0;
const MIN_CAPACITY = 1024;

export class SourceIndex {
  /** The probe key: 4 words and the family (4 or 6). */
  readonly probe = new Uint32Array(4);
  probeFamily: 4 | 6 = 4;
  private capacity = 0;
  private mask = 0;
  private size = 0;
  private words = new Uint32Array(0);
  private families = new Uint8Array(0);
  private values = new Int32Array(0);
  /** Each entry's hash, so that moving entries (deletion, growth) never recomputes one. */
  private hashes = new Int32Array(0);
  private readonly seed: number;

  constructor() {
    this.seed = randomBytes(4).readUInt32LE(0);
  }

  get count(): number {
    return this.size;
  }

  /** Load the probe key from a decoded frame's source address. */
  setProbeFromFrame(f: DecodedFrame): void {
    const b = f.buf;
    let o = f.srcOffset;
    if (f.family === 4) {
      this.probe[0] = this.probe[1] = this.probe[2] = 0;
      this.probe[3] = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
      this.probeFamily = 4;
      return;
    }
    for (let w = 0; w < 4; w++, o += 4)
      this.probe[w] = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
    this.probeFamily = 6;
  }

  /** Load the probe key from an address in text; false when the text is not an address. */
  setProbeFromText(text: string, family: 4 | 6): boolean {
    const bytes = parseSourceText(text, family);
    if (!bytes) return false;
    const off = bytes.length === 4 ? 3 : 0;
    this.probe[0] = this.probe[1] = this.probe[2] = 0;
    for (let i = 0; i < bytes.length; i += 4)
      this.probe[off + i / 4] =
        ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
    this.probeFamily = family;
    return true;
  }

  /** The value stored for the probe key, or -1. */
  get(): number {
    if (this.size === 0) return -1;
    const at = this.find(this.probe, 0, this.probeFamily, this.hash(this.probe, 0, this.probeFamily));
    return this.families[at] === EMPTY ? -1 : this.values[at]!;
  }

  /** Store `value` for the probe key (added or replaced). */
  set(value: number): void {
    this.setKey(this.probe, 0, this.probeFamily, value, this.hash(this.probe, 0, this.probeFamily));
  }

  /** Remove the probe key, if present. */
  delete(): void {
    this.deleteKey(this.probe, 0, this.probeFamily);
  }

  /** Store `value` for the key at words[at..at+4) of `family` (whose hash is `hash`, when known). */
  setKey(
    words: Uint32Array,
    at: number,
    family: number,
    value: number,
    hash = this.hash(words, at, family),
  ): void {
    if (2 * (this.size + 1) > this.capacity) this.grow();
    const i = this.find(words, at, family, hash);
    if (this.families[i] === EMPTY) {
      this.words.set(words.subarray(at, at + 4), i * 4);
      this.families[i] = family;
      this.hashes[i] = hash;
      this.size++;
    }
    this.values[i] = value;
  }

  /** Remove the key at words[at..at+4) of `family`, if present. */
  deleteKey(words: Uint32Array, at: number, family: number): void {
    if (this.size === 0) return;
    let hole = this.find(words, at, family, this.hash(words, at, family));
    if (this.families[hole] === EMPTY) return;
    this.families[hole] = EMPTY;
    this.size--;
    // Backward shift: move later entries of the run into the hole when their home allows it.
    for (let j = (hole + 1) & this.mask; this.families[j] !== EMPTY; j = (j + 1) & this.mask) {
      const home = this.hashes[j]! & this.mask;
      const fits = hole <= j ? home <= hole || home > j : home <= hole && home > j;
      if (!fits) continue;
      this.words.copyWithin(hole * 4, j * 4, j * 4 + 4);
      this.families[hole] = this.families[j]!;
      this.values[hole] = this.values[j]!;
      this.hashes[hole] = this.hashes[j]!;
      this.families[j] = EMPTY;
      hole = j;
    }
  }

  /** Forget everything (and the memory). */
  clear(): void {
    this.capacity = this.mask = this.size = 0;
    this.words = new Uint32Array(0);
    this.families = new Uint8Array(0);
    this.values = new Int32Array(0);
    this.hashes = new Int32Array(0);
  }

  /** The slot holding the key, or the empty slot where it would go. */
  private find(key: Uint32Array, at: number, family: number, hash: number): number {
    const words = this.words;
    const k0 = key[at]!;
    const k1 = key[at + 1]!;
    const k2 = key[at + 2]!;
    const k3 = key[at + 3]!;
    for (let i = hash & this.mask; ; i = (i + 1) & this.mask) {
      const f = this.families[i]!;
      if (f === EMPTY) return i;
      if (this.hashes[i] !== hash || f !== family) continue;
      const w = i * 4;
      if (words[w + 3] === k3 && words[w] === k0 && words[w + 1] === k1 && words[w + 2] === k2) return i;
    }
  }

  /** The seeded hash of the key at words[at..at+4) (murmur3's mixing; the slot is its low bits). */
  private hash(words: Uint32Array, at: number, family: number): number {
    let h = this.seed ^ family;
    h = Math.imul(h ^ words[at]!, 0xcc9e2d51);
    h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
    h = Math.imul(h ^ words[at + 1]!, 0xcc9e2d51);
    h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
    h = Math.imul(h ^ words[at + 2]!, 0xcc9e2d51);
    h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
    h = Math.imul(h ^ words[at + 3]!, 0xcc9e2d51);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** Double the table (the first one holds MIN_CAPACITY) and re-insert every entry. */
  private grow(): void {
    const old = this.words;
    const oldFamilies = this.families;
    const oldValues = this.values;
    const oldHashes = this.hashes;
    const oldCapacity = this.capacity;
    this.capacity = oldCapacity === 0 ? MIN_CAPACITY : oldCapacity * 2;
    this.mask = this.capacity - 1;
    this.words = new Uint32Array(this.capacity * 4);
    this.families = new Uint8Array(this.capacity);
    this.values = new Int32Array(this.capacity);
    this.hashes = new Int32Array(this.capacity);
    this.size = 0;
    for (let i = 0; i < oldCapacity; i++)
      if (oldFamilies[i] !== EMPTY) this.setKey(old, i * 4, oldFamilies[i]!, oldValues[i]!, oldHashes[i]!);
  }
}
