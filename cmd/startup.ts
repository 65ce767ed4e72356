// Start-up without TurboFan. Loading the program resolves ~300 module files, and that makes Node's
// own path and URL helpers hot enough for V8 to optimize them with TurboFan: ~40 compilations that
// are never needed again, and they page in ~3 MiB of TurboFan's machine code (plus its zones and
// code space) that stay resident for the life of a daemon that then idles. So the binary starts
// with TurboFan off (cmd/knockgate.ts calls beginStartup() before it loads anything else) and turns
// it back on when start-up ends: a daemon calls endStartup() once it runs (standalone: after its
// "started" line), every other command gets it back from a timer after FALLBACK_MS. Ignition and
// Sparkplug run the start-up code meanwhile; the packet path tiers up to TurboFan as before, once
// traffic makes it hot. (V8 reads this flag each time it decides whether to optimize a function, so
// switching it at run time takes effect at the next decision.)

import { setFlagsFromString } from 'node:v8';

/** Longest a command runs without TurboFan when nothing ends the start-up earlier. */
export const FALLBACK_MS = 10_000;

export interface StartupDeps {
  setFlags: (flags: string) => void;
  setTimer: (fn: () => void, ms: number) => { unref?: () => void };
  clearTimer: (timer: unknown) => void;
}

const defaults: StartupDeps = {
  setFlags: setFlagsFromString,
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (t) => clearTimeout(t as NodeJS.Timeout),
};

export class Startup {
  private timer: unknown;
  private state: 'idle' | 'starting' | 'done' = 'idle';

  constructor(private readonly deps: StartupDeps = defaults) {}

  /** TurboFan off until end() or FALLBACK_MS. Once per process; later calls do nothing. */
  begin(): void {
    if (this.state !== 'idle') return;
    this.state = 'starting';
    this.deps.setFlags('--no-turbofan');
    const timer = this.deps.setTimer(() => this.end(), FALLBACK_MS);
    timer.unref?.();
    this.timer = timer;
  }

  /** TurboFan on again. Idempotent; true when this call ended the start-up. */
  end(): boolean {
    if (this.state !== 'starting') return false;
    this.state = 'done';
    this.deps.clearTimer(this.timer);
    this.deps.setFlags('--turbofan');
    return true;
  }
}

const startup = new Startup();

export function beginStartup(): void {
  startup.begin();
}

export function endStartup(): boolean {
  return startup.end();
}
