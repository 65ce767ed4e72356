// `knockgate knock HOST PORT[:PROTO]...`: send a knock sequence, with the syntax and options of
// knockd's `knock` client (-u, -d, -4, -6, -v) plus --repeat N for lossy links.
//
// A TCP knock is what `knock` sends: a non-blocking connect - one SYN - abandoned at once (the socket
// is destroyed as soon as the connect call has been made; a RST or a SYN-ACK coming back is of no
// interest). A UDP knock is a one-byte datagram. With --repeat N each knock is sent N times back to
// back; knockgate's matcher ignores an immediate repeat of the knock just made, so repeats only help.
// -d waits between knocks (not between the repeats of one knock).

import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import type { Proto } from '../api/ports.js';
import { CliError } from './errors.js';

export interface KnockHit {
  port: number;
  proto: Proto;
}

interface KnockFlags {
  udp?: boolean;
  delay: string;
  ipv4?: boolean;
  ipv6?: boolean;
  verbose?: boolean;
  repeat: string;
}

const MAX_DELAY_MS = 60 * 60 * 1000;
const MAX_REPEAT = 100;
const MAX_KNOCKS = 64;
const TCP_KNOCK_MAX_WAIT_MS = 1000;
/** Errors that show the SYN went out (the server, or something on the way, answered). */
const DELIVERED = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT']);

/** "7000", "7000:udp" (knock's syntax) or "7000/udp". Throws CliError naming the argument. */
export function parseKnock(arg: string, defaultProto: Proto): KnockHit {
  const m = /^(\d{1,5})(?:[:/]([a-z]+))?$/i.exec(arg);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535)
    throw new CliError(`bad knock "${arg}": want PORT[:PROTO] with PORT 1-65535`);
  const proto = m[2]?.toLowerCase() ?? defaultProto;
  if (proto !== 'tcp' && proto !== 'udp')
    throw new CliError(`bad knock "${arg}": protocol must be tcp or udp, not "${m[2]}"`);
  return { port, proto };
}

function intFlag(flag: string, value: string, min: number, max: number): number {
  if (!/^[0-9]{1,10}$/.test(value) || Number(value) < min || Number(value) > max)
    throw new CliError(`${flag}: want a whole number ${min}-${max}, got "${value}"`);
  return Number(value);
}

/** HOST as a literal of the wanted family, or a name looked up with that family. */
async function resolveHost(
  host: string,
  family: 4 | 6 | undefined,
): Promise<{ address: string; family: 4 | 6 }> {
  const literal = isIP(host);
  if (literal === 4 || literal === 6) {
    if (family !== undefined && family !== literal)
      throw new CliError(`${host} is an IPv${literal} address, but -${family} was given`);
    return { address: host, family: literal };
  }
  try {
    const found = await lookup(host, family ? { family } : {});
    return { address: found.address, family: found.family === 6 ? 6 : 4 };
  } catch {
    throw new CliError(`cannot resolve "${host}"${family ? ` as an IPv${family} address` : ''}`);
  }
}

/** One SYN: connect without waiting, and drop the socket as soon as the connect call is made. */
function tcpKnock(address: string, family: 4 | 6, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let settled = false;
    // Never wait on the network: should no event come at all, the knock is abandoned all the same.
    const fallback = setTimeout(() => finish(), TCP_KNOCK_MAX_WAIT_MS);
    const finish = (err?: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(fallback);
      socket.destroy();
      if (err && !DELIVERED.has(err.code ?? '')) reject(err);
      else resolve();
    };
    socket.on('error', finish);
    socket.once('connect', () => finish());
    // Emitted just before the connect call; the next turn of the event loop is after it.
    socket.once('connectionAttempt', () => setImmediate(() => finish()));
    socket.connect({ host: address, port, family });
  });
}

function udpKnock(address: string, family: 4 | 6, port: number): Promise<void> {
  const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
  return new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.send(Buffer.alloc(1), port, address, (err) => (err ? reject(err) : resolve()));
  }).finally(() => socket.close());
}

export async function sendKnocks(
  dest: { address: string; family: 4 | 6 },
  hits: readonly KnockHit[],
  opts: { delayMs: number; repeat: number; onHit?: (hit: KnockHit) => void },
): Promise<void> {
  for (let i = 0; i < hits.length; i++) {
    const hit = hits[i]!;
    opts.onHit?.(hit);
    for (let r = 0; r < opts.repeat; r++) {
      try {
        if (hit.proto === 'tcp') await tcpKnock(dest.address, dest.family, hit.port);
        else await udpKnock(dest.address, dest.family, hit.port);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new CliError(
          `knock on ${dest.address} port ${hit.port}/${hit.proto}: ${e.code ?? e.message}`,
          1,
        );
      }
    }
    if (opts.delayMs > 0 && i < hits.length - 1) await sleep(opts.delayMs);
  }
}

async function knock(host: string, ports: string[], flags: KnockFlags): Promise<void> {
  if (flags.ipv4 && flags.ipv6) throw new CliError('give -4 or -6, not both');
  if (ports.length > MAX_KNOCKS) throw new CliError(`at most ${MAX_KNOCKS} knocks, got ${ports.length}`);
  const hits = ports.map((p) => parseKnock(p, flags.udp ? 'udp' : 'tcp'));
  const delayMs = intFlag('-d/--delay', flags.delay, 0, MAX_DELAY_MS);
  const repeat = intFlag('--repeat', flags.repeat, 1, MAX_REPEAT);
  const dest = await resolveHost(host, flags.ipv4 ? 4 : flags.ipv6 ? 6 : undefined);
  await sendKnocks(dest, hits, {
    delayMs,
    repeat,
    onHit: flags.verbose
      ? (hit) => process.stdout.write(`hitting ${hit.proto} ${dest.address}:${hit.port}\n`)
      : undefined,
  });
}

export function register(program: Command): void {
  program
    .command('knock')
    .description("send a knock sequence (the syntax of knockd's `knock` client)")
    .argument('<host>', 'the host to knock on (IPv4, IPv6 or a name)')
    .argument('<ports...>', 'PORT[:PROTO] knocks, in order, e.g. 7000 8000:udp 9000:tcp')
    .option('-u, --udp', 'knocks without a protocol use UDP (default TCP)')
    .option('-d, --delay <ms>', 'wait this many milliseconds between knocks', '0')
    .option('-4, --ipv4', 'use IPv4')
    .option('-6, --ipv6', 'use IPv6')
    .option('-v, --verbose', 'print each knock')
    .option('--repeat <n>', 'send each knock n times, for lossy links', '1')
    .action(async (host: string, ports: string[], flags: KnockFlags) => knock(host, ports, flags));
}
