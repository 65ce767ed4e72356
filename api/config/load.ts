// loadConfig: read a knockd.conf, an fwknop access.conf (with an optional fwknopd.conf) or a
// knockgate YAML file, tell which by its content, and return everything `knockgate standalone`
// needs to run it (and `knockgate import` needs to convert it). Every problem is a ConfigError:
// `FILE:LINE: what is wrong`; nothing is returned half-checked.
//
// The returned LoadedConfig (types.ts):
//   format     'knockd' | 'fwknop' | 'knockgate'
//   policies   KnockPolicy[], each passed validatePolicy. Names: knockd section names as DNS labels
//              ("[SSH]" → "ssh"); access.conf stanzas <file>-<n> in file order; YAML as written.
//   secrets    Secret name → { KEY | KEY_BASE64, HMAC_KEY | HMAC_KEY_BASE64 } as written (the
//              Secret `knockgate import` prints; spa.keySecretRef.name points here).
//   keys       SPA policy name → { key: Buffer, hmacKey?: Buffer }: the keys resolved to bytes, in
//              memory only, checked (lengths, base64, the two keys different). No hmacKey means the
//              policy sets spa.allowMissingHmac. (Absent for a policy whose key is still the
//              __CHANGEME__ placeholder, which only `placeholderKeys: 'omit'` lets through.)
//   hooks      policy name → Hooks: commands run when a grant opens and closes.
//                knockd:  start_command/command → start, stop_command → stop, *_6 → start6/stop6
//                         (a closing door's command → the stop of the door it undoes),
//                         placeholders 'knockd' (%IP%); cmd_timeout is the policy's
//                         grant.durationSeconds (stop runs when the grant ends).
//                fwknop:  EXTERNAL_CMD_OPEN/CLOSE (with ENABLE_EXTERNAL_CMDS Y) or CMD_CYCLE_OPEN/
//                         CLOSE → start/stop, placeholders 'fwknop' ($SRC, $PORT, $PROTO);
//                         EXTERNAL_CMD_ALARM / CMD_CYCLE_TIMER is grant.durationSeconds.
//                YAML:    StandaloneConfig.hooks.
//              Each has timeoutSeconds (longest run of one command) and placeholders filled in.
//   settings   ResolvedSettings (api/standalone.ts), every default applied:
//                protectedPorts  StandaloneConfig.protectedPorts, else the grant ports of every
//                                policy that opens this host's firewall (node target not None),
//                                except ports an import had to assume (see defaults.ts)
//                alwaysAllow, neverGrant (CIDRs), mode (Enforce | Audit, default Enforce),
//                backend (default nftables), maxGrants (absent: sized per backend by the daemon),
//                conntrackFlush, interfaces (knockd [options] Interface, fwknopd.conf PCAP_INTF,
//                StandaloneConfig.interfaces; [] = the default-route interface), hooks (= hooks).
//              SPA ports and packet age come from fwknopd.conf (PCAP_FILTER / UDPSERV_PORT,
//              MAX_SPA_PACKET_AGE) into each policy's spec.spa.
//   settingsLine  the StandaloneConfig's line, when there is one
//   warnings   "FILE:LINE: what" lines: what the old daemon did that knockgate does differently or
//              ignores, assumed ports, missing HMAC keys. Never key material.

import { basename } from 'node:path';
import { validatePolicy } from '../validate.js';
import { resolveSettings } from '../standalone.js';
import { ConfigError, where } from './errors.js';
import { parseKnockdConf } from './knockd.js';
import { parseAccessConf } from './fwknop-access.js';
import { parseFwknopdConf } from './fwknopd-conf.js';
import { parseKnockgateYaml } from './knockgate-yaml.js';
import { readConfigText } from './read.js';
import { resolveKeys, type ResolvedKeys } from './keys.js';
import type { ConfigFormat, LoadedConfig, ParsedConfig } from './types.js';

export { ConfigError } from './errors.js';
export type { ConfigFormat, LoadedConfig, SecretData } from './types.js';
export type { ResolvedKeys } from './keys.js';

export interface LoadOptions {
  /** An fwknopd.conf to read with an access.conf (SPA port, interface, packet age). */
  fwknopdConf?: string;
  /** Milliseconds since the epoch, for ACCESS_EXPIRE dates. Default: now. */
  now?: number;
  /**
   * An access.conf key left at fwknop-server's placeholder __CHANGEME__: 'refuse' (default; a daemon
   * cannot run with it) or 'omit' (`knockgate import`: the Secret is written without it, and a
   * warning says to fill it in).
   */
  placeholderKeys?: 'refuse' | 'omit';
}

export function loadConfig(file: string, opts: LoadOptions = {}): LoadedConfig {
  const text = readConfigText(file);
  const format = detectFormat(file, text);
  if (opts.fwknopdConf !== undefined && format !== 'fwknop') {
    throw new ConfigError(
      opts.fwknopdConf,
      undefined,
      `an fwknopd.conf only goes with an fwknop access.conf, and ${file} is ${format} config`,
    );
  }
  let parsed: ParsedConfig;
  switch (format) {
    case 'knockd':
      parsed = parseKnockdConf(file, text);
      break;
    case 'knockgate':
      parsed = parseKnockgateYaml(file, text);
      break;
    case 'fwknop': {
      const fwknopd =
        opts.fwknopdConf === undefined
          ? undefined
          : parseFwknopdConf(opts.fwknopdConf, readConfigText(opts.fwknopdConf));
      parsed = parseAccessConf(file, text, {
        fwknopd,
        now: opts.now ?? Date.now(),
        placeholderKeys: opts.placeholderKeys ?? 'refuse',
      });
      parsed.warnings.unshift(...(fwknopd?.warnings ?? []));
      break;
    }
  }
  for (const p of parsed.policies) {
    const { errors } = validatePolicy(p.policy);
    const e = errors[0];
    if (e)
      throw new ConfigError(
        p.file,
        p.locate?.(e.path) ?? p.line,
        `policy "${p.policy.metadata.name}": ${e.path}: ${e.message}`,
      );
  }
  const policies = parsed.policies.map((p) => p.policy);
  const keys = resolvePolicyKeys(parsed);
  // An assumed port stays unprotected only while no policy of the file grants it explicitly.
  const explicit = new Set(
    parsed.policies
      .filter((p) => !p.assumedPorts && p.policy.spec.grant.targets?.node?.mode !== 'None')
      .flatMap((p) => p.policy.spec.grant.ports),
  );
  const unprotected = new Set([...parsed.unprotectedPorts].filter((port) => !explicit.has(port)));
  const settings = resolveSettings({ ...parsed.settings, hooks: parsed.hooks }, policies, unprotected);
  const warnings = [...parsed.warnings, ...unprotectedGrants(file, parsed, settings.protectedPorts)];
  return {
    format,
    policies,
    secrets: parsed.secrets,
    keys,
    hooks: settings.hooks,
    settings,
    ...(parsed.settingsLine === undefined ? {} : { settingsLine: parsed.settingsLine }),
    warnings,
  };
}

/**
 * With protectedPorts written out, a policy that opens a port outside them opens nothing: that port
 * is not dropped for anyone. Likely a forgotten entry: said, at the StandaloneConfig.
 */
function unprotectedGrants(file: string, parsed: ParsedConfig, protectedPorts: string[]): string[] {
  if (parsed.settings.protectedPorts === undefined) return [];
  const covered = new Set(protectedPorts);
  const out: string[] = [];
  for (const { policy } of parsed.policies) {
    if (policy.spec.grant.targets?.node?.mode === 'None') continue;
    const open = policy.spec.grant.ports.filter((p) => !covered.has(p));
    if (open.length === 0) continue;
    out.push(
      where(
        file,
        parsed.settingsLine,
        `policy "${policy.metadata.name}" grants ${open.join(', ')}, which protectedPorts does not hold: ` +
          'that port is open to everyone, so its grant changes nothing',
      ),
    );
  }
  return out;
}

/** Each SPA policy's keys as bytes; a Secret that cannot serve its policy is an error at the policy. */
function resolvePolicyKeys(parsed: ParsedConfig): Record<string, ResolvedKeys> {
  const keys: Record<string, ResolvedKeys> = {};
  for (const p of parsed.policies) {
    const spa = p.policy.spec.spa;
    if (!spa) continue;
    const name = p.policy.metadata.name;
    const data = parsed.secrets[spa.keySecretRef.name];
    const line = p.locate?.('spec.spa.keySecretRef.name') ?? p.line;
    if (!data)
      throw new ConfigError(p.file, line, `policy "${name}": no keys named "${spa.keySecretRef.name}"`);
    if (Object.keys(data).length === 0) continue; // placeholders left out on purpose (import)
    const resolved = resolveKeys(data);
    if ('error' in resolved)
      throw new ConfigError(
        p.file,
        line,
        `policy "${name}": Secret "${spa.keySecretRef.name}": ${resolved.error}`,
      );
    if (!resolved.keys.hmacKey && !spa.allowMissingHmac) {
      throw new ConfigError(
        p.file,
        line,
        `policy "${name}": Secret "${spa.keySecretRef.name}" has no HMAC_KEY_BASE64 (or HMAC_KEY) and the policy does not set spa.allowMissingHmac`,
      );
    }
    keys[name] = resolved.keys;
  }
  return keys;
}

/**
 * By content first: YAML has top-level apiVersion/kind keys, a knockd.conf starts with a [section],
 * an access.conf has SOURCE (or %include) lines. The file name decides only when the content does
 * not (an access.conf made only of %include lines is still seen by its lines).
 */
export function detectFormat(file: string, text: string): ConfigFormat {
  if (/^(apiVersion|kind):/m.test(text)) return 'knockgate';
  const first = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#'));
  if (first?.startsWith('[')) return 'knockd';
  if (/^\s*(SOURCE\b|%include)/im.test(text)) return 'fwknop';
  const name = basename(file).toLowerCase();
  if (/\.ya?ml$/.test(name)) return 'knockgate';
  if (name.includes('knockd')) return 'knockd';
  if (name.includes('access')) return 'fwknop';
  throw new ConfigError(
    file,
    undefined,
    'cannot tell the format: expected a knockd.conf ([name] sections), an fwknop access.conf (SOURCE lines) or knockgate YAML (apiVersion and kind)',
  );
}
