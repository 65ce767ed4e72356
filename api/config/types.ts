// What the config parsers produce, and what loadConfig hands to `knockgate standalone` and
// `knockgate import`.

import type { KnockPolicy } from '../types.js';
import type { Hooks, ResolvedSettings, StandaloneSettings } from '../standalone.js';
import type { ResolvedKeys } from './keys.js';

export type ConfigFormat = 'knockd' | 'fwknop' | 'knockgate';

/**
 * Key material of one SPA policy, by the names fwknop uses (and the SPA codec's key helper reads):
 * KEY (passphrase), KEY_BASE64, HMAC_KEY (passphrase), HMAC_KEY_BASE64.
 */
export type SecretData = Record<string, string>;

export interface LoadedConfig {
  format: ConfigFormat;
  /** Every one validated with validatePolicy. */
  policies: KnockPolicy[];
  /** By Secret name (spec.spa.keySecretRef.name). */
  secrets: Record<string, SecretData>;
  /** By SPA policy name: its keys as bytes, checked. In memory only, never logged. */
  keys: Record<string, ResolvedKeys>;
  /** By policy name; the same object as settings.hooks. */
  hooks: Record<string, Hooks>;
  settings: ResolvedSettings;
  /** Line of the StandaloneConfig object, when the file (knockgate YAML) has one. */
  settingsLine?: number;
  /** One line each, "FILE:LINE: what". Never holds key material. */
  warnings: string[];
}

/** One policy as a parser made it, with where it came from for error messages. */
export interface ParsedPolicy {
  policy: KnockPolicy;
  file: string;
  line: number;
  /** The line of a field path ("spec.grant.ports[1]") when the parser knows it better than `line`. */
  locate?: (path: string) => number | undefined;
  /** The grant ports are ASSUMED_GRANT_PORTS, not read from the config. */
  assumedPorts?: boolean;
}

export interface ParsedConfig {
  policies: ParsedPolicy[];
  secrets: Record<string, SecretData>;
  hooks: Record<string, Hooks>;
  settings: StandaloneSettings;
  /** Line of the StandaloneConfig object, when there is one. */
  settingsLine?: number;
  warnings: string[];
  /**
   * Grant ports the parser had to assume: not protected by default (see resolveSettings), unless
   * another policy of the file grants them explicitly (loadConfig takes those out).
   */
  unprotectedPorts: Set<string>;
}

/** A ParsedConfig with nothing in it yet, for a parser to fill. */
export function emptyParsedConfig(): ParsedConfig {
  return { policies: [], secrets: {}, hooks: {}, settings: {}, warnings: [], unprotectedPorts: new Set() };
}
