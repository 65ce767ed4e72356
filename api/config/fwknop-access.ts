// fwknopd access.conf → SPA KnockPolicies and their key Secrets (mrash/fwknop server/access.c and
// the access.conf shipped with fwknop-server 2.6). Both layouts are read: `KEY  value` (2.6) and
// `KEY: value;` (the old Perl fwknop), and any mix of the two.
//
// Every SOURCE line starts a stanza; each stanza becomes its own policy (named <file>-<n>) with its
// own Secret of the same name. How the variables map:
//   SOURCE              spa.allowedSources ("ANY" → 0.0.0.0/0 and ::/0; a.b.c.d/255.255.255.0 masks)
//   OPEN_PORTS          grant.ports ("tcp/22" → "22/tcp"); absent: fwknopd would open whatever the
//                       client asks for; knockgate opens only listed ports, so ASSUMED_GRANT_PORTS
//                       (SSH) with a warning, not protected by default
//   RESTRICT_PORTS      removed from OPEN_PORTS (an error when nothing is left)
//   KEY, KEY_BASE64, HMAC_KEY, HMAC_KEY_BASE64   the Secret, by those names
//   HMAC_DIGEST_TYPE, ENCRYPTION_MODE            spa.hmacDigestType / spa.encryptionMode (lowercase)
//   FW_ACCESS_TIMEOUT   grant.durationSeconds (< 1 or absent: 30, as fwknopd)
//   MAX_FW_TIMEOUT      grant.maxDurationSeconds (absent: 300, or the duration when longer)
//   REQUIRE_USERNAME, REQUIRE_SOURCE_ADDRESS (REQUIRE_SOURCE)   spa.requireUsername / requireSourceAddress
//   ENABLE_EXTERNAL_CMDS + EXTERNAL_CMD_OPEN/CLOSE/ALARM, CMD_CYCLE_OPEN/CLOSE/TIMER   hooks ($SRC...)
//   %include FILE, %include_folder DIR (*.conf), %include_keys FILE (keys of the current stanza)
// Refused with FILE:LINE, because knockgate cannot honour them and ignoring them would open more
// than fwknopd would: GPG_* (GPG is unsupported), FORCE_NAT/FORCE_SNAT/FORCE_MASQUERADE (no NAT),
// ENABLE_CMD_EXEC Y (command messages are refused), a DESTINATION other than ANY, an ACCESS_EXPIRE
// date still to come (a stanza whose date has passed is skipped, as fwknopd would refuse it).
// A stanza without an HMAC key is imported with spa.allowMissingHmac and a loud warning.

import { readdirSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { API_VERSION, type KnockPolicy, type SpaSpec } from '../types.js';
import { BOUNDS } from '../limits.js';
import { formatPort, parsePort } from '../ports.js';
import { ENCRYPTION_MODES, HMAC_DIGEST_TYPES } from '../validate.js';
import { hasControlChars } from '../validate-fields.js';
import type { Hooks } from '../standalone.js';
import { ConfigError, where } from './errors.js';
import { ASSUMED_GRANT_PORTS, FWKNOPD_DEFAULTS, MAX_INCLUDE_DEPTH } from './defaults.js';
import { fwknopLines, yes, type FwknopLine } from './fwknop-lines.js';
import { parseSources } from './fwknop-sources.js';
import { toDnsLabel, withSuffix } from './names.js';
import { readConfigText } from './read.js';
import type { FwknopdSettings } from './fwknopd-conf.js';
import type { ParsedConfig, SecretData } from './types.js';

const KEY_VARS = ['KEY', 'KEY_BASE64', 'HMAC_KEY', 'HMAC_KEY_BASE64'] as const;
type KeyVar = (typeof KEY_VARS)[number];

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

interface Stanza {
  file: string;
  line: number;
  /** Variable → where it was set, for duplicates and error lines. */
  seen: Map<string, { file: string; line: number }>;
  sources: string[];
  openPorts?: string[];
  restrictPorts?: string[];
  keys: Partial<Record<KeyVar, string>>;
  hmacDigestType?: string;
  encryptionMode?: string;
  fwAccessTimeout?: number;
  maxFwTimeout?: number;
  requireUsername?: string;
  requireSourceAddress?: boolean;
  externalCmds?: boolean;
  open?: string;
  close?: string;
  alarm?: { seconds: number; file: string; line: number };
  expired?: boolean;
}

export interface AccessConfOptions {
  fwknopd?: FwknopdSettings;
  /** For ACCESS_EXPIRE: milliseconds since the epoch. */
  now: number;
}

export function parseAccessConf(file: string, text: string, opts: AccessConfOptions): ParsedConfig {
  const out: ParsedConfig = {
    policies: [],
    secrets: {},
    hooks: {},
    settings: {},
    warnings: [],
    unprotectedPorts: new Set(),
  };
  const stanzas: Stanza[] = [];
  const reader = new StanzaReader(stanzas, out.warnings, opts.now);
  reader.read(file, text, 0, new Set([resolve(file)]));
  if (stanzas.length === 0) {
    throw new ConfigError(file, undefined, 'no SOURCE stanza: an access.conf needs at least one SOURCE line');
  }
  const base = toDnsLabel(basename(file)) || 'fwknop';
  stanzas.forEach((s, i) => {
    if (s.expired) return;
    addStanza(s, withSuffix(base, String(i + 1)), out, opts.fwknopd);
  });
  if (out.policies.length === 0) {
    throw new ConfigError(
      file,
      undefined,
      'every SOURCE stanza has expired (ACCESS_EXPIRE): nothing to import',
    );
  }
  if (opts.fwknopd?.interface) out.settings.interfaces = [opts.fwknopd.interface];
  return out;
}

class StanzaReader {
  constructor(
    private readonly stanzas: Stanza[],
    private readonly warnings: string[],
    private readonly now: number,
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
      });
      return;
    }
    const s = this.current(file, l);
    const earlier = s.seen.get(l.name);
    if (earlier) fail(`${l.name} is already set for this stanza at ${earlier.file}:${earlier.line}`);
    s.seen.set(l.name, { file, line: l.line });
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
          if (
            !(KEY_VARS as readonly string[]).includes(k.name) &&
            k.name !== 'HMAC_DIGEST_TYPE' &&
            k.name !== 'ENCRYPTION_MODE'
          ) {
            throw new ConfigError(
              path,
              k.line,
              `${k.name} is not a key variable (an %include_keys file holds keys only)`,
            );
          }
          if (k.value === '') throw new ConfigError(path, k.line, `${k.name} has no value`);
          this.variable(s, path, k, (what) => {
            throw new ConfigError(path, k.line, what);
          });
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
    const v = l.value;
    const name = l.name;
    if ((KEY_VARS as readonly string[]).includes(name)) {
      setKey(s, name as KeyVar, v, fail);
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
        if (/\s/.test(v)) fail(`REQUIRE_USERNAME "${v}" holds a space`);
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
        s.open = oneLine(v, fail);
        return;
      case 'EXTERNAL_CMD_CLOSE':
      case 'CMD_CYCLE_CLOSE':
        s.close = oneLine(v, fail);
        return;
      case 'EXTERNAL_CMD_ALARM':
      case 'CMD_CYCLE_TIMER':
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

  private expire(s: Stanza, file: string, l: FwknopLine, fail: (what: string) => never): void {
    let at: number;
    if (l.name === 'ACCESS_EXPIRE') {
      // fwknopd: MM/DD/YYYY, local midnight.
      const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(l.value);
      if (!m) fail(`ACCESS_EXPIRE "${l.value}" is not MM/DD/YYYY`);
      at = new Date(Number(m![3]), Number(m![1]) - 1, Number(m![2])).getTime();
    } else {
      if (!/^\d+$/.test(l.value)) fail(`ACCESS_EXPIRE_EPOCH "${l.value}" is not seconds since the epoch`);
      at = Number(l.value) * 1000;
    }
    if (at > this.now) {
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

function setKey(s: Stanza, name: KeyVar, value: string, fail: (what: string) => never): void {
  if (value.toUpperCase() === '__CHANGEME__') {
    fail(
      `${name} is still the placeholder __CHANGEME__: generate keys with "fwknop --key-gen" or "knockgate keygen"`,
    );
  }
  if (name.endsWith('_BASE64') && !isBase64(value)) fail(`${name} is not base64`);
  const pair =
    name === 'KEY'
      ? 'KEY_BASE64'
      : name === 'KEY_BASE64'
        ? 'KEY'
        : name === 'HMAC_KEY'
          ? 'HMAC_KEY_BASE64'
          : 'HMAC_KEY';
  if (s.keys[pair] !== undefined) fail(`both ${pair} and ${name} are set: give one`);
  s.keys[name] = value;
}

/** A key's bytes, from its passphrase or its base64 form. */
function keyBytes(passphrase: string | undefined, base64: string | undefined): Buffer {
  return passphrase !== undefined ? Buffer.from(passphrase, 'utf8') : Buffer.from(base64 ?? '', 'base64');
}

function isBase64(v: string): boolean {
  return /^[A-Za-z0-9+/]+={0,2}$/.test(v) && v.length % 4 === 0 && Buffer.from(v, 'base64').length > 0;
}

/** fwknop writes "tcp/22"; "22/tcp" is accepted too. */
function portList(value: string, fail: (what: string) => never): string[] {
  const out: string[] = [];
  for (const item of value.split(',').map((s) => s.trim())) {
    const m = /^(tcp|udp)\/(\d+)$/i.exec(item) ?? /^(\d+)\/(tcp|udp)$/i.exec(item);
    if (!m) fail(`"${item}" is not PROTO/PORT (e.g. tcp/22)`);
    const [a, b] = [m![1]!, m![2]!];
    const spec = /^\d+$/.test(a) ? `${a}/${b}` : `${b}/${a}`;
    try {
      out.push(formatPort(parsePort(spec.toLowerCase())));
    } catch {
      fail(`"${item}": port must be 1-65535`);
    }
  }
  if (out.length > BOUNDS.maxPortsPerGrant) fail(`${out.length} ports, at most ${BOUNDS.maxPortsPerGrant}`);
  return [...new Set(out)];
}

function enumValue<T extends string>(
  value: string,
  allowed: readonly T[],
  name: string,
  fail: (what: string) => never,
): T {
  const v = value.toLowerCase() as T;
  if (!allowed.includes(v)) fail(`${name} "${value}" is unsupported: use ${allowed.join(', ')}`);
  return v;
}

function wholeSeconds(
  value: string,
  min: number,
  max: number,
  name: string,
  fail: (what: string) => never,
): number {
  if (!/^\d+$/.test(value)) fail(`${name} "${value}" is not a whole number of seconds`);
  const n = Number(value);
  if (n < min || n > max) fail(`${name} ${n} is out of range: ${min} to ${max} seconds`);
  return n;
}

function oneLine(value: string, fail: (what: string) => never): string {
  if (hasControlChars(value)) fail('command holds control characters');
  return value;
}

function addStanza(s: Stanza, name: string, out: ParsedConfig, fwknopd: FwknopdSettings | undefined): void {
  const fail = (what: string): never => {
    throw new ConfigError(s.file, s.line, what);
  };
  const warn = (text: string) => out.warnings.push(where(s.file, s.line, text));
  if (s.keys.KEY === undefined && s.keys.KEY_BASE64 === undefined) {
    fail('SOURCE stanza has no KEY or KEY_BASE64 (fwknopd: "No keys found for access stanza")');
  }
  const hmac = s.keys.HMAC_KEY ?? s.keys.HMAC_KEY_BASE64;
  if (
    hmac !== undefined &&
    keyBytes(s.keys.KEY, s.keys.KEY_BASE64).equals(keyBytes(s.keys.HMAC_KEY, s.keys.HMAC_KEY_BASE64))
  ) {
    fail('the encryption key and the HMAC key must differ (fwknopd refuses identical keys)');
  }

  let ports = s.openPorts;
  if (!ports) {
    ports = [...ASSUMED_GRANT_PORTS];
    for (const p of ports) out.unprotectedPorts.add(p);
    warn(
      `stanza has no OPEN_PORTS: fwknopd would open whatever port the client asks for, knockgate opens only listed ports; ` +
        `assuming ${ports.join(', ')} (not protected by default). Set OPEN_PORTS to what this stanza should open`,
    );
  }
  if (s.restrictPorts) {
    const restricted = new Set(s.restrictPorts);
    ports = ports.filter((p) => !restricted.has(p));
    if (ports.length === 0) fail('RESTRICT_PORTS removes every port this stanza would open');
  }

  let duration =
    s.fwAccessTimeout && s.fwAccessTimeout > 0 ? s.fwAccessTimeout : FWKNOPD_DEFAULTS.fwAccessTimeoutSeconds;
  const hooks: Hooks = { placeholders: 'fwknop' };
  const hasCmds = s.open !== undefined || s.close !== undefined;
  if (hasCmds && s.externalCmds) {
    if (s.open !== undefined) hooks.start = s.open;
    if (s.close !== undefined) hooks.stop = s.close;
    out.hooks[name] = hooks;
    if (s.alarm) {
      if (s.fwAccessTimeout !== undefined && s.fwAccessTimeout !== s.alarm.seconds) {
        throw new ConfigError(
          s.alarm.file,
          s.alarm.line,
          `close-command delay ${s.alarm.seconds}s conflicts with FW_ACCESS_TIMEOUT ${s.fwAccessTimeout}: knockgate runs the close command when the grant expires`,
        );
      }
      duration = s.alarm.seconds;
    }
  } else if (hasCmds) {
    warn('EXTERNAL_CMD_OPEN/CLOSE are ignored without ENABLE_EXTERNAL_CMDS Y (as fwknopd does)');
  }
  if (s.maxFwTimeout !== undefined && s.maxFwTimeout < duration) {
    const at = s.seen.get('MAX_FW_TIMEOUT')!;
    throw new ConfigError(
      at.file,
      at.line,
      `MAX_FW_TIMEOUT ${s.maxFwTimeout} is below the access timeout ${duration}`,
    );
  }
  const maxDuration = s.maxFwTimeout ?? Math.max(FWKNOPD_DEFAULTS.maxFwTimeoutSeconds, duration);

  const spa: SpaSpec = {
    keySecretRef: { name },
    port: fwknopd?.spaPort ?? FWKNOPD_DEFAULTS.spaPort,
    maxPacketAgeSeconds: fwknopd?.maxPacketAgeSeconds ?? FWKNOPD_DEFAULTS.maxSpaPacketAgeSeconds,
    allowedSources: s.sources,
    requireSourceAddress: s.requireSourceAddress ?? false,
  };
  if (s.requireUsername !== undefined) spa.requireUsername = s.requireUsername;
  if (s.hmacDigestType !== undefined) spa.hmacDigestType = s.hmacDigestType as SpaSpec['hmacDigestType'];
  if (s.encryptionMode !== undefined) spa.encryptionMode = s.encryptionMode as SpaSpec['encryptionMode'];
  if (hmac === undefined) {
    spa.allowMissingHmac = true;
    warn(
      'stanza has NO HMAC KEY: its SPA packets are only encrypted, not authenticated, and are accepted without an HMAC ' +
        '(spa.allowMissingHmac). Strongly recommended: add HMAC_KEY_BASE64 (fwknop --key-gen) and use fwknop --use-hmac',
    );
  }

  const policy: KnockPolicy = {
    apiVersion: API_VERSION,
    kind: 'KnockPolicy',
    metadata: { name },
    spec: { spa, grant: { ports, durationSeconds: duration, maxDurationSeconds: maxDuration } },
  };
  if (fwknopd?.interface) policy.spec.interface = fwknopd.interface;
  out.policies.push({ policy, file: s.file, line: s.line });
  const secret: SecretData = {};
  for (const k of KEY_VARS) if (s.keys[k] !== undefined) secret[k] = s.keys[k]!;
  out.secrets[name] = secret;
}
