// Checks made before anything is installed, so bad input exits with one line and leaves no rule:
// the process can manage the firewall and capture (root, or CAP_NET_ADMIN + CAP_NET_RAW), and every
// named capture interface exists.

import { existsSync, readFileSync } from 'node:fs';

const CAP_NET_ADMIN = 12n;
const CAP_NET_RAW = 13n;

export class PreflightError extends Error {}

/** The effective capability mask of this process (from /proc/self/status). */
function effectiveCapabilities(): bigint {
  const status = readFileSync('/proc/self/status', 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

export function checkPrivileges(): void {
  const caps = effectiveCapabilities();
  const missing = [
    ...((caps >> CAP_NET_ADMIN) & 1n ? [] : ['CAP_NET_ADMIN (firewall)']),
    ...((caps >> CAP_NET_RAW) & 1n ? [] : ['CAP_NET_RAW (capture)']),
  ];
  if (missing.length > 0)
    throw new PreflightError(`needs root or ${missing.join(' and ')}: run as root or grant the capabilities`);
}

export function checkInterfaces(interfaces: readonly string[]): void {
  for (const iface of interfaces) {
    if (!/^[\w.:@-]{1,15}$/.test(iface) || !existsSync(`/sys/class/net/${iface}`))
      throw new PreflightError(`interface ${iface} does not exist`);
  }
}
