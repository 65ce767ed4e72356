// Start-up without TurboFan (cmd/startup.ts) and the addon's releaseMemory() (native/mem_trim.cc):
// the flag is switched off once and back on once, by the daemon or by the fallback timer, and
// releaseMemory() runs its collection and malloc_trim and leaves the heap usable.

import { describe, expect, it } from 'vitest';
import { FALLBACK_MS, Startup, type StartupDeps } from '../cmd/startup.js';
import { pcapAddon } from '../sniffer/capture/addon.js';

function fakeDeps() {
  const flags: string[] = [];
  const timers: { fn: () => void; ms: number; cleared: boolean; unrefed: boolean }[] = [];
  const deps: StartupDeps = {
    setFlags: (f) => flags.push(f),
    setTimer: (fn, ms) => {
      const t = { fn, ms, cleared: false, unrefed: false };
      timers.push(t);
      return { unref: () => (t.unrefed = true) };
    },
    clearTimer: () => timers.forEach((t) => (t.cleared = true)),
  };
  return { deps, flags, timers };
}

describe('Startup', () => {
  it('turns TurboFan off at begin and on at end, once each', () => {
    const { deps, flags, timers } = fakeDeps();
    const s = new Startup(deps);
    s.begin();
    s.begin();
    expect(flags).toEqual(['--no-turbofan']);
    expect(timers).toHaveLength(1);
    expect(timers[0]!.ms).toBe(FALLBACK_MS);
    expect(timers[0]!.unrefed).toBe(true);
    expect(s.end()).toBe(true);
    expect(s.end()).toBe(false);
    expect(flags).toEqual(['--no-turbofan', '--turbofan']);
    expect(timers[0]!.cleared).toBe(true);
  });

  it('turns TurboFan on from the fallback timer when nothing ends the start-up', () => {
    const { deps, flags, timers } = fakeDeps();
    const s = new Startup(deps);
    s.begin();
    timers[0]!.fn();
    expect(flags).toEqual(['--no-turbofan', '--turbofan']);
    expect(s.end()).toBe(false);
    expect(flags).toHaveLength(2);
  });

  it('does nothing at end without a begin', () => {
    const { deps, flags } = fakeDeps();
    expect(new Startup(deps).end()).toBe(false);
    expect(flags).toEqual([]);
  });
});

describe('releaseMemory (native/mem_trim.cc)', () => {
  it('collects and trims, and the heap stays usable', () => {
    const addon = pcapAddon();
    expect(typeof addon.releaseMemory).toBe('function');
    let garbage: number[][] | undefined = Array.from({ length: 2000 }, (_, i) => [i, i + 1, i + 2]);
    const kept = { n: garbage.length };
    garbage = undefined;
    const result = addon.releaseMemory();
    expect(typeof result.trimmed).toBe('boolean');
    expect(Object.keys(result)).toEqual(['trimmed']);
    expect(kept.n).toBe(2000);
    expect(garbage).toBeUndefined();
    // Allocation after the collection works as before.
    expect(Array.from({ length: 1000 }, (_, i) => i * 2).reduce((a, b) => a + b, 0)).toBe(999_000);
  });
});
