// What every scenario shares: paths, the ports of the bench topology, the options of a run, and
// the shape of the figures each scenario reports.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..', '..');
export const KNOCKGATE = join(ROOT, 'dist', 'cmd', 'knockgate.js');
export const PROBE = join(ROOT, 'dist', 'bench', 'probe.js');
export const RESULTS_DIR = join(ROOT, 'bench', 'results');
export const PROTECTED_PORT = 2222;
export const KNOCK_PORTS = [7001, 7002, 7003];
export const SPA_PORT = 62201;

export interface SpaKeys {
  keyBase64: string;
  hmacKeyBase64: string;
}

export function newKeys(): SpaKeys {
  return { keyBase64: randomBytes(32).toString('base64'), hmacKeyBase64: randomBytes(64).toString('base64') };
}

export interface RunOptions {
  quick: boolean;
  /** Open-latency trials per daemon and trigger. */
  trials: number;
  /** Repetitions of each flood (median and p99 are over these). */
  floodRuns: number;
  /** knockgate's --buffer-size (capture buffer), when the run sets one; else its default. */
  bufferBytes?: number;
  /** A scratch directory of this run (configs, pcaps), removed at the end. */
  dir: string;
}

/** One reported number, over `values` (one per run): median and p99 of them, and how many. */
export interface Figure {
  scenario: string;
  daemon: string;
  name: string;
  unit: string;
  median: number;
  p99: number;
  runs: number;
  /** The per-run values, for whoever wants more than median and p99. */
  values: number[];
  /** The target for knockgate, when there is one. */
  target?: string;
  /** Open latency: trials that never connected (not in values). */
  failures?: number;
}

/** A figure measured once: median, p99 and the only value are `value`. */
export function oneRunFigure(
  scenario: string,
  daemon: string,
  name: string,
  unit: string,
  value: number,
  target?: string,
): Figure {
  return {
    scenario,
    daemon,
    name,
    unit,
    median: value,
    p99: value,
    runs: 1,
    values: [value],
    ...(target ? { target } : {}),
  };
}

export interface ScenarioResult {
  name: string;
  /** The command that measured every figure in it. */
  command: string;
  markdown: string;
  figures: Figure[];
  /** Raw data the plot needs (open latency: every sample per daemon). */
  samples?: Record<string, number[]>;
}

export interface Scenario {
  name: string;
  description: string;
  run(opts: RunOptions): Promise<ScenarioResult>;
}
