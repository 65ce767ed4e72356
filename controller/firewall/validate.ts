// Input checks: everything that reaches a command line or a ruleset file passes through here first,
// so what is substituted is only ever a canonical address, a CIDR, a port number or "tcp"/"udp".

import { isIP } from 'node:net';
import { ALWAYS_NEVER_GRANT, CidrSet, parseCidr } from '../../api/addresses.js';
import { BOUNDS } from '../../api/limits.js';
import { formatPort, type PortRef } from '../../api/ports.js';
import { STANDALONE_MODES, type FirewallBackend, type StandaloneMode } from '../../api/standalone.js';
import { DEFAULT_MAX_GRANTS, FIREWALL_LIMITS, HARD_MAX_GRANTS } from './limits.js';
import { FirewallInputError, type FirewallConfig, type FirewallGrant } from './types.js';

/** A config that passed validation, split by family and deduplicated. */
export interface ValidConfig {
  protectedPorts: PortRef[];
  knockPorts: PortRef[];
  allow4: string[];
  allow6: string[];
  mode: StandaloneMode;
  maxGrants: number;
  conntrackFlush: boolean;
}

/** A grant that passed validation: canonical host address (no prefix) and family. */
export interface ValidGrant {
  name: string;
  family: 4 | 6;
  address: string;
  ports: PortRef[];
  expiresAt: number;
}

const GRANT_NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const neverGranted = new CidrSet(ALWAYS_NEVER_GRANT);

export function validateConfig(config: FirewallConfig, backend: FirewallBackend): ValidConfig {
  if (typeof config !== 'object' || config === null) throw new FirewallInputError('firewall config: missing');
  const protectedPorts = validPorts(config.protectedPorts, undefined, 'protectedPorts');
  const knockPorts = validPorts(config.knockPorts, undefined, 'knockPorts');
  const knock = new Set(knockPorts.map(formatPort));
  const both = protectedPorts.map(formatPort).filter((p) => knock.has(p));
  if (both.length > 0)
    throw new FirewallInputError(`firewall config: ${both.join(', ')} both protected and a knock port`);
  if (!Array.isArray(config.alwaysAllow) || config.alwaysAllow.length > FIREWALL_LIMITS.maxConfigEntries)
    throw new FirewallInputError(
      `firewall config: alwaysAllow must be a list of at most ${FIREWALL_LIMITS.maxConfigEntries} CIDRs`,
    );
  const allow4 = new Set<string>();
  const allow6 = new Set<string>();
  for (const text of config.alwaysAllow) {
    const c = cidr(text, undefined, 'alwaysAllow');
    (c.family === 4 ? allow4 : allow6).add(`${c.address}/${c.prefix}`);
  }
  if (!STANDALONE_MODES.includes(config.mode))
    throw new FirewallInputError(`firewall config: mode "${String(config.mode)}" is not Enforce or Audit`);
  const maxGrants = config.maxGrants ?? DEFAULT_MAX_GRANTS[backend];
  if (!Number.isInteger(maxGrants) || maxGrants < 1 || maxGrants > HARD_MAX_GRANTS[backend])
    throw new FirewallInputError(
      `firewall config: maxGrants ${maxGrants} must be 1-${HARD_MAX_GRANTS[backend]} for the ${backend} backend`,
    );
  if (typeof config.conntrackFlush !== 'boolean')
    throw new FirewallInputError('firewall config: conntrackFlush must be true or false');
  return {
    protectedPorts,
    knockPorts,
    allow4: [...allow4],
    allow6: [...allow6],
    mode: config.mode,
    maxGrants,
    conntrackFlush: config.conntrackFlush,
  };
}

/** Throws FirewallInputError naming the grant and the field. */
export function validateGrant(grant: FirewallGrant, now: number): ValidGrant {
  const name = typeof grant?.name === 'string' ? grant.name : '';
  if (name.length > FIREWALL_LIMITS.maxGrantNameLength || !GRANT_NAME_RE.test(name))
    throw new FirewallInputError(`grant "${String(grant?.name).slice(0, 80)}": invalid name (want DNS-1123)`);
  // The error texts are built only on an error (a burst validates 10,000 good grants).
  const c = cidr(grant.source, name, 'source');
  if (c.prefix !== (c.family === 4 ? 32 : 128))
    throw new FirewallInputError(`grant ${name}: source ${grant.source} is not a single host`);
  if (neverGranted.has(c.address, c.family))
    throw new FirewallInputError(`grant ${name}: source ${grant.source} is never granted`);
  const ports = validPorts(grant.ports, name, 'ports');
  if (ports.length === 0 || ports.length > BOUNDS.maxPortsPerGrant)
    throw new FirewallInputError(`grant ${name}: want 1-${BOUNDS.maxPortsPerGrant} ports`);
  if (!Number.isSafeInteger(grant.expiresAt) || grant.expiresAt > now + FIREWALL_LIMITS.maxGrantLifetimeMs)
    throw new FirewallInputError(`grant ${name}: expiresAt must be a time (ms) within a week`);
  return {
    name,
    family: c.family,
    address: canonicalAddress(c.address, c.family),
    ports,
    expiresAt: grant.expiresAt,
  };
}

/** "grant NAME: field" for a grant's fields (`name` set), else the config field's own name. */
function place(name: string | undefined, field: string): string {
  return name === undefined ? field : `grant ${name}: ${field}`;
}

function cidr(text: unknown, name: string | undefined, field: string) {
  // parseCidr relies on node:net's isIP, which also accepts IPv6 zone ids ("fe80::1%eth0"): refused.
  if (typeof text !== 'string' || text.includes('%'))
    throw new FirewallInputError(`${place(name, field)}: invalid address "${String(text)}"`);
  try {
    return parseCidr(text);
  } catch (err) {
    throw new FirewallInputError(`${place(name, field)}: ${(err as Error).message}`);
  }
}

function validPorts(ports: unknown, name: string | undefined, field: string): PortRef[] {
  if (!Array.isArray(ports) || ports.length > FIREWALL_LIMITS.maxConfigEntries)
    throw new FirewallInputError(
      `${place(name, field)}: must be a list of at most ${FIREWALL_LIMITS.maxConfigEntries} ports`,
    );
  // Deduplicated by a linear scan, not a Map of formatted strings: a grant has one or a few ports
  // (a burst validates 10,000 grants), and a config at most maxConfigEntries. Indexed loops, no
  // callback: nothing allocated per port but the copy kept, in a list sized once (a push onto an
  // empty list reserves room for 16).
  const seen = new Array<PortRef>(ports.length);
  let kept = 0;
  for (let i = 0; i < ports.length; i++) {
    const p = (ports as PortRef[])[i]!;
    const ok =
      typeof p === 'object' &&
      p !== null &&
      Number.isInteger(p.port) &&
      p.port >= 1 &&
      p.port <= 65535 &&
      (p.proto === 'tcp' || p.proto === 'udp');
    if (!ok)
      throw new FirewallInputError(
        `${place(name, field)}: invalid port ${JSON.stringify(p)} (want {port: 1-65535, proto: tcp|udp})`,
      );
    let dup = false;
    for (let j = 0; j < kept && !dup; j++) dup = seen[j]!.port === p.port && seen[j]!.proto === p.proto;
    if (!dup) seen[kept++] = { port: p.port, proto: p.proto };
  }
  seen.length = kept;
  return seen;
}

/** One spelling per address, so that two spellings of a host are one kernel element. */
function canonicalAddress(address: string, family: 4 | 6): string {
  if (family === 4) return address;
  // The WHATWG URL parser serialises IPv6 hosts in RFC 5952 form (lowercase, longest zero run "::").
  const host = new URL(`http://[${address}]/`).hostname;
  const canonical = host.slice(1, -1);
  if (isIP(canonical) !== 6) throw new FirewallInputError(`invalid IPv6 address "${address}"`);
  return canonical;
}
