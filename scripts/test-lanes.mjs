// `make test` on two cores: two lanes at once, each running its files one at a time.
//   netns lane: every test file that builds network namespaces (itself or through a test/helpers
//               module it imports) — these share the kernel's netfilter state, so never two at once.
//   plain lane: everything else (codecs, engines, the API emulator, CLIs on loopback).
// The netns lane prints as it goes; the plain lane's output is kept and printed after it, so the
// log reads one lane at a time. Both lanes are also logged, and the failures of either are printed
// again at the very end: a CI log is often read from its tail. Exit status: 0 only when both passed.
// Extra arguments go to both vitest runs (e.g. --reporter=verbose).

import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import console from 'node:console';
import process from 'node:process';

const TEST_DIR = 'test';
const NETNS = /\bip netns\b|\bnetns\b/;
const LOCAL_IMPORT = /from\s+['"](\.{1,2}\/[^'"]+)['"]/g;

/** True when `file` or a local module it imports (transitively) builds network namespaces. */
function usesNetns(file, seen = new Map()) {
  if (seen.has(file)) return seen.get(file);
  seen.set(file, false);
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  let found = NETNS.test(text);
  for (const m of text.matchAll(LOCAL_IMPORT)) {
    if (found) break;
    const target = resolve(dirname(file), m[1].replace(/\.js$/, '.ts'));
    // Only the tests' own helpers count: the product may mention netns in comments.
    if (target.startsWith(resolve(TEST_DIR))) found = usesNetns(target, seen);
  }
  seen.set(file, found);
  return found;
}

const files = readdirSync(TEST_DIR)
  .filter((f) => f.endsWith('.test.ts'))
  .sort()
  .map((f) => join(TEST_DIR, f));
const netns = files.filter((f) => usesNetns(f));
const plain = files.filter((f) => !netns.includes(f));
const extra = process.argv.slice(2);

/** Runs one lane's files; its output goes to `out` and, when `echo`, to this process's too. */
function lane(name, laneFiles, out, echo) {
  return new Promise((resolveLane) => {
    const child = spawn('npx', ['vitest', 'run', '--fileParallelism=false', ...extra, ...laneFiles], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    });
    for (const [from, to] of [
      [child.stdout, process.stdout],
      [child.stderr, process.stderr],
    ]) {
      from.pipe(out, { end: false });
      if (echo) from.pipe(to, { end: false });
    }
    child.on('close', (code, signal) => resolveLane({ name, code: code ?? (signal ? 1 : 0) }));
  });
}

// vitest's lines that name a failure: the failed file and test headers, the assertion, the error.
const FAILURE_LINE = /\bFAIL\b|\bfailed\b|[×✗]|AssertionError|\bError:|Unhandled|Timed out|timed out/;
// vitest colours its output; the escape sequences go before the lines are matched.
// eslint-disable-next-line no-control-regex -- ESC is exactly what this matches
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * The lines of a lane's log that name its failures: not a passed test's line (a name may say
 * "failed"), and the last `max` of them, since vitest's "Failed Tests" summary ends the log.
 */
function failureLines(log, max = 60) {
  const lines = readFileSync(log, 'utf8').replace(ANSI, '').split('\n');
  return lines.filter((l) => FAILURE_LINE.test(l) && !l.includes('✓')).slice(-max);
}

console.log(
  `test lanes: ${netns.length} files build namespaces (one at a time), ${plain.length} do not (alongside)`,
);
const logDir = mkdtempSync(join(tmpdir(), 'knockgate-tests-'));
const netnsLog = join(logDir, 'netns-lane.log');
const plainLog = join(logDir, 'plain-lane.log');
const netnsOut = createWriteStream(netnsLog);
const plainOut = createWriteStream(plainLog);
const started = Date.now();
const [netnsResult, plainResult] = await Promise.all([
  lane('netns', netns, netnsOut, true),
  lane('plain', plain, plainOut, false),
]);
await Promise.all([netnsOut, plainOut].map((o) => new Promise((r) => o.end(r))));
console.log(`\n===== plain lane (ran alongside the netns lane; log ${plainLog}) =====\n`);
process.stdout.write(readFileSync(plainLog));
const seconds = ((Date.now() - started) / 1000).toFixed(0);
for (const [r, log] of [
  [netnsResult, netnsLog],
  [plainResult, plainLog],
]) {
  if (r.code === 0) continue;
  console.log(`\n===== lane ${r.name} failed: its failure lines (whole log ${log}) =====`);
  for (const l of failureLines(log)) console.log(l);
}
console.log('');
for (const r of [netnsResult, plainResult])
  console.log(`lane ${r.name}: ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`}`);
console.log(`both lanes: ${seconds} s`);
process.exit(netnsResult.code === 0 && plainResult.code === 0 ? 0 : 1);
