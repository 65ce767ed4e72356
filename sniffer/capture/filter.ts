// The BPF filter handed to libpcap, so that only packets that could matter reach JavaScript:
// inbound (sent to one of the node's own addresses) and on a knock or SPA port.
//
//   (dst host 10.0.0.1 or dst host fd00::1) and (tcp dst port 7000 or udp dst port 8000)
//
// With vlan: true (Ethernet interfaces) the same expression is repeated after pcap's `vlan` keyword
// so that frames still carrying an 802.1Q tag match too - `vlan` shifts the offsets of everything after
// it, so it must come last. Cooked captures (the `any` device) support no `vlan` keyword.

import { isIP } from 'node:net';
import type { PortRef } from '../../api/ports.js';

export class CaptureFilterError extends Error {}

export function buildCaptureFilter(opts: {
  addresses: readonly string[];
  ports: readonly PortRef[];
  vlan?: boolean;
}): string {
  if (opts.ports.length === 0) throw new CaptureFilterError('no knock or SPA port to capture');
  if (opts.addresses.length === 0) throw new CaptureFilterError('no local address to capture packets for');
  for (const a of opts.addresses) {
    if (isIP(a) === 0) throw new CaptureFilterError(`"${a}" is not an IP address`);
  }
  for (const p of opts.ports) {
    if (
      !Number.isInteger(p.port) ||
      p.port < 1 ||
      p.port > 65535 ||
      (p.proto !== 'tcp' && p.proto !== 'udp')
    ) {
      throw new CaptureFilterError(`invalid port ${JSON.stringify(p)}`);
    }
  }
  const hosts = opts.addresses.map((a) => `dst host ${a}`).join(' or ');
  const ports = opts.ports.map((p) => `${p.proto} dst port ${p.port}`).join(' or ');
  const base = `(${hosts}) and (${ports})`;
  return opts.vlan ? `(${base}) or (vlan and ${base})` : base;
}
