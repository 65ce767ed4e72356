// knockd.conf → knock KnockPolicies, with knockd's own semantics (jvinet/knock src/knockd.c,
// parseconfig(), and knockd(1)):
//   - lines are trimmed; "#" at the start is a comment; "[name]" opens a section; "key = value"
//     (the key is case-insensitive); "UseSyslog" is the one key without a value;
//   - [options]: UseSyslog, LogFile, PidFile, Interface;
//   - every other section is a door: sequence (PORT[:PROTO],... protocol default tcp) or
//     one_time_sequences (a file, one sequence a line, "#" lines used up), seq_timeout / timeout
//     (default 25), tcpflags, start_command / command, start_command_6 / command_6, stop_command,
//     stop_command_6, cmd_timeout (default 10), target.
// Unlike knockd, which skips what it cannot parse in several places, every problem is an error
// naming FILE:LINE: a door that silently differs from what its author wrote is worse than none.
//
// A door's real effect in knockd is its command. The grant opens the ports that command opens when
// knockgate can read them (iptables/nft/ufw accepting a --dport); otherwise the door only runs its
// commands: grant.targets.node.mode None (knockgate's firewall opens and protects nothing for it),
// ASSUMED_GRANT_PORTS recorded as its ports, and a warning. knockd's closing doors (iptables -D ...)
// become the stop command of the door they undo. The commands become hooks, which
// `knockgate standalone` runs itself (with cmd_timeout between start and stop, as knockd does).

import { API_VERSION, type KnockPolicy } from '../types.js';
import { BOUNDS } from '../limits.js';
import { INTERFACE_NAME } from '../validate-fields.js';
import type { Hooks } from '../standalone.js';
import { ConfigError, where } from './errors.js';
import { ASSUMED_GRANT_PORTS, KNOCKD_DEFAULTS } from './defaults.js';
import { closesAccess, portsOpenedBy, sameCommand, undoOf } from './command-ports.js';
import { oneLine } from './fwknop-values.js';
import { toDnsLabel } from './names.js';
import { parseSequence, parseTcpFlags, readOneTimeSequences, seconds } from './knockd-values.js';
import { emptyParsedConfig, type ParsedConfig } from './types.js';

interface Door {
  section: string;
  line: number;
  /** Directive → line, to report duplicates and place errors. */
  seen: Map<string, number>;
  sequence?: string[];
  oneTimeSequences?: string[][];
  seqTimeout?: number;
  tcpFlags?: string[];
  start?: string;
  start6?: string;
  stop?: string;
  stop6?: string;
  cmdTimeout?: number;
}

/** Door directives and their aliases (knockd accepts both spellings). */
const DOOR_KEYS: Record<string, string> = {
  SEQUENCE: 'sequence',
  ONE_TIME_SEQUENCES: 'one_time_sequences',
  SEQ_TIMEOUT: 'seq_timeout',
  TIMEOUT: 'seq_timeout',
  TCPFLAGS: 'tcpflags',
  START_COMMAND: 'start_command',
  COMMAND: 'start_command',
  START_COMMAND_6: 'start_command_6',
  COMMAND_6: 'start_command_6',
  STOP_COMMAND: 'stop_command',
  STOP_COMMAND_6: 'stop_command_6',
  CMD_TIMEOUT: 'cmd_timeout',
  TARGET: 'target',
};

export function parseKnockdConf(file: string, text: string): ParsedConfig {
  const out = emptyParsedConfig();
  const doors: Door[] = [];
  let section: 'none' | 'options' | Door = 'none';
  const sectionLines = new Map<string, number>();

  text.split(/\r?\n/).forEach((raw, i) => {
    const n = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fail: (what: string) => never = (what) => {
      throw new ConfigError(file, n, what);
    };
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) fail(`unterminated section header "${line}": want [name]`);
      const name = line.slice(1, -1).trim();
      if (name === '') fail('empty section name "[]"');
      const first = sectionLines.get(name.toLowerCase());
      if (first !== undefined) fail(`section [${name}] is already defined at line ${first}`);
      sectionLines.set(name.toLowerCase(), n);
      if (name.toLowerCase() === 'options') section = 'options';
      else {
        section = { section: name, line: n, seen: new Map() };
        doors.push(section);
      }
      return;
    }
    if (section === 'none')
      fail(`"${line}" is outside any section: directives belong to [options] or a door`);
    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).trim().toUpperCase();
    const value = eq < 0 ? undefined : line.slice(eq + 1).trim();
    if (section === 'options') {
      optionDirective(file, n, key, value, out);
      return;
    }
    const canonical = DOOR_KEYS[key];
    if (!canonical) fail(`unknown directive "${key.toLowerCase()}" in [${section.section}]`);
    if (value === undefined) fail(`"${key.toLowerCase()}" needs a value: ${key.toLowerCase()} = ...`);
    doorDirective(file, n, section, canonical, value, out);
  });

  for (const door of withoutClosingDoors(file, doors, out.warnings)) addDoor(file, door, out);
  if (out.policies.length === 0) {
    throw new ConfigError(
      file,
      undefined,
      'no door sections: a knockd.conf needs at least one [name] with a sequence',
    );
  }
  return out;
}

function optionDirective(
  file: string,
  n: number,
  key: string,
  value: string | undefined,
  out: ParsedConfig,
): void {
  if (key === 'USESYSLOG' && value === undefined) {
    out.warnings.push(where(file, n, 'UseSyslog is ignored: knockgate logs JSON lines to stdout'));
    return;
  }
  if (value === undefined) throw new ConfigError(file, n, `"${key.toLowerCase()}" needs a value`);
  switch (key) {
    case 'LOGFILE':
      out.warnings.push(where(file, n, 'LogFile is ignored: knockgate logs JSON lines to stdout'));
      return;
    case 'PIDFILE':
      out.warnings.push(where(file, n, 'PidFile is ignored: knockgate writes no pid file'));
      return;
    case 'INTERFACE':
      if (!INTERFACE_NAME.test(value)) throw new ConfigError(file, n, `invalid interface name "${value}"`);
      out.settings.interfaces = [value];
      return;
    default:
      throw new ConfigError(
        file,
        n,
        `unknown directive "${key.toLowerCase()}" in [options] (knockd knows UseSyslog, LogFile, PidFile, Interface)`,
      );
  }
}

function doorDirective(
  file: string,
  n: number,
  door: Door,
  key: string,
  value: string,
  out: ParsedConfig,
): void {
  const fail = (what: string): never => {
    throw new ConfigError(file, n, what);
  };
  const earlier = door.seen.get(key);
  if (earlier !== undefined) fail(`${key} is already set for [${door.section}] at line ${earlier}`);
  door.seen.set(key, n);
  switch (key) {
    case 'sequence':
      door.sequence = parseSequence(value, (what) => fail(`sequence: ${what}`));
      return;
    case 'one_time_sequences':
      door.oneTimeSequences = readOneTimeSequences(file, n, value);
      return;
    case 'seq_timeout':
      door.seqTimeout = seconds(value, BOUNDS.maxSequenceTimeoutSeconds, (what) =>
        fail(`seq_timeout ${what}`),
      );
      return;
    case 'cmd_timeout':
      door.cmdTimeout = seconds(value, BOUNDS.maxDurationSeconds, (what) => fail(`cmd_timeout ${what}`));
      return;
    case 'tcpflags':
      door.tcpFlags = parseTcpFlags(value, (what) => fail(`tcpflags: ${what}`));
      return;
    case 'start_command':
      door.start = oneLine(value, (what) => fail(`${key}: ${what}`));
      return;
    case 'start_command_6':
      door.start6 = oneLine(value, (what) => fail(`${key}: ${what}`));
      return;
    case 'stop_command':
      door.stop = oneLine(value, (what) => fail(`${key}: ${what}`));
      return;
    case 'stop_command_6':
      door.stop6 = oneLine(value, (what) => fail(`${key}: ${what}`));
      return;
    case 'target':
      // knockd matches the sequence on this address instead of the interface's (a router waking a
      // routed host). knockgate matches knocks on the host's own addresses: it opens nothing more.
      out.warnings.push(
        where(
          file,
          n,
          `[${door.section}] target ${value} is ignored: knocks are matched on this host's own addresses`,
        ),
      );
      return;
  }
}

/**
 * knockd's usual pair of doors — [openSSH] runs `iptables -A ... -j ACCEPT`, [closeSSH] runs the
 * same with `-D` — becomes one policy: knockgate closes access itself when the grant expires, so the
 * closing door's command becomes the opening door's stop command (run at expiry, as knockd runs
 * stop_command after cmd_timeout). A door that only removes a rule with no partner to pair with is
 * left out too: importing it would open a port on the knock meant to close it.
 */
function withoutClosingDoors(file: string, doors: Door[], warnings: string[]): Door[] {
  const keep: Door[] = [];
  for (const d of doors) {
    const cmds = [d.start, d.start6].filter((c): c is string => c !== undefined && c !== '');
    if (cmds.length === 0 || !cmds.every(closesAccess)) {
      keep.push(d);
      continue;
    }
    const undoes = (open: string | undefined, close: string | undefined) =>
      open !== undefined && close !== undefined && sameCommand(undoOf(open) ?? '', close);
    const partner = doors.find(
      (o) => o !== d && o.stop === undefined && (undoes(o.start, d.start) || undoes(o.start6, d.start6)),
    );
    if (partner) {
      if (undoes(partner.start, d.start)) partner.stop = d.start;
      if (undoes(partner.start6, d.start6)) partner.stop6 = d.start6;
      warnings.push(
        where(
          file,
          d.line,
          `[${d.section}] closes what [${partner.section}] opens: its command becomes [${partner.section}]'s stop_command, ` +
            'run when that grant expires (cmd_timeout) or is revoked; the door itself is not imported',
        ),
      );
    } else {
      warnings.push(
        where(
          file,
          d.line,
          `[${d.section}] only removes a firewall rule: knockgate closes access itself when a grant expires, ` +
            'and "knockgate revoke" closes it at once; the door is not imported',
        ),
      );
    }
  }
  return keep;
}

function addDoor(file: string, door: Door, out: ParsedConfig): void {
  const name = toDnsLabel(door.section);
  const fail = (what: string): never => {
    throw new ConfigError(file, door.line, what);
  };
  if (name === '') fail(`section [${door.section}] has no letters or digits to name a policy after`);
  const clash = out.policies.find((p) => p.policy.metadata.name === name);
  if (clash)
    fail(`section [${door.section}] and the section at line ${clash.line} both become policy "${name}"`);
  if (!door.sequence && !door.oneTimeSequences)
    fail(`section [${door.section}] has no sequence or one_time_sequences`);
  if (door.sequence && door.oneTimeSequences) {
    fail(`section [${door.section}] has both sequence and one_time_sequences: give one`);
  }

  const commands = [door.start, door.start6].filter((c): c is string => c !== undefined && c !== '');
  const opened = commands.map(portsOpenedBy).filter((p): p is string[] => p !== undefined);
  let ports = [...new Set(opened.flat())];
  const assumedPorts = ports.length === 0;
  if (assumedPorts) {
    // The door's effect is its command alone, as in knockd: the grant opens nothing in knockgate's
    // firewall (node target None) and protects nothing; its ports are only a record.
    ports = [...ASSUMED_GRANT_PORTS];
    const why = commands.length
      ? 'knockgate cannot tell which port its start_command opens'
      : 'it has no start_command';
    out.warnings.push(
      where(
        file,
        door.line,
        `[${door.section}]: ${why}, so the door only runs its commands: its grant opens and protects nothing in ` +
          `knockgate's firewall (grant.targets.node.mode None; ${ports.join(', ')} is recorded, not opened). ` +
          'In a cluster, give it grant.ports and targets (e.g. awsSecurityGroups) instead',
      ),
    );
  } else if (ports.length > BOUNDS.maxPortsPerGrant) {
    fail(`[${door.section}]: its commands open ${ports.length} ports, at most ${BOUNDS.maxPortsPerGrant}`);
  }
  if (door.stop === undefined && commands.some((c) => portsOpenedBy(c) !== undefined)) {
    out.warnings.push(
      where(
        file,
        door.line,
        `[${door.section}]: its command adds a firewall rule that no stop_command removes: knockgate closes its own ` +
          'grant after cmd_timeout, but that rule stays until removed by hand. Add a stop_command',
      ),
    );
  }
  if (door.stop !== undefined && door.cmdTimeout === undefined) {
    out.warnings.push(
      where(
        file,
        door.line,
        `[${door.section}]: no cmd_timeout: knockd's default of ${KNOCKD_DEFAULTS.cmdTimeoutSeconds}s applies`,
      ),
    );
  }

  const policy: KnockPolicy = {
    apiVersion: API_VERSION,
    kind: 'KnockPolicy',
    metadata: { name },
    spec: {
      knock: {
        ...(door.sequence ? { sequence: door.sequence } : { oneTimeSequences: door.oneTimeSequences }),
        sequenceTimeoutSeconds: door.seqTimeout ?? KNOCKD_DEFAULTS.seqTimeoutSeconds,
        ...(door.tcpFlags ? { tcpFlags: door.tcpFlags } : {}),
      },
      grant: {
        ports,
        // knockd runs stop_command cmd_timeout seconds after start_command: the grant's lifetime.
        durationSeconds: door.cmdTimeout ?? KNOCKD_DEFAULTS.cmdTimeoutSeconds,
        ...(assumedPorts ? { targets: { node: { mode: 'None' as const } } } : {}),
      },
    },
  };
  if (out.settings.interfaces) policy.spec.interface = out.settings.interfaces[0]!;
  out.policies.push({ policy, file, line: door.line, ...(assumedPorts ? { assumedPorts } : {}) });

  const hooks: Hooks = { placeholders: 'knockd' };
  if (door.start !== undefined) hooks.start = door.start;
  if (door.stop !== undefined) hooks.stop = door.stop;
  if (door.start6 !== undefined) hooks.start6 = door.start6;
  if (door.stop6 !== undefined) hooks.stop6 = door.stop6;
  if (
    hooks.start !== undefined ||
    hooks.stop !== undefined ||
    hooks.start6 !== undefined ||
    hooks.stop6 !== undefined
  ) {
    out.hooks[name] = hooks;
  }
}
