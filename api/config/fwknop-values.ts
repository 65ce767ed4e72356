// Value syntaxes of fwknopd's access.conf (and fwknopd.conf): port lists, enumerations, seconds and
// command lines. Each takes a `fail` that throws the caller's FILE:LINE error.

import { BOUNDS } from '../limits.js';
import { formatPort, parsePort } from '../ports.js';
import { hasControlChars } from '../validate-fields.js';
import { HOOK_BOUNDS } from '../standalone.js';
import { shown } from './errors.js';

/** fwknop writes "tcp/22"; "22/tcp" is accepted too. Duplicates are dropped. */
export function portList(value: string, fail: (what: string) => never): string[] {
  const out: string[] = [];
  for (const item of value.split(',').map((s) => s.trim())) {
    const m = /^(tcp|udp)\/(\d+)$/i.exec(item) ?? /^(\d+)\/(tcp|udp)$/i.exec(item);
    if (!m) fail(`"${shown(item, true)}" is not PROTO/PORT (e.g. tcp/22)`);
    const [a, b] = [m![1]!, m![2]!];
    const spec = /^\d+$/.test(a) ? `${a}/${b}` : `${b}/${a}`;
    try {
      out.push(formatPort(parsePort(spec.toLowerCase())));
    } catch {
      fail(`"${shown(item, true)}": port must be 1-65535`);
    }
  }
  if (out.length > BOUNDS.maxPortsPerGrant) fail(`${out.length} ports, at most ${BOUNDS.maxPortsPerGrant}`);
  return [...new Set(out)];
}

/** Case-insensitive member of `allowed`, returned in its lower-case form. */
export function enumValue<T extends string>(
  value: string,
  allowed: readonly T[],
  name: string,
  fail: (what: string) => never,
): T {
  const v = value.toLowerCase() as T;
  if (!allowed.includes(v)) fail(`${name} "${shown(value, true)}" is unsupported: use ${allowed.join(', ')}`);
  return v;
}

export function wholeSeconds(
  value: string,
  min: number,
  max: number,
  name: string,
  fail: (what: string) => never,
): number {
  if (!/^\d+$/.test(value)) fail(`${name} "${shown(value, true)}" is not a whole number of seconds`);
  const n = Number(value);
  if (n < min || n > max) fail(`${name} ${n} is out of range: ${min} to ${max} seconds`);
  return n;
}

/** A command line: one line, no control characters other than tabs, bounded in length. */
export function oneLine(value: string, fail: (what: string) => never): string {
  if (hasControlChars(value.replace(/\t/g, ' '))) fail('command holds control characters');
  if (value.length > HOOK_BOUNDS.maxCommandLength)
    fail(`command is ${value.length} characters long, at most ${HOOK_BOUNDS.maxCommandLength}`);
  return value;
}
