// fwknopd access.conf → SPA KnockPolicies and their key Secrets (mrash/fwknop server/access.c and
// the access.conf shipped with fwknop-server 2.6). Both layouts are read: `KEY  value` (2.6) and
// `KEY: value;` (the old Perl fwknop), and any mix of the two. Reading the lines into stanzas is
// fwknop-stanza.ts; this file maps each stanza to a policy.
//
// Every SOURCE line starts a stanza; each stanza becomes its own policy (named <file>-<n>) with its
// own Secret of the same name. How the variables map:
//   SOURCE              spa.allowedSources ("ANY" → 0.0.0.0/0 and ::/0; a.b.c.d/255.255.255.0 masks)
//   OPEN_PORTS          grant.ports ("tcp/22" → "22/tcp"); absent: fwknopd would open whatever the
//                       client asks for; knockgate opens only listed ports, so ASSUMED_GRANT_PORTS
//                       (SSH) with a warning, not protected by default
//   RESTRICT_PORTS      removed from OPEN_PORTS (an error when nothing is left)
//   KEY, KEY_BASE64, HMAC_KEY, HMAC_KEY_BASE64   the Secret, by those names (checked: keys.ts)
//   HMAC_DIGEST_TYPE, ENCRYPTION_MODE            spa.hmacDigestType / spa.encryptionMode (lowercase)
//   FW_ACCESS_TIMEOUT   grant.durationSeconds (< 1 or absent: 30, as fwknopd)
//   MAX_FW_TIMEOUT      grant.maxDurationSeconds (absent: 300, or the duration when longer)
//   REQUIRE_USERNAME, REQUIRE_SOURCE_ADDRESS (REQUIRE_SOURCE)   spa.requireUsername / requireSourceAddress
//   ENABLE_EXTERNAL_CMDS + EXTERNAL_CMD_OPEN/CLOSE/ALARM (old) or CMD_CYCLE_OPEN/CLOSE/TIMER (2.6)
//                       hooks with $SRC, $PORT, $PROTO; the alarm/timer is the grant's duration.
//                       Without OPEN_PORTS the commands are all the stanza does (they act where
//                       knockgate cannot see): grant.targets.node.mode None, nothing opened or
//                       protected in knockgate's firewall
//   %include FILE, %include_folder DIR (*.conf), %include_keys FILE (keys of the current stanza)
// Refused with FILE:LINE, because knockgate cannot honour them and ignoring them would open more
// than fwknopd would: GPG_* (GPG is unsupported), FORCE_NAT/FORCE_SNAT/FORCE_MASQUERADE (no NAT),
// ENABLE_CMD_EXEC Y (command messages are refused), a DESTINATION other than ANY, an ACCESS_EXPIRE
// date still to come (a stanza whose date has passed is skipped, as fwknopd would refuse it).
// A stanza without an HMAC key is imported with spa.allowMissingHmac and a loud warning.

import { basename, resolve } from 'node:path';
import { API_VERSION, type KnockPolicy, type SpaSpec } from '../types.js';
import type { Hooks } from '../standalone.js';
import { ConfigError, where } from './errors.js';
import { ASSUMED_GRANT_PORTS, FWKNOPD_DEFAULTS } from './defaults.js';
import { StanzaReader, type Stanza } from './fwknop-stanza.js';
import { KEY_PLACEHOLDER, KEY_VARS, resolveKeys } from './keys.js';
import { toDnsLabel, withSuffix } from './names.js';
import type { FwknopdSettings } from './fwknopd-conf.js';
import { emptyParsedConfig, type ParsedConfig, type SecretData } from './types.js';

export interface AccessConfOptions {
  fwknopd?: FwknopdSettings;
  /** For ACCESS_EXPIRE: milliseconds since the epoch. */
  now: number;
  /** See ReaderOptions.placeholderKeys. Default 'refuse'. */
  placeholderKeys?: 'refuse' | 'omit';
}

export function parseAccessConf(file: string, text: string, opts: AccessConfOptions): ParsedConfig {
  const out = emptyParsedConfig();
  const reader = new StanzaReader(out.warnings, {
    now: opts.now,
    placeholderKeys: opts.placeholderKeys ?? 'refuse',
  });
  reader.read(file, text, 0, new Set([resolve(file)]));
  const stanzas = reader.stanzas;
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

function addStanza(s: Stanza, name: string, out: ParsedConfig, fwknopd: FwknopdSettings | undefined): void {
  const fail = (what: string): never => {
    throw new ConfigError(s.file, s.line, what);
  };
  const warn = (text: string) => out.warnings.push(where(s.file, s.line, text));
  const keyPending = s.placeholders.has('KEY') || s.placeholders.has('KEY_BASE64');
  const hmacPending = s.placeholders.has('HMAC_KEY') || s.placeholders.has('HMAC_KEY_BASE64');
  if (s.keys.KEY === undefined && s.keys.KEY_BASE64 === undefined && !keyPending) {
    fail('SOURCE stanza has no KEY or KEY_BASE64 (fwknopd: "No keys found for access stanza")');
  }
  if (!keyPending && !hmacPending) {
    const checked = resolveKeys(s.keys as SecretData);
    if ('error' in checked) fail(checked.error);
  }
  if (s.placeholders.size > 0) {
    warn(
      `${[...s.placeholders].join(' and ')} still ${s.placeholders.size > 1 ? 'hold' : 'holds'} the placeholder ${KEY_PLACEHOLDER}: ` +
        `Secret "${name}" is written without ${s.placeholders.size > 1 ? 'them' : 'it'}; put keys from "knockgate keygen" in it ` +
        'before the policy can accept a packet',
    );
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

  const { hooks, duration } = stanzaHooks(s, warn);
  if (hooks) out.hooks[name] = hooks;
  // Commands without OPEN_PORTS act somewhere knockgate cannot see (the article's remote Windows
  // host): the stanza only runs them. With OPEN_PORTS, knockgate opens those ports and runs them.
  const commandsOnly = hooks !== undefined && !s.openPorts;
  if (commandsOnly) {
    warn(
      'stanza runs commands and lists no OPEN_PORTS: it only runs its commands; its grant opens and protects ' +
        "nothing in knockgate's firewall (grant.targets.node.mode None)",
    );
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
  if (s.keys.HMAC_KEY === undefined && s.keys.HMAC_KEY_BASE64 === undefined && !hmacPending) {
    spa.allowMissingHmac = true;
    warn(
      'stanza has NO HMAC KEY: its SPA packets are only encrypted, not authenticated, and are accepted without an HMAC ' +
        '(spa.allowMissingHmac: true). Strongly recommended: add HMAC_KEY_BASE64 (knockgate keygen) and use fwknop --use-hmac',
    );
  }

  const policy: KnockPolicy = {
    apiVersion: API_VERSION,
    kind: 'KnockPolicy',
    metadata: { name },
    spec: {
      spa,
      grant: {
        ports,
        durationSeconds: duration,
        maxDurationSeconds: maxDuration,
        ...(commandsOnly ? { targets: { node: { mode: 'None' as const } } } : {}),
      },
    },
  };
  if (fwknopd?.interface) policy.spec.interface = fwknopd.interface;
  out.policies.push({ policy, file: s.file, line: s.line, ...(s.openPorts ? {} : { assumedPorts: true }) });
  const secret: SecretData = {};
  for (const k of KEY_VARS) if (s.keys[k] !== undefined) secret[k] = s.keys[k]!;
  out.secrets[name] = secret;
}

/**
 * The stanza's open/close commands as hooks ($SRC, $PORT, $PROTO), and the grant's duration.
 *   old fwknop: ENABLE_EXTERNAL_CMDS Y + EXTERNAL_CMD_OPEN/CLOSE (without the switch they are
 *     ignored, as fwknop did); EXTERNAL_CMD_ALARM, when set, is the delay before the close command.
 *   fwknop 2.6: CMD_CYCLE_OPEN and CMD_CYCLE_CLOSE go together (CLOSE "NONE": no close command) and
 *     CMD_CYCLE_TIMER is required with a close command, as fwknopd checks.
 * knockgate runs the close command when the grant expires, so the delay is the grant's duration;
 * an FW_ACCESS_TIMEOUT that says otherwise is a contradiction, refused.
 */
function stanzaHooks(s: Stanza, warn: (text: string) => void): { hooks?: Hooks; duration: number } {
  let duration =
    s.fwAccessTimeout && s.fwAccessTimeout > 0 ? s.fwAccessTimeout : FWKNOPD_DEFAULTS.fwAccessTimeoutSeconds;
  const fail = (what: string): never => {
    throw new ConfigError(s.file, s.line, what);
  };
  if (s.cmds === undefined) return { duration };
  if (s.cmds === 'external' && !s.externalCmds) {
    warn('EXTERNAL_CMD_OPEN/CLOSE are ignored without ENABLE_EXTERNAL_CMDS Y (as fwknop does)');
    return { duration };
  }
  if (s.cmds === 'cycle') {
    if (s.open === undefined) fail('CMD_CYCLE_CLOSE without CMD_CYCLE_OPEN (fwknopd refuses it)');
    if (s.close === undefined)
      fail('CMD_CYCLE_OPEN without CMD_CYCLE_CLOSE (use CMD_CYCLE_CLOSE NONE for none)');
    if (s.close !== 'NONE' && s.alarm === undefined)
      fail('CMD_CYCLE_OPEN/CLOSE need CMD_CYCLE_TIMER: the seconds between them');
  } else if (s.open === undefined && s.close === undefined) {
    warn('EXTERNAL_CMD_ALARM without EXTERNAL_CMD_OPEN or EXTERNAL_CMD_CLOSE is ignored');
    return { duration };
  }
  const hooks: Hooks = { placeholders: 'fwknop' };
  if (s.open !== undefined) hooks.start = s.open;
  if (s.close !== undefined && s.close !== 'NONE') hooks.stop = s.close;
  if (s.alarm) {
    if (s.fwAccessTimeout !== undefined && s.fwAccessTimeout > 0 && s.fwAccessTimeout !== s.alarm.seconds) {
      throw new ConfigError(
        s.alarm.file,
        s.alarm.line,
        `close-command delay ${s.alarm.seconds}s conflicts with FW_ACCESS_TIMEOUT ${s.fwAccessTimeout}: knockgate runs the close command when the grant expires`,
      );
    }
    duration = s.alarm.seconds;
  }
  return { hooks, duration };
}
