// Timing for the SPA micro-benchmarks: each case is warmed up, calibrated so that one run takes
// about RUN_MS, then run RUNS times, interleaved with the other cases; the result is the median of
// the per-run microseconds per operation (the median, because the machine is shared and a run can
// be interrupted).

const RUN_MS = 60;
const RUNS = 7;
const WARMUP_MS = 100;

/** Keeps results alive so the JIT cannot drop the measured work. */
let sink = 0;
export function consume(value: unknown): void {
  if (value === undefined || value === null || value === false) sink ^= 1;
  else sink ^= 2;
}
/** Read once at the end, so the sink is observably used. */
export function sinkValue(): number {
  return sink;
}

export interface Measurement {
  name: string;
  /** Median microseconds per operation. */
  medianUs: number;
  /** Fastest and slowest run, microseconds per operation. */
  minUs: number;
  maxUs: number;
  opsPerRun: number;
}

/**
 * Milliseconds of CPU time (user + system) this process spent running `fn` n times. CPU time, not
 * wall time: on a machine shared with other work, time spent waiting for a core is not the code's.
 */
function timeLoop(fn: (i: number) => void, n: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

export interface BenchCase {
  name: string;
  fn: (i: number) => void;
}

/** Warm a case up and size its run so that one run takes about RUN_MS. */
function calibrate(fn: (i: number) => void): number {
  let n = 64;
  const warmEnd = Date.now() + WARMUP_MS;
  while (Date.now() < warmEnd) timeLoop(fn, n);
  for (;;) {
    const ms = timeLoop(fn, n);
    if (ms >= RUN_MS / 4 || n >= 1 << 24) return Math.max(1, Math.round((n * RUN_MS) / Math.max(ms, 0.001)));
    n *= 4;
  }
}

/**
 * Measure every case, the runs interleaved (run r of every case, then run r + 1 of every case):
 * on a shared machine a burst of someone else's work then slows one run of each case, not every
 * run of one case, and the median drops it.
 */
export function measureAll(cases: BenchCase[]): Measurement[] {
  const sizes = cases.map((c) => calibrate(c.fn));
  const perOp: number[][] = cases.map(() => []);
  for (let r = 0; r < RUNS; r++) {
    cases.forEach((c, k) => perOp[k]!.push((timeLoop(c.fn, sizes[k]!) * 1000) / sizes[k]!));
  }
  return cases.map((c, k) => {
    const runs = perOp[k]!.sort((a, b) => a - b);
    return {
      name: c.name,
      medianUs: runs[Math.floor(RUNS / 2)]!,
      minUs: runs[0]!,
      maxUs: runs[RUNS - 1]!,
      opsPerRun: sizes[k]!,
    };
  });
}

export function formatUs(us: number): string {
  return us < 10 ? us.toFixed(2) : us.toFixed(1);
}
