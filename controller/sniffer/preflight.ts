// The sniffer captures and does nothing else on the host: it needs CAP_NET_RAW (or root), never
// CAP_NET_ADMIN. Checked before anything starts, so a misconfigured DaemonSet says so in one line.

import { readFileSync } from 'node:fs';

const CAP_NET_RAW = 13n;

export class SnifferPreflightError extends Error {}

function effectiveCapabilities(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

export function checkCaptureCapability(): void {
  if (((effectiveCapabilities() >> CAP_NET_RAW) & 1n) === 0n)
    throw new SnifferPreflightError('needs CAP_NET_RAW (capture): run as root or grant the capability');
}
