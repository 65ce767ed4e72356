// The client side of the open-latency benchmark, run inside the client network namespace:
//   node dist/bench/probe.js '<json ProbeArgs>'
// For each source address (one trial each, so every trial starts closed): send the trigger (a TCP
// knock sequence, or one SPA datagram) from that address, take t0 right after the last packet left,
// then start a connect attempt to the protected port every PROBE_INTERVAL_MS (0.2 ms; slower once a
// trial runs long: intervalAfter) (a dropped SYN gets no answer, so attempts overlap) until one succeeds: latency = success time - t0. Prints one
// JSON line: {"latenciesMs":[...],"failures":n}.
//
// Node's timers fire at 1 ms at best, so the attempts are paced by sleeping the thread itself
// (Atomics.wait, a futex wait: no busy loop taking a core from the daemon) in slices of
// PROBE_SLICE_MS between turns of the event loop, which notices a connect that succeeded: every
// figure is late by at most about PROBE_INTERVAL_MS plus one slice.

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

const PROBE_INTERVAL_MS = 0.2;
// Slower attempts once a trial runs long, so a slow open is still seen by a fresh attempt (not by a
// retransmitted SYN a second later) within MAX_ATTEMPTS_IN_FLIGHT: 0.2 ms for the first 20 ms, 1 ms
// to 500 ms, then 10 ms (~1,030 attempts in a 5 s trial).
function intervalAfter(elapsedMs: number): number {
  return elapsedMs < 20 ? PROBE_INTERVAL_MS : elapsedMs < 500 ? 1 : 10;
}
const PROBE_SLICE_MS = 0.1;
const MAX_ATTEMPTS_IN_FLIGHT = 2000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

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
    const started = performance.now();
    const deadline = started + args.timeoutMs;
    let finished = false;
    let next = 0;
    const finish = (at: number | undefined) => {
      if (finished) return;
      finished = true;
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
    // One turn: an attempt when one is due, a short sleep, then the event loop's poll phase (a
    // pending setImmediate makes it non-blocking) reports a connect before the next turn.
    const turn = () => {
      if (finished) return;
      const now = performance.now();
      if (now >= deadline) return finish(undefined);
      if (now >= next) {
        attempt();
        next = now + intervalAfter(now - started);
      }
      Atomics.wait(sleeper, 0, 0, Math.min(PROBE_SLICE_MS, Math.max(0, next - performance.now())));
      setImmediate(turn);
    };
    turn();
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
