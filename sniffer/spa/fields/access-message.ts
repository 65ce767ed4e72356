// The access message (fko_message.c validate_access_msg): "ALLOW_IP,proto/port[,proto/port...]",
// e.g. "10.1.2.3,tcp/22,udp/53". fwknop's allow IP is a dotted quad ("0.0.0.0" for -s: use the
// packet's source); knockgate also accepts an IPv6 allow IP. Protocols: tcp, udp, icmp, none.

import { isIP } from 'node:net';
import { SPA_LIMITS } from '../limits.js';
import { decodeB64Field } from './b64-field.js';

export type AccessProto = 'tcp' | 'udp' | 'icmp' | 'none';

export interface AccessRequest {
  allowIp: string;
  access: { proto: AccessProto; port: number }[];
}

const PROTO_PORT_RE = /^(tcp|udp|icmp|none)\/([0-9]{1,5})$/;

export function parseAccessMessage(message: string): AccessRequest | undefined {
  const parts = message.split(',');
  const allowIp = parts[0]!;
  if (parts.length < 2 || isIP(allowIp) === 0) return undefined;
  const access: AccessRequest['access'] = [];
  for (let i = 1; i < parts.length; i++) {
    const m = PROTO_PORT_RE.exec(parts[i]!);
    if (!m) return undefined;
    access.push({ proto: m[1] as AccessProto, port: Number(m[2]) });
  }
  return { allowIp, access };
}

/** Decode and validate the base64 text of an access message. */
export function decodeAccessMessage(text: string): string | undefined {
  const message = decodeB64Field(text, SPA_LIMITS.maxMessageSize);
  return message !== undefined && parseAccessMessage(message) ? message : undefined;
}

export function formatAccessMessage(allowIp: string, access: string[]): string {
  return [allowIp, ...access].join(',');
}
