// The client side of the open-latency benchmark, run inside the client network namespace:
//   node dist/bench/probe.js '<json ProbeArgs>'
// For each source address (one trial each, so every trial starts closed): send the trigger (a TCP
// knock sequence, or one SPA datagram) from that address, take t0 right after the last packet left,
// then start a connect attempt to the protected port every PROBE_INTERVAL_MS (1 ms) (a dropped SYN gets no
// answer, so attempts overlap) until one succeeds: latency = success time - t0. Prints one JSON line:
// {"latenciesMs":[...],"failures":n}.

import { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { spaFrom } from './lib/spa-send.js';

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

// Node timers fire at 1 ms granularity at best: the resolution of every figure.
const PROBE_INTERVAL_MS = 1;
const MAX_ATTEMPTS_IN_FLIGHT = 2000;

function knockFrom(source: string, target: string, port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = () => {
      socket.destroy();
      resolve();
    };
    socket.on('error', done);
    socket.once('connect', done);
    socket.once('connectionAttempt', () => setImmediate(done));
    socket.connect({ host: target, port, localAddress: source });
  });
}

/** Connect attempts every PROBE_INTERVAL_MS until one succeeds; resolves to the success time. */
function firstConnect(source: string, args: ProbeArgs): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sockets = new Set<Socket>();
    let finished = false;
    const finish = (at: number | undefined) => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      clearTimeout(deadline);
      for (const s of sockets) s.destroy();
      resolve(at);
    };
    const attempt = () => {
      if (sockets.size >= MAX_ATTEMPTS_IN_FLIGHT) return;
      const s = new Socket();
      sockets.add(s);
      s.on('error', () => sockets.delete(s));
      s.once('connect', () => finish(performance.now()));
      s.connect({ host: args.target, port: args.protectedPort, localAddress: source });
    };
    const timer = setInterval(attempt, PROBE_INTERVAL_MS);
    const deadline = setTimeout(() => finish(undefined), args.timeoutMs);
    attempt();
  });
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as ProbeArgs;
  const latenciesMs: number[] = [];
  let failures = 0;
  for (const source of args.sources) {
    if (args.mode === 'knock')
      for (const port of args.knockPorts!) await knockFrom(source, args.target, port);
    else await spaFrom(source, args.target, args.protectedPort, args.spa!);
    const t0 = performance.now();
    const at = await firstConnect(source, args);
    if (at === undefined) failures++;
    else latenciesMs.push(at - t0);
    await sleep(5);
  }
  process.stdout.write(`${JSON.stringify({ latenciesMs, failures })}\n`);
}

await main();
