// Reading an fwknopd access.conf into stanzas (mrash/fwknop server/access.c): every SOURCE line
// starts one; the variables after it belong to it; %include, %include_folder and %include_keys pull
// in more lines. Values are checked here, where the line is known; access.conf-to-policy mapping is
// in fwknop-access.ts.

import { readdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { BOUNDS } from '../limits.js';
import { ENCRYPTION_MODES, HMAC_DIGEST_TYPES, MAX_USERNAME_LENGTH } from '../validate.js';
import { hasControlChars } from '../validate-fields.js';
import { ConfigError, shown, where } from './errors.js';
import { MAX_INCLUDE_DEPTH } from './defaults.js';
import { fwknopLines, yes, type FwknopLine } from './fwknop-lines.js';
import { parseSources } from './fwknop-sources.js';
import { enumValue, oneLine, portList, wholeSeconds } from './fwknop-values.js';
import { isKeyVar, isPlaceholder, keyVarBytes, weakKeyWarning, type KeyVar } from './keys.js';
import { readConfigText } from './read.js';

/** Variables that only matter with command execution, which knockgate refuses: ignored, with a warning. */
const CMD_EXEC_VARS = [
  'CMD_EXEC_USER',
  'CMD_EXEC_GROUP',
  'CMD_REGEX',
  'ENABLE_CMD_SUDO_EXEC',
  'CMD_SUDO_EXEC_USER',
  'CMD_SUDO_EXEC_GROUP',
];
/** NAT variables: refused when they ask for NAT. */
const NAT_VARS = ['FORCE_NAT', 'FORCE_SNAT', 'FORCE_MASQUERADE', 'DISABLE_DNAT', 'FORWARD_ALL'];

/** Where something was written. */
export interface At {
  file: string;
  line: number;
}

export interface Stanza extends At {
  /** Variable → where it was set, for duplicates and error lines. */
  seen: Map<string, At>;
  sources: string[];
  openPorts?: string[];
  restrictPorts?: string[];
  keys: Partial<Record<KeyVar, string>>;
  /** Key variables left at the shipped placeholder (only with placeholderKeys: 'omit'). */
  placeholders: Set<KeyVar>;
  hmacDigestType?: string;
  encryptionMode?: string;
  fwAccessTimeout?: number;
  maxFwTimeout?: number;
  requireUsername?: string;
  requireSourceAddress?: boolean;
  /** ENABLE_EXTERNAL_CMDS (old fwknop): EXTERNAL_CMD_* run only with it. */
  externalCmds?: boolean;
  /** Which family of command variables the stanza uses. */
  cmds?: 'external' | 'cycle';
  open?: string;
  close?: string;
  alarm?: At & { seconds: number };
  expired?: boolean;
}

export interface ReaderOptions {
  /** For ACCESS_EXPIRE: milliseconds since the epoch. */
  now: number;
  /**
   * What a key left at __CHANGEME__ (the access.conf fwknop-server ships) means: an error (a daemon
   * cannot run with it), or, for `knockgate import`, a key to fill in later: left out, with a warning.
   */
  placeholderKeys: 'refuse' | 'omit';
}

export class StanzaReader {
  readonly stanzas: Stanza[] = [];

  constructor(
    private readonly warnings: string[],
    private readonly opts: ReaderOptions,
  ) {}

  read(file: string, text: string, depth: number, open: Set<string>): void {
    for (const l of fwknopLines(text)) this.line(file, l, depth, open);
  }

  private current(file: string, l: FwknopLine): Stanza {
    const s = this.stanzas[this.stanzas.length - 1];
    if (!s)
      throw new ConfigError(
        file,
        l.line,
        `${l.name} before the first SOURCE line: every stanza starts with SOURCE`,
      );
    return s;
  }

  private line(file: string, l: FwknopLine, depth: number, open: Set<string>): void {
    const fail = (what: string): never => {
      throw new ConfigError(file, l.line, what);
    };
    if (l.value === '') fail(`${l.name} has no value`);
    if (l.name.startsWith('%')) {
      this.directive(file, l, depth, open);
      return;
    }
    if (l.name === 'SOURCE') {
      this.stanzas.push({
        file,
        line: l.line,
        seen: new Map(),
        sources: parseSources(l.value, fail),
        keys: {},
        placeholders: new Set(),
      });
      return;
    }
    const s = this.current(file, l);
    this.variable(s, file, l, fail);
  }

  private directive(file: string, l: FwknopLine, depth: number, open: Set<string>): void {
    const path = isAbsolute(l.value) ? l.value : resolve(dirname(file), l.value);
    const from = { file, line: l.line };
    if (depth >= MAX_INCLUDE_DEPTH)
      throw new ConfigError(file, l.line, `includes nested deeper than ${MAX_INCLUDE_DEPTH}`);
    const include = (p: string) => {
      if (open.has(p)) throw new ConfigError(file, l.line, `${p} includes itself`);
      this.read(p, readConfigText(p, from), depth + 1, new Set([...open, p]));
    };
    switch (l.name) {
      case '%INCLUDE':
        include(path);
        return;
      case '%INCLUDE_FOLDER': {
        let names: string[];
        try {
          names = readdirSync(path)
            .filter((n) => n.endsWith('.conf'))
            .sort();
        } catch (err) {
          throw new ConfigError(
            file,
            l.line,
            `${path}: cannot read folder: ${(err as NodeJS.ErrnoException).code}`,
          );
        }
        for (const n of names) include(join(path, n));
        return;
      }
      case '%INCLUDE_KEYS': {
        const s = this.current(file, l);
        for (const k of fwknopLines(readConfigText(path, from))) {
          const fail = (what: string): never => {
            throw new ConfigError(path, k.line, what);
          };
          if (!isKeyVar(k.name) && k.name !== 'HMAC_DIGEST_TYPE' && k.name !== 'ENCRYPTION_MODE') {
            fail(`${k.name} is not a key variable (an %include_keys file holds keys only)`);
          }
          if (k.value === '') fail(`${k.name} has no value`);
          this.variable(s, path, k, fail);
        }
        return;
      }
      default:
        throw new ConfigError(
          file,
          l.line,
          `unknown directive ${l.name.toLowerCase()} (use %include, %include_folder or %include_keys)`,
        );
    }
  }

  private variable(s: Stanza, file: string, l: FwknopLine, fail: (what: string) => never): void {
    const earlier = s.seen.get(l.name);
    if (earlier) fail(`${l.name} is already set for this stanza at ${earlier.file}:${earlier.line}`);
    s.seen.set(l.name, { file, line: l.line });
    const v = l.value;
    const name = l.name;
    if (isKeyVar(name)) {
      this.key(s, file, l.line, name, v, fail);
      return;
    }
    if (name.startsWith('GPG_'))
      fail(`${name}: GPG is unsupported; use KEY_BASE64 and HMAC_KEY_BASE64 (fwknop --key-gen)`);
    if (NAT_VARS.includes(name)) {
      if (name === 'FORCE_NAT' || name === 'FORCE_SNAT' || yes(v)) fail(`${name}: knockgate does no NAT`);
      return;
    }
    if (CMD_EXEC_VARS.includes(name)) {
      this.warnings.push(where(file, l.line, `${name} is ignored: knockgate refuses command messages`));
      return;
    }
    switch (name) {
      case 'DESTINATION':
        if (v.toUpperCase() !== 'ANY') {
          fail(
            'DESTINATION other than ANY is unsupported: knockgate accepts SPA packets sent to any of its addresses',
          );
        }
        return;
      case 'OPEN_PORTS':
        s.openPorts = portList(v, fail);
        return;
      case 'RESTRICT_PORTS':
        s.restrictPorts = portList(v, fail);
        return;
      case 'HMAC_DIGEST_TYPE':
        s.hmacDigestType = enumValue(v, HMAC_DIGEST_TYPES, name, fail);
        return;
      case 'ENCRYPTION_MODE':
        s.encryptionMode = enumValue(v, ENCRYPTION_MODES, name, fail);
        return;
      case 'FW_ACCESS_TIMEOUT':
        s.fwAccessTimeout = wholeSeconds(v, 0, BOUNDS.maxDurationSeconds, name, fail);
        return;
      case 'MAX_FW_TIMEOUT':
        s.maxFwTimeout = wholeSeconds(v, 1, BOUNDS.maxDurationSeconds, name, fail);
        return;
      case 'REQUIRE_USERNAME':
        if (/\s/.test(v) || hasControlChars(v) || v.length > MAX_USERNAME_LENGTH)
          fail(
            `REQUIRE_USERNAME "${shown(v)}" is not a user name (no spaces, at most ${MAX_USERNAME_LENGTH} characters)`,
          );
        s.requireUsername = v;
        return;
      case 'REQUIRE_SOURCE_ADDRESS':
      case 'REQUIRE_SOURCE':
        s.requireSourceAddress = yes(v);
        return;
      case 'ENABLE_CMD_EXEC':
        if (yes(v)) fail('ENABLE_CMD_EXEC Y: knockgate refuses SPA command messages; remove it or set N');
        return;
      case 'ENABLE_EXTERNAL_CMDS':
        s.externalCmds = yes(v);
        return;
      case 'EXTERNAL_CMD_OPEN':
      case 'CMD_CYCLE_OPEN':
        this.cmdFamily(s, name, fail);
        s.open = oneLine(v, fail);
        return;
      case 'EXTERNAL_CMD_CLOSE':
      case 'CMD_CYCLE_CLOSE':
        this.cmdFamily(s, name, fail);
        s.close = oneLine(v, fail);
        return;
      case 'EXTERNAL_CMD_ALARM':
      case 'CMD_CYCLE_TIMER':
        this.cmdFamily(s, name, fail);
        s.alarm = { seconds: wholeSeconds(v, 1, BOUNDS.maxDurationSeconds, name, fail), file, line: l.line };
        return;
      case 'ACCESS_EXPIRE':
      case 'ACCESS_EXPIRE_EPOCH':
        this.expire(s, file, l, fail);
        return;
      default:
        fail(`unknown variable ${name}`);
    }
  }

  /** EXTERNAL_CMD_* (old fwknop) and CMD_CYCLE_* (2.6) are two ways to say one thing: not both. */
  private cmdFamily(s: Stanza, name: string, fail: (what: string) => never): void {
    const family = name.startsWith('CMD_CYCLE_') ? 'cycle' : 'external';
    if (s.cmds !== undefined && s.cmds !== family) {
      fail(`${name} mixes CMD_CYCLE_* and EXTERNAL_CMD_* in one stanza: use one family`);
    }
    s.cmds = family;
  }

  private key(
    s: Stanza,
    file: string,
    line: number,
    name: KeyVar,
    value: string,
    fail: (what: string) => never,
  ): void {
    const pair: Record<KeyVar, KeyVar> = {
      KEY: 'KEY_BASE64',
      KEY_BASE64: 'KEY',
      HMAC_KEY: 'HMAC_KEY_BASE64',
      HMAC_KEY_BASE64: 'HMAC_KEY',
    };
    if (s.keys[pair[name]] !== undefined || s.placeholders.has(pair[name]))
      fail(`both ${pair[name]} and ${name} are set: give one`);
    if (isPlaceholder(value) && this.opts.placeholderKeys === 'omit') {
      s.placeholders.add(name);
      return;
    }
    const checked = keyVarBytes(name, value);
    if ('error' in checked) fail(checked.error);
    const weak = weakKeyWarning(name, value);
    if (weak) this.warnings.push(where(file, line, weak));
    s.keys[name] = value;
  }

  private expire(s: Stanza, file: string, l: FwknopLine, fail: (what: string) => never): void {
    let at: number;
    if (l.name === 'ACCESS_EXPIRE') {
      // fwknopd: MM/DD/YYYY, local midnight.
      const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(l.value);
      if (!m) fail(`ACCESS_EXPIRE "${shown(l.value, true)}" is not MM/DD/YYYY`);
      at = new Date(Number(m![3]), Number(m![1]) - 1, Number(m![2])).getTime();
    } else {
      if (!/^\d+$/.test(l.value))
        fail(`ACCESS_EXPIRE_EPOCH "${shown(l.value, true)}" is not seconds since the epoch`);
      at = Number(l.value) * 1000;
    }
    if (at > this.opts.now) {
      fail(
        `${l.name} ${l.value} is still to come and knockgate cannot end a policy on a date: remove the stanza when access should end`,
      );
    }
    s.expired = true;
    this.warnings.push(
      where(file, l.line, `stanza of line ${s.line} expired on ${l.value} (${l.name}): not imported`),
    );
  }
}
