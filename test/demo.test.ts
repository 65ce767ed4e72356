// `make demo` (scripts/demo.sh, after make test's build): it runs to the end with the real knock and
// fwknop clients, and leaves no namespace, process or rule behind — also when interrupted.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sh, skipWithoutNetns } from './helpers/netns.js';

const SCRIPT = join(import.meta.dirname, '..', 'scripts', 'demo.sh');

interface DemoRun {
  pid: number;
  output: string;
  status: number | null;
}

/** Run the demo; with `interruptAt`, send SIGINT once that text appears in its output. */
function runDemo(interruptAt?: string): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let interrupted = false;
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (interruptAt && !interrupted && output.includes(interruptAt)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ pid: child.pid!, output, status });
    });
  });
}

/** What a demo run with this PID could have left: namespaces, processes, its work dir. */
async function leftovers(run: DemoRun): Promise<string[]> {
  const tag = `kgdemo${run.pid}`;
  const found: string[] = [];
  const { stdout: netns } = await sh('ip', ['netns', 'list']);
  found.push(...netns.split('\n').filter((l) => l.startsWith(tag)));
  const { stdout: ps } = await sh('ps', ['-eo', 'pid,args']);
  found.push(...ps.split('\n').filter((l) => l.includes('knockgate-demo.') && !l.includes('ps -eo')));
  const work = /log: (\/tmp\/knockgate-demo\.\w+)\//.exec(run.output)?.[1];
  if (work && existsSync(work)) found.push(work);
  return found;
}

describe.skipIf(skipWithoutNetns('make demo'))('make demo', () => {
  it('runs to the end: closed, knock opens, SPA opens, grants listed, expiry closes', async () => {
    const run = await runDemo();
    expect(run.status, run.output).toBe(0);
    for (const line of [
      'Before any knock, port 2222 is closed to everyone',
      'Alice knocks with the real knock client',
      'Bob sends an SPA packet with the real fwknop client',
      'knockgate grants shows both',
      'Done:',
    ])
      expect(run.output).toContain(line);
    expect(run.output).not.toContain('unexpected');
    expect(run.output).toMatch(/ssh-knock-\w+ +10\.213\.1\.2\/32 +2222\/tcp +ssh-knock +knock +Active/);
    expect(run.output).toMatch(/spa-\w+ +10\.213\.2\.2\/32 +2222\/tcp +ssh-spa +spa +Active/);
    expect(run.output).toMatch(/ssh-knock-\w+ .* Expired/);
    expect(await leftovers(run)).toEqual([]);
  }, 240_000);

  it('removes everything it created when interrupted', async () => {
    const run = await runDemo('Alice knocks');
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('Cleaning up');
    expect(await leftovers(run)).toEqual([]);
  }, 240_000);
});
