// npm run bench [-- --quick] [-- --only junk-flood,knock-flood] [-- --trials N] [-- --runs N]
//
// Every scenario (bench/scenarios/) builds its own network namespaces, runs knockgate and the peer
// daemon one after the other on identical traffic, and tears everything down (also on SIGINT).
// Prints markdown tables on stdout (progress on stderr) and writes bench/results/latest.json
// (machine, date, commit, every figure with its median, p99 and run count) and, when open latency
// ran, bench/results/latency-cdf.svg. Root only. --quick: smaller sizes, under three minutes.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { latencyCdfSvg } from './lib/cdf-plot.js';
import { onInterrupt } from './lib/topology.js';
import { RESULTS_DIR, ROOT, type RunOptions, type Scenario, type ScenarioResult } from './lib/setup.js';
import { aws } from './scenarios/aws.js';
import { grantScale } from './scenarios/grant-scale.js';
import { base64JunkFlood, junkFlood } from './scenarios/junk-flood.js';
import { knockFlood } from './scenarios/knock-flood.js';
import { kubeLatency } from './scenarios/kube-latency.js';
import { kubeMemory } from './scenarios/kube-memory.js';
import { kubeReconcile } from './scenarios/kube-reconcile.js';
import { memory } from './scenarios/memory.js';
import { openLatency } from './scenarios/open-latency.js';

const SCENARIOS: Scenario[] = [
  openLatency,
  junkFlood,
  knockFlood,
  grantScale,
  memory,
  base64JunkFlood,
  kubeLatency,
  kubeReconcile,
  aws,
  kubeMemory,
];

class UsageError extends Error {}

function parseArgs(argv: string[]): {
  quick: boolean;
  only: Scenario[];
  trials?: number;
  runs?: number;
  bufferBytes?: number;
} {
  let quick = false;
  let only = SCENARIOS;
  let trials: number | undefined;
  let runs: number | undefined;
  let bufferBytes: number | undefined;
  const int = (flag: string, v: string | undefined, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new UsageError(`${flag}: want an integer 1-${max}, got "${v ?? ''}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--only') {
      const names = (argv[++i] ?? '').split(',').filter(Boolean);
      if (names.length === 0) throw new UsageError('--only: name at least one scenario');
      only = names.map((n) => {
        const s = SCENARIOS.find((x) => x.name === n);
        if (!s)
          throw new UsageError(
            `--only: unknown scenario "${n}" (have: ${SCENARIOS.map((x) => x.name).join(', ')})`,
          );
        return s;
      });
    } else if (a === '--trials') trials = int('--trials', argv[++i], 240);
    else if (a === '--runs') runs = int('--runs', argv[++i], 10);
    else if (a === '--buffer-size') bufferBytes = int('--buffer-size', argv[++i], 1024 ** 3);
    else
      throw new UsageError(
        `unknown argument "${a}" (want --quick, --only NAMES, --trials N, --runs N, --buffer-size BYTES)`,
      );
  }
  return {
    quick,
    only,
    ...(trials ? { trials } : {}),
    ...(runs ? { runs } : {}),
    ...(bufferBytes ? { bufferBytes } : {}),
  };
}

interface SavedScenario {
  name: string;
  date?: string;
  commit?: string;
  [key: string]: unknown;
}

/**
 * The scenarios of the previous latest.json, each with the date and commit it was measured at: a
 * run of some scenarios (--only) replaces theirs and keeps the others' figures.
 */
function previousScenarios(): SavedScenario[] {
  try {
    const old = JSON.parse(readFileSync(join(RESULTS_DIR, 'latest.json'), 'utf8')) as {
      date?: string;
      commit?: string;
      scenarios?: SavedScenario[];
    };
    return (old.scenarios ?? []).map((s) => ({
      ...s,
      date: s.date ?? old.date,
      commit: s.commit ?? old.commit,
    }));
  } catch {
    return [];
  }
}

function machine() {
  return {
    hostname: hostname(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    kernel: release(),
    node: process.version,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new UsageError('needs root (it builds network namespaces)');
  const dir = mkdtempSync(join(tmpdir(), 'kg-bench-'));
  onInterrupt(() => rmSync(dir, { recursive: true, force: true }));
  const opts: RunOptions = {
    quick: args.quick,
    trials: args.trials ?? (args.quick ? 30 : 200),
    floodRuns: args.runs ?? (args.quick ? 1 : 3),
    ...(args.bufferBytes ? { bufferBytes: args.bufferBytes } : {}),
    dir,
  };
  const started = Date.now();
  const host = machine();
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
  const command = `npm run bench --${args.quick ? ' --quick' : ''}${args.only === SCENARIOS ? '' : ` --only ${args.only.map((s) => s.name).join(',')}`}${args.runs ? ` --runs ${args.runs}` : ''}${args.trials ? ` --trials ${args.trials}` : ''}${args.bufferBytes ? ` --buffer-size ${args.bufferBytes}` : ''}`;
  const results: ScenarioResult[] = [];
  const previous = previousScenarios();
  const date = new Date(started).toISOString();
  // Written after every scenario, so an interrupted or failed run keeps what it measured.
  const save = () => {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const json = {
      machine: host,
      date,
      durationSeconds: Math.round((Date.now() - started) / 1000),
      commit,
      command,
      complete: results.length === args.only.length,
      options: {
        quick: opts.quick,
        trials: opts.trials,
        floodRuns: opts.floodRuns,
        knockgateBufferBytes: opts.bufferBytes ?? 'default',
      },
      scenarios: [
        ...previous.filter((p) => !results.some((r) => r.name === p.name)),
        ...results.map((r) => ({ name: r.name, date, commit, command: r.command, figures: r.figures })),
      ],
    };
    writeFileSync(join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
    const latency = results.find((r) => r.samples);
    if (latency?.samples)
      writeFileSync(
        join(RESULTS_DIR, 'latency-cdf.svg'),
        latencyCdfSvg(latency.samples, { subtitle: `${command} · ${json.date} · ${commit}` }),
      );
  };
  console.log(
    [
      `## knockgate benchmarks (${new Date(started).toISOString()}, commit ${commit}, ${host.cores} × ${host.cpu}, load ${host.loadAverageAtStart.join(' ')})`,
      '',
      `Command: \`${command}\``,
      '',
    ].join('\n'),
  );
  try {
    for (const s of args.only) {
      const t = Date.now();
      const r = await s.run(opts);
      results.push(r);
      save();
      console.log(`${r.markdown}\n`);
      console.error(`${s.name}: done in ${Math.round((Date.now() - t) / 1000)} s`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.error(
    `results: ${join(RESULTS_DIR, 'latest.json')} (${Math.round((Date.now() - started) / 1000)} s)`,
  );
}

try {
  await main();
} catch (err) {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
}
