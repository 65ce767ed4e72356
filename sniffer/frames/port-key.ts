// A transport endpoint (protocol + destination port) as one small integer, so that "does any policy
// listen here?" is a single Map or Set lookup per packet: TCP ports are 0-65535, UDP ports 65536 up.

import type { PortRef, Proto } from '../../api/ports.js';
import { IPPROTO_UDP } from './frame.js';

const UDP_BASE = 0x10000;

export function portKey(proto: Proto, port: number): number {
  return proto === 'udp' ? UDP_BASE + port : port;
}

/** The same key from a decoded frame's IP protocol number (IPPROTO_TCP or IPPROTO_UDP). */
export function portKeyOf(ipProto: number, port: number): number {
  return ipProto === IPPROTO_UDP ? UDP_BASE + port : port;
}

/** The protocol and port a key stands for. */
export function portOfKey(key: number): PortRef {
  return key >= UDP_BASE ? { proto: 'udp', port: key - UDP_BASE } : { proto: 'tcp', port: key };
}
