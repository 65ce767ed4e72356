// The node's own addresses on the capture interfaces: the capture filter only lets through packets
// sent to one of them (inbound only). Read from os.networkInterfaces(), which reflects the network
// namespace the process runs in. Link-local IPv6 addresses are included without their zone. The
// `any` pseudo-device stands for every interface, so it gets every address.

import { networkInterfaces } from 'node:os';

/** Addresses of `interfaces`, deduplicated, in interface order. Unknown interfaces contribute none. */
export function interfaceAddresses(interfaces: readonly string[]): string[] {
  const all = networkInterfaces();
  const out = new Set<string>();
  for (const name of interfaces) {
    const names = name === 'any' ? Object.keys(all) : [name];
    for (const n of names) for (const a of all[n] ?? []) out.add(a.address.replace(/%.*$/, ''));
  }
  return [...out];
}
