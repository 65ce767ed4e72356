// loadConfig: read a knockd.conf, an fwknop access.conf (with an optional fwknopd.conf) or a
// knockgate YAML file, tell which by its content, and return validated policies, keys, hooks and
// standalone settings. Every problem is a ConfigError: `FILE:LINE: what is wrong`.

import { basename } from 'node:path';
import { validatePolicy } from '../validate.js';
import { resolveSettings } from '../standalone.js';
import { ConfigError } from './errors.js';
import { parseKnockdConf } from './knockd.js';
import { parseAccessConf } from './fwknop-access.js';
import { parseFwknopdConf } from './fwknopd-conf.js';
import { parseKnockgateYaml } from './knockgate-yaml.js';
import { readConfigText } from './read.js';
import type { ConfigFormat, LoadedConfig, ParsedConfig } from './types.js';

export { ConfigError } from './errors.js';
export type { ConfigFormat, LoadedConfig, SecretData } from './types.js';

export interface LoadOptions {
  /** An fwknopd.conf to read with an access.conf (SPA port, interface, packet age). */
  fwknopdConf?: string;
  /** Milliseconds since the epoch, for ACCESS_EXPIRE dates. Default: now. */
  now?: number;
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
      parsed = parseAccessConf(file, text, { fwknopd, now: opts.now ?? Date.now() });
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
  const settings = resolveSettings(
    { ...parsed.settings, hooks: parsed.hooks },
    policies,
    parsed.unprotectedPorts,
  );
  return {
    format,
    policies,
    secrets: parsed.secrets,
    hooks: settings.hooks,
    settings,
    warnings: parsed.warnings,
  };
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
