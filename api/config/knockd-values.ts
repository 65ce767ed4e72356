// knockd.conf value syntaxes (knockd(1)): sequences, seconds, TCP flags and one-time sequence files.
// Each takes a `fail` that throws the caller's FILE:LINE error.

import { dirname, isAbsolute, resolve } from 'node:path';
import { BOUNDS } from '../limits.js';
import { formatPort, parsePort, PortSpecError } from '../ports.js';
import { TCP_FLAGS } from '../validate-fields.js';
import { ConfigError } from './errors.js';
import { readConfigText } from './read.js';

/** "26515:tcp,8924,58666:udp" → ["26515/tcp", "8924/tcp", "58666/udp"]. */
export function parseSequence(value: string, fail: (what: string) => never): string[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.length === 1 && items[0] === '') fail('no ports given');
  if (items.length > BOUNDS.maxSequenceLength) {
    fail(`${items.length} ports, at most ${BOUNDS.maxSequenceLength}`);
  }
  return items.map((item) => {
    if (!/^\d+(:(tcp|udp))?$/i.test(item)) fail(`"${item}" is not PORT[:PROTO] (e.g. 7000:tcp)`);
    try {
      return formatPort(parsePort(item));
    } catch (err) {
      if (err instanceof PortSpecError) fail(`"${item}": port must be 1-65535`);
      throw err;
    }
  });
}

export function seconds(value: string, max: number, fail: (what: string) => never): number {
  if (!/^\d+$/.test(value)) fail(`"${value}" is not a whole number of seconds`);
  const n = Number(value);
  if (n < 1 || n > max) fail(`${n} is out of range: 1 to ${max} seconds`);
  return n;
}

/** "syn,!ack" → ["syn", "!ack"]; knockd's flag names, case-insensitive. */
export function parseTcpFlags(value: string, fail: (what: string) => never): string[] {
  const flags = value.split(',').map((f) => f.trim().toLowerCase());
  const seen = new Map<string, string>();
  for (const f of flags) {
    const name = f.replace(/^!/, '');
    if (!(TCP_FLAGS as readonly string[]).includes(name)) {
      fail(`unknown flag "${f}" (use ${TCP_FLAGS.join(', ')}, optionally with "!")`);
    }
    const other = seen.get(name);
    if (other !== undefined) fail(other === f ? `"${f}" is listed twice` : `"${f}" contradicts "${other}"`);
    seen.set(name, f);
  }
  return flags;
}

/** knockd's one-time sequence file: one sequence a line; "#" lines are comments or used up. */
export function readOneTimeSequences(file: string, n: number, value: string): string[][] {
  const path = isAbsolute(value) ? value : resolve(dirname(file), value);
  const text = readConfigText(path, { file, line: n });
  const sequences: string[][] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    sequences.push(
      parseSequence(line, (what) => {
        throw new ConfigError(path, i + 1, `one-time sequence: ${what}`);
      }),
    );
  });
  if (sequences.length === 0) {
    throw new ConfigError(file, n, `one_time_sequences file ${path} has no unused sequence left`);
  }
  return sequences;
}
