// What the firewall module is told by the standalone daemon: the config's settings and the engine's
// listening ports become a FirewallConfig; a stored AccessGrant becomes a FirewallGrant.

import { parsePort, type PortRef } from '../../api/ports.js';
import type { ResolvedSettings } from '../../api/standalone.js';
import type { AccessGrant } from '../../api/types.js';
import type { FirewallConfig, FirewallGrant } from '../firewall/types.js';
import { expiresAtMs } from '../grants/phase.js';

export function firewallConfig(settings: ResolvedSettings, knockPorts: PortRef[]): FirewallConfig {
  const config: FirewallConfig = {
    protectedPorts: settings.protectedPorts.map((p) => parsePort(p)),
    knockPorts,
    alwaysAllow: settings.alwaysAllow,
    mode: settings.mode,
    conntrackFlush: settings.conntrackFlush,
  };
  if (settings.maxGrants !== undefined) config.maxGrants = settings.maxGrants;
  return config;
}

export function firewallGrant(grant: AccessGrant): FirewallGrant {
  return {
    name: grant.metadata.name,
    source: grant.spec.source,
    ports: grant.spec.ports.map((p) => parsePort(p)),
    expiresAt: expiresAtMs(grant),
  };
}
