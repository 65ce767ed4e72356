// Settings of `knockgate standalone` (the `kind: StandaloneConfig` object of a knockgate YAML file,
// or what a knockd.conf / fwknopd.conf implies), their defaults, and the per-policy command hooks
// that knockd's start_command/stop_command and fwknop's EXTERNAL_CMD_OPEN/CLOSE become.

import type { KnockPolicy } from './types.js';
import { formatPort, parsePort } from './ports.js';

export type StandaloneMode = 'Enforce' | 'Audit';
export type FirewallBackend = 'nftables' | 'ipset' | 'iptables';

export const STANDALONE_MODES: readonly StandaloneMode[] = ['Enforce', 'Audit'];
export const FIREWALL_BACKENDS: readonly FirewallBackend[] = ['nftables', 'ipset', 'iptables'];

/**
 * Commands run when a policy's grant opens and when it closes (standalone mode only: a cluster runs
 * no commands). Values substituted into them must be validated addresses, ports and protocol names.
 */
export interface Hooks {
  /** Run when a grant opens (knockd start_command / command, fwknop EXTERNAL_CMD_OPEN). */
  start?: string;
  /** Run when the grant closes (knockd stop_command, fwknop EXTERNAL_CMD_CLOSE). */
  stop?: string;
  /**
   * knockd start_command_6 / stop_command_6: used instead of start/stop for an IPv6 source. Absent:
   * fall back to start/stop (knockd 0.8 semantics); "" means run nothing for IPv6.
   */
  start6?: string;
  stop6?: string;
  /** Longest a single command may run before it is killed. Default HOOK_DEFAULTS.timeoutSeconds. */
  timeoutSeconds?: number;
  /**
   * Which placeholders the commands use: knockd's %IP%, or fwknop's $SRC, $PORT, $PROTO.
   * Default 'knockd'.
   */
  placeholders?: 'knockd' | 'fwknop';
}

export const HOOK_DEFAULTS = {
  timeoutSeconds: 10,
  placeholders: 'knockd',
} as const;

/** Bounds on hook settings (a hung command must not hold a grant open forever). */
export const HOOK_BOUNDS = {
  maxTimeoutSeconds: 600,
  maxCommandLength: 4096,
} as const;

/** The `kind: StandaloneConfig` object as written (every field optional). */
export interface StandaloneSettings {
  /** "22/tcp" specs dropped unless granted. Default: the grant ports of every policy. */
  protectedPorts?: string[];
  /** CIDRs accepted before any drop (break-glass, health checks). */
  alwaysAllow?: string[];
  /** CIDRs never granted, whatever a packet says (on top of loopback, link-local, ...). */
  neverGrant?: string[];
  /** Audit logs what would be opened and dropped and enforces nothing. Default Enforce. */
  mode?: StandaloneMode;
  /** Default nftables. */
  backend?: FirewallBackend;
  /** Live grants at most; beyond it grants are refused. Default: sized per backend by the daemon. */
  maxGrants?: number;
  /** `conntrack -D` for a source at revoke and at UDP expiry. Default false. */
  conntrackFlush?: boolean;
  /** Capture interfaces. Default: the default-route interface. */
  interfaces?: string[];
  /** Per policy name. */
  hooks?: Record<string, Hooks>;
}

/** Settings with every default applied (what loadConfig returns). maxGrants stays per-backend. */
export interface ResolvedSettings {
  protectedPorts: string[];
  alwaysAllow: string[];
  neverGrant: string[];
  mode: StandaloneMode;
  backend: FirewallBackend;
  maxGrants?: number;
  conntrackFlush: boolean;
  interfaces: string[];
  hooks: Record<string, Hooks>;
}

export const STANDALONE_DEFAULTS = {
  mode: 'Enforce',
  backend: 'nftables',
  conntrackFlush: false,
} as const;

/**
 * Apply the defaults. Without protectedPorts, the policies' grant ports are protected — those of
 * policies whose grants open this host's firewall (node target not None) — except ports
 * that an import had to assume (`unprotectedPorts`, e.g. a knockd door whose command opens something
 * knockgate cannot read): protecting those would lock out a service the old daemon never blocked.
 */
export function resolveSettings(
  settings: StandaloneSettings,
  policies: KnockPolicy[],
  unprotectedPorts: ReadonlySet<string> = new Set(),
): ResolvedSettings {
  const opening = policies.filter((p) => p.spec.grant.targets?.node?.mode !== 'None');
  const protectedPorts =
    settings.protectedPorts ??
    [...new Set(opening.flatMap((p) => p.spec.grant.ports.map((s) => formatPort(parsePort(s)))))].filter(
      (p) => !unprotectedPorts.has(p),
    );
  const hooks: Record<string, Hooks> = {};
  for (const [name, h] of Object.entries(settings.hooks ?? {})) {
    hooks[name] = {
      ...h,
      timeoutSeconds: h.timeoutSeconds ?? HOOK_DEFAULTS.timeoutSeconds,
      placeholders: h.placeholders ?? HOOK_DEFAULTS.placeholders,
    };
  }
  return {
    protectedPorts,
    alwaysAllow: settings.alwaysAllow ?? [],
    neverGrant: settings.neverGrant ?? [],
    mode: settings.mode ?? STANDALONE_DEFAULTS.mode,
    backend: settings.backend ?? STANDALONE_DEFAULTS.backend,
    ...(settings.maxGrants !== undefined ? { maxGrants: settings.maxGrants } : {}),
    conntrackFlush: settings.conntrackFlush ?? STANDALONE_DEFAULTS.conntrackFlush,
    interfaces: settings.interfaces ?? [],
    hooks,
  };
}
