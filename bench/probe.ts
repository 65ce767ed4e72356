// The client side of the open-latency benchmark, run inside the client network namespace:
//   node dist/bench/probe.js '<json ProbeArgs>'
// For each source address (one trial each, so every trial starts closed) it sends the trigger (a TCP
// knock sequence, or one SPA datagram) from that address, takes t0 right after the last packet left,
// then sends a raw TCP SYN to the protected port every 0.1 ms (slower once a trial runs long) until
// the first SYN-ACK: latency = that answer - t0. Prints one JSON line: {"latenciesMs":[...],"failures":n}.
//
// The timing is bench/syn-probe.c (compiled here on first use, into dist/bench/): this file builds
// the trials (the SPA packets are encoded before the first trial) and reads its answers. Why C and
// raw SYNs rather than Node connect() attempts is said at the top of syn-probe.c.

import { execFileSync, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { spaPacket } from './lib/spa-send.js';
import { ROOT } from './lib/setup.js';

export interface ProbeArgs {
  mode: 'knock' | 'spa';
  target: string;
  protectedPort: number;
  sources: string[];
  knockPorts?: number[];
  spa?: { port: number; keyBase64: string; hmacKeyBase64: string };
  /** Give up on a trial after this long. */
  timeoutMs: number;
}

const SOURCE = join(ROOT, 'bench', 'syn-probe.c');
const BINARY = join(ROOT, 'dist', 'bench', 'syn-probe');

/** The compiled syn-probe, rebuilt when its source is newer. */
function synProbe(): string {
  const built = statSync(BINARY, { throwIfNoEntry: false });
  if (!built || built.mtimeMs < statSync(SOURCE).mtimeMs)
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', BINARY, SOURCE], { stdio: 'inherit' });
  return BINARY;
}

/** One line per trial for syn-probe: `K SOURCE PORTS` or `S SOURCE UDP_PORT HEX`. */
function trialLine(source: string, args: ProbeArgs): string {
  if (args.mode === 'knock') return `K ${source} ${args.knockPorts!.join(',')}`;
  const packet = spaPacket(source, args.protectedPort, args.spa!);
  return `S ${source} ${args.spa!.port} ${Buffer.from(packet, 'latin1').toString('hex')}`;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as ProbeArgs;
  const input = args.sources.map((s) => `${trialLine(s, args)}\n`).join('');
  const child = spawn(synProbe(), [args.target, String(args.protectedPort), String(args.timeoutMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.stdin.end(input);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`syn-probe exited with ${code}`);
  const lines = out.trim().split('\n');
  const latenciesMs = lines.filter((l) => l !== 'fail').map(Number);
  process.stdout.write(`${JSON.stringify({ latenciesMs, failures: lines.length - latenciesMs.length })}\n`);
}

await main();
