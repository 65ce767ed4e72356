// Running knockgate's own code inside a test's network namespaces, straight from the TypeScript
// sources with vite-node (vitest's runner; no build step needed):
//   - knockgateCli(host, args): the `knockgate` binary, to completion, with its exit status and output;
//   - startCaptureHarness(host, ...): capture-harness.ts (live cap capture + engine), its JSON lines
//     collected as they arrive, so a test can wait for a verdict.
// Processes are spawned through Host.spawn, so Topology.destroy() stops them by PID.

import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KnockPolicy } from '../../api/types.js';
import type { Host } from './netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VITE_NODE = `${ROOT}node_modules/.bin/vite-node`;

function tsEntry(path: string, args: string[]): string[] {
  return [process.execPath, VITE_NODE, `${ROOT}${path}`, '--', ...args];
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `knockgate ARGS` in the host's namespace; never rejects on a non-zero exit. */
export function knockgateCli(host: Host, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  const [cmd, ...rest] = tsEntry('cmd/knockgate.ts', args);
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', host.netns, cmd!, ...rest],
      { timeout: timeoutMs, cwd: ROOT },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export interface HarnessEvent {
  event: 'ready' | 'verdict' | 'error' | 'problem' | 'gate' | 'reloaded';
  counts?: Record<string, number>;
  verdict?: { kind: string; policy?: string; source?: string; ports?: string[]; reason?: string };
  packet?: { src: string; proto: string; dstPort: number };
  interfaces?: string[];
  filters?: Record<string, string>;
  drops?: { interface: string; received?: number; dropped?: number; interfaceDropped?: number }[];
  message?: string;
}

export interface CaptureHarness {
  readonly events: HarnessEvent[];
  readonly ready: HarnessEvent;
  /** Send the harness a signal (SIGUSR2: gate counts, SIGHUP: reload). */
  signal(sig: NodeJS.Signals): void;
  verdicts(): HarnessEvent[];
  grants(): HarnessEvent[];
  /** Wait until some event satisfies `pred`, with a generous deadline. */
  waitFor(pred: (e: HarnessEvent) => boolean, what: string, timeoutMs?: number): Promise<HarnessEvent>;
}

/** Start capture-harness.ts in `host`'s namespace on `interfaces`, and wait for it to be capturing. */
export async function startCaptureHarness(
  host: Host,
  opts: {
    interfaces: string[];
    policies: KnockPolicy[];
    dir: string;
    bufferBytes?: number;
    /** SPA keys by keySecretRef name (written to a file the harness re-reads on SIGHUP). */
    secrets?: Record<string, Record<string, string>>;
  },
): Promise<CaptureHarness> {
  const file = `${opts.dir}/policies-${host.netns}.json`;
  writeFileSync(file, JSON.stringify(opts.policies));
  const args = ['--policies', file, ...opts.interfaces.flatMap((i) => ['--interface', i])];
  if (opts.secrets) {
    const secretsFile = `${opts.dir}/secrets-${host.netns}.json`;
    writeFileSync(secretsFile, JSON.stringify(opts.secrets), { mode: 0o600 });
    args.push('--secrets', secretsFile);
  }
  if (opts.bufferBytes !== undefined) args.push('--buffer-size', String(opts.bufferBytes));
  const [cmd, ...rest] = tsEntry('test/helpers/capture-harness.ts', args);
  const child = host.spawn(cmd!, rest, { cwd: ROOT });
  const events: HarnessEvent[] = [];
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        events.push(JSON.parse(line) as HarnessEvent);
      } catch {
        /* not one of the harness's lines */
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < 10_000) stderr += chunk.toString('utf8');
  });
  const find = async (pred: (e: HarnessEvent) => boolean, what: string, timeoutMs = 20_000) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = events.find(pred);
      if (found) return found;
      const failed = events.find((e) => e.event === 'error');
      if (failed) throw new Error(`capture harness failed: ${failed.message}`);
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`capture harness exited (${child.exitCode ?? child.signalCode}): ${stderr}`);
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const ready = await find((e) => e.event === 'ready', 'the capture harness to be ready', 45_000);
  return {
    events,
    ready,
    signal: (sig) => {
      if (child.pid) process.kill(child.pid, sig);
    },
    verdicts: () => events.filter((e) => e.event === 'verdict'),
    grants: () => events.filter((e) => e.event === 'verdict' && e.verdict?.kind === 'grant'),
    waitFor: find,
  };
}
