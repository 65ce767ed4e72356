// The agent's own configuration file (`kind: AgentConfig`, YAML). It is the only source of the
// protected ports, alwaysAllow, neverGrant and mode: never derived from the policy list, so an empty
// or failing policy watch can never shrink what is dropped. Every error is one line, FILE:LINE.
//
//   apiVersion: knockgate.io/v1alpha1
//   kind: AgentConfig
//   nodeName: node-a                # default: $NODE_NAME (the Downward API)
//   protectedPorts: ["22/tcp"]      # dropped unless granted (required, at least one)
//   knockPorts: ["62201/udp"]       # NOTRACK + DROP: the host answers nothing there
//   alwaysAllow: ["10.0.0.0/8"]
//   neverGrant: ["192.168.0.0/16"]  # on top of loopback, link-local, this node's addresses
//   mode: Enforce                   # or Audit
//   backend: nftables               # or ipset, iptables
//   maxGrants: 65536
//   conntrackFlush: false
//   resyncIntervalSeconds: 60       # whole desired state rewritten this often
//   largestManualPrefix: {ipv4: 32, ipv6: 128}   # widest source a manual grant may open
//   clockSkewSeconds: 5             # allowed on top of a policy's duration cap

import { LineCounter, parseDocument } from 'yaml';
import { readConfigText } from '../../api/config/read.js';
import { ConfigError } from '../../api/config/errors.js';
import { locatePath } from '../../api/config/knockgate-yaml.js';
import { LIST_BOUNDS } from '../../api/limits.js';
import { parsePort, type PortRef } from '../../api/ports.js';
import {
  FIREWALL_BACKENDS,
  STANDALONE_MODES,
  type FirewallBackend,
  type StandaloneMode,
} from '../../api/standalone.js';
import { API_VERSION } from '../../api/types.js';
import { Checker } from '../../api/validate-fields.js';
import { HARD_MAX_GRANTS } from '../firewall/limits.js';

export interface AgentConfig {
  nodeName: string;
  protectedPorts: PortRef[];
  knockPorts: PortRef[];
  alwaysAllow: string[];
  neverGrant: string[];
  mode: StandaloneMode;
  backend: FirewallBackend;
  /** Undefined: the firewall's per-backend default. */
  maxGrants?: number;
  conntrackFlush: boolean;
  resyncIntervalMs: number;
  /** Shortest prefix length a manual grant's source may have, per family. */
  largestManualPrefix: { ipv4: number; ipv6: number };
  clockSkewMs: number;
}

export const AGENT_DEFAULTS = {
  mode: 'Enforce',
  backend: 'nftables',
  conntrackFlush: false,
  resyncIntervalSeconds: 60,
  largestManualPrefix: { ipv4: 32, ipv6: 128 },
  clockSkewSeconds: 5,
} as const;

/**
 * Bounds. A manual grant wider than a host is opened as one firewall entry per address, so the
 * widest allowed prefix holds at most 256 addresses.
 */
export const AGENT_BOUNDS = {
  minResyncIntervalSeconds: 5,
  maxResyncIntervalSeconds: 24 * 3600,
  minManualPrefix: { ipv4: 24, ipv6: 120 },
  maxClockSkewSeconds: 300,
} as const;

const FIELDS = [
  'apiVersion',
  'kind',
  'metadata',
  'nodeName',
  'protectedPorts',
  'knockPorts',
  'alwaysAllow',
  'neverGrant',
  'mode',
  'backend',
  'maxGrants',
  'conntrackFlush',
  'resyncIntervalSeconds',
  'largestManualPrefix',
  'clockSkewSeconds',
] as const;

/** Read and check FILE. `env` supplies NODE_NAME when the file gives no nodeName. Throws ConfigError. */
export function loadAgentConfig(file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return parseAgentConfig(file, readConfigText(file), env);
}

export function parseAgentConfig(file: string, text: string, env: NodeJS.ProcessEnv = {}): AgentConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  const lineOf = (offset: number) => lc.linePos(offset).line;
  const syntax = doc.errors[0];
  if (syntax) {
    const line = syntax.linePos?.[0].line ?? lineOf(syntax.pos[0]);
    const message = syntax.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(file, line, `YAML: ${message}`);
  }
  if (doc.contents === null) throw new ConfigError(file, undefined, 'empty: want a kind: AgentConfig object');
  const obj: unknown = doc.toJS({ maxAliasCount: 100 });
  const fail = (path: string, message: string): never => {
    const line = locatePath(doc, path, lineOf);
    throw new ConfigError(file, line, path ? `${path}: ${message}` : message);
  };
  const c = new Checker();
  if (!c.isObject(obj, '')) return fail('', 'want a kind: AgentConfig object');
  if (obj.kind !== 'AgentConfig') fail('kind', 'must be AgentConfig');
  c.knownFields(obj, '', FIELDS);
  if (obj.apiVersion !== API_VERSION) c.fail('apiVersion', `must be ${API_VERSION}`);
  const max = LIST_BOUNDS.maxSettingsEntries;
  if (obj.nodeName !== undefined) c.dnsSubdomain(obj.nodeName, 'nodeName');
  if (obj.protectedPorts === undefined) c.fail('protectedPorts', 'required: the ports this node protects');
  else c.portList(obj.protectedPorts, 'protectedPorts', 1, max);
  if (obj.knockPorts !== undefined) c.portList(obj.knockPorts, 'knockPorts', 0, max);
  if (obj.alwaysAllow !== undefined) c.cidrList(obj.alwaysAllow, 'alwaysAllow', 0, max);
  if (obj.neverGrant !== undefined) c.cidrList(obj.neverGrant, 'neverGrant', 0, max);
  if (obj.mode !== undefined) c.oneOf(obj.mode, 'mode', STANDALONE_MODES);
  if (obj.backend !== undefined) c.oneOf(obj.backend, 'backend', FIREWALL_BACKENDS);
  if (obj.conntrackFlush !== undefined) c.isBoolean(obj.conntrackFlush, 'conntrackFlush');
  if (obj.resyncIntervalSeconds !== undefined)
    c.integer(
      obj.resyncIntervalSeconds,
      'resyncIntervalSeconds',
      AGENT_BOUNDS.minResyncIntervalSeconds,
      AGENT_BOUNDS.maxResyncIntervalSeconds,
    );
  if (obj.clockSkewSeconds !== undefined)
    c.integer(obj.clockSkewSeconds, 'clockSkewSeconds', 0, AGENT_BOUNDS.maxClockSkewSeconds);
  const prefix = obj.largestManualPrefix;
  if (prefix !== undefined && c.isObject(prefix, 'largestManualPrefix')) {
    c.knownFields(prefix, 'largestManualPrefix', ['ipv4', 'ipv6']);
    if (prefix.ipv4 !== undefined)
      c.integer(prefix.ipv4, 'largestManualPrefix.ipv4', AGENT_BOUNDS.minManualPrefix.ipv4, 32);
    if (prefix.ipv6 !== undefined)
      c.integer(prefix.ipv6, 'largestManualPrefix.ipv6', AGENT_BOUNDS.minManualPrefix.ipv6, 128);
  }
  if (c.errors[0]) fail(c.errors[0].path, c.errors[0].message);
  const backend = (obj.backend as FirewallBackend | undefined) ?? AGENT_DEFAULTS.backend;
  if (obj.maxGrants !== undefined && !c.integer(obj.maxGrants, 'maxGrants', 1, HARD_MAX_GRANTS[backend]))
    fail('maxGrants', `${c.errors[0]!.message} for the ${backend} backend`);
  const protectedPorts = (obj.protectedPorts as string[]).map((p) => parsePort(p));
  const knockPorts = ((obj.knockPorts as string[] | undefined) ?? []).map((p) => parsePort(p));
  const knock = new Set(knockPorts.map((p) => `${p.port}/${p.proto}`));
  const both = protectedPorts.findIndex((p) => knock.has(`${p.port}/${p.proto}`));
  if (both >= 0) fail(`protectedPorts[${both}]`, 'is also a knock port');

  const nodeName = (obj.nodeName as string | undefined) ?? env.NODE_NAME;
  if (nodeName === undefined || nodeName === '')
    fail('nodeName', 'not set, and NODE_NAME is not in the environment');
  if (obj.nodeName === undefined && !new Checker().dnsSubdomain(nodeName, 'nodeName'))
    throw new ConfigError(file, undefined, `NODE_NAME "${String(nodeName).slice(0, 80)}" is not a node name`);
  const skew = (obj.clockSkewSeconds as number | undefined) ?? AGENT_DEFAULTS.clockSkewSeconds;
  const resync = (obj.resyncIntervalSeconds as number | undefined) ?? AGENT_DEFAULTS.resyncIntervalSeconds;
  const manual = (prefix ?? {}) as { ipv4?: number; ipv6?: number };
  return {
    nodeName: nodeName!,
    protectedPorts,
    knockPorts,
    alwaysAllow: (obj.alwaysAllow as string[] | undefined) ?? [],
    neverGrant: (obj.neverGrant as string[] | undefined) ?? [],
    mode: (obj.mode as StandaloneMode | undefined) ?? AGENT_DEFAULTS.mode,
    backend,
    ...(obj.maxGrants !== undefined ? { maxGrants: obj.maxGrants as number } : {}),
    conntrackFlush: (obj.conntrackFlush as boolean | undefined) ?? AGENT_DEFAULTS.conntrackFlush,
    resyncIntervalMs: resync * 1000,
    largestManualPrefix: {
      ipv4: manual.ipv4 ?? AGENT_DEFAULTS.largestManualPrefix.ipv4,
      ipv6: manual.ipv6 ?? AGENT_DEFAULTS.largestManualPrefix.ipv6,
    },
    clockSkewMs: skew * 1000,
  };
}
