// Network probes for the firewall tests: a TCP echo server in a namespace, and a long-lived prober
// process per client namespace that connects (IPv4 or IPv6) with a short time-out, holds
// connections open, and checks that a held connection still echoes. One process per namespace
// instead of a fork per probe keeps the probes cheap on a 2-core machine.

import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Host } from './netns.js';

/** Echo server: listens on every given port, on :: (IPv4 and IPv6). Prints "ready" when listening. */
const SERVER = `
const net = require('net');
const ports = process.argv.slice(1).map(Number);
let left = ports.length;
for (const p of ports) {
  net.createServer((s) => { s.on('error', () => {}); s.pipe(s); })
    .listen({ port: p, host: '::', ipv6Only: false }, () => { if (--left === 0) console.log('ready'); });
}
`;

/** Prober: JSON requests on stdin, one JSON answer per line on stdout. */
const PROBER = `
const net = require('net');
const dgram = require('dgram');
const held = new Map();
const rl = require('readline').createInterface({ input: process.stdin });
const reply = (id, result) => process.stdout.write(JSON.stringify({ id, result }) + '\\n');
rl.on('line', (line) => {
  const q = JSON.parse(line);
  if (q.op === 'connect') {
    const s = net.connect({ host: q.host, port: q.port });
    let done = false;
    const end = (r) => { if (done) return; done = true; clearTimeout(t); if (r === 'ok' && q.hold) held.set(q.hold, s); else s.destroy(); reply(q.id, r); };
    const t = setTimeout(() => end('timeout'), q.timeoutMs);
    s.on('connect', () => end('ok'));
    s.on('error', (e) => end(e.code === 'ECONNREFUSED' ? 'refused' : 'error:' + e.code));
  } else if (q.op === 'echo') {
    const s = held.get(q.hold);
    if (!s || s.destroyed) return reply(q.id, 'closed');
    const word = 'ping' + q.id;
    let buf = '';
    let done = false;
    const end = (r) => { if (done) return; done = true; clearTimeout(t); s.removeListener('data', onData); reply(q.id, r); };
    const onData = (d) => { buf += d; if (buf.includes(word)) end('ok'); };
    const t = setTimeout(() => end('timeout'), q.timeoutMs);
    s.on('data', onData);
    s.on('error', () => end('closed'));
    s.write(word);
  } else if (q.op === 'udp') {
    // A connected UDP socket learns of an ICMP port-unreachable on its next send or receive.
    const s = dgram.createSocket(q.host.includes(':') ? 'udp6' : 'udp4');
    let done = false;
    const end = (r) => { if (done) return; done = true; clearTimeout(t); s.close(); reply(q.id, r); };
    const t = setTimeout(() => end('silence'), q.timeoutMs);
    s.on('error', (e) => end(e.code === 'ECONNREFUSED' ? 'refused' : 'error:' + e.code));
    s.on('message', () => end('answer'));
    s.connect(q.port, q.host, () => {
      s.send('knock', () => setTimeout(() => { if (!done) s.send('knock', () => {}); }, 150));
    });
  } else if (q.op === 'drop') {
    const s = held.get(q.hold);
    if (s) s.destroy();
    held.delete(q.hold);
    reply(q.id, 'ok');
  }
});
`;

export async function startEchoServer(host: Host, ports: number[]): Promise<ChildProcess> {
  const child = host.spawn('node', ['-e', SERVER, ...ports.map(String)]);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('echo server did not start')), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`echo server exited ${code}`));
    });
  });
  return child;
}

export type ConnectResult = 'ok' | 'timeout' | 'refused' | string;

export class Prober {
  private seq = 0;
  private readonly waiting = new Map<number, (r: string) => void>();

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const { id, result } = JSON.parse(line) as { id: number; result: string };
      this.waiting.get(id)?.(result);
      this.waiting.delete(id);
    });
  }

  static start(host: Host): Prober {
    return new Prober(host.spawn('node', ['-e', PROBER], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  private ask(q: Record<string, unknown>): Promise<string> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`prober: no answer to ${JSON.stringify(q)}`)), 20_000);
      this.waiting.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.child.stdin!.write(`${JSON.stringify({ ...q, id })}\n`);
    });
  }

  /** TCP connect with a short time-out: a dropped SYN shows as 'timeout', a RST as 'refused'. */
  connect(
    host: string,
    port: number,
    opts: { timeoutMs?: number; hold?: string } = {},
  ): Promise<ConnectResult> {
    return this.ask({ op: 'connect', host, port, timeoutMs: opts.timeoutMs ?? 700, hold: opts.hold });
  }

  /** Whether a held connection still carries data both ways. */
  echo(hold: string, timeoutMs = 1500): Promise<string> {
    return this.ask({ op: 'echo', hold, timeoutMs });
  }

  /** Send UDP datagrams: 'refused' (ICMP came back), 'answer', or 'silence'. */
  udp(host: string, port: number, timeoutMs = 800): Promise<string> {
    return this.ask({ op: 'udp', host, port, timeoutMs });
  }

  drop(hold: string): Promise<string> {
    return this.ask({ op: 'drop', hold });
  }
}
