// The line syntax shared by fwknopd's access.conf and fwknopd.conf (mrash/fwknop server/access.c,
// config_init.c): `VAR value`, `VAR: value;` (the old style) or any mix, read the way fwknopd reads
// them: sscanf("%s %[^;\n\r]") then one trailing ":" dropped from the name. Lines starting with "#"
// or ";" and blank lines are skipped.

import { shown } from './errors.js';

export interface FwknopLine {
  /** 1-based line number. */
  line: number;
  /** Upper-case variable name without its trailing colon ("OPEN_PORTS", "%INCLUDE"). */
  name: string;
  /** Everything after the name up to the first ";", trimmed; "" when there is none. */
  value: string;
}

export function fwknopLines(text: string): FwknopLine[] {
  const out: FwknopLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(trimmed)!;
    const token = m[1]!;
    // "KEY:value;" with no space: the name ends at the first colon or semicolon.
    const split = /^([^:;]*)[:;]?([\s\S]*)$/.exec(token)!;
    const upper = split[1]!.toUpperCase();
    // A name that is not one (a value run into it) is shown only in part: it may hold a key.
    const name = /^%?[A-Z0-9_]{1,48}$/.test(upper) ? upper : shown(upper, true) || '(none)';
    const rest = (split[2] ? `${split[2]} ${m[2]}` : m[2]!).trim();
    const value = rest.split(';')[0]!.trim();
    out.push({ line: i + 1, name, value });
  });
  return out;
}

/** fwknopd's booleans: anything starting with Y/y is yes. */
export function yes(value: string): boolean {
  return /^y/i.test(value);
}
