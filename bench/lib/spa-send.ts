// One SPA datagram (the fwknop wire format, encodeSpa) from a given source address: what the bench
// clients send (bench/probe.ts encodes them for bench/syn-probe.c; bench/aws-spa.ts sends them).

import { createSocket } from 'node:dgram';
import { encodeSpa } from '../../sniffer/spa/encode.js';

interface SpaSendKeys {
  port: number;
  keyBase64: string;
  hmacKeyBase64: string;
}

/** The SPA packet (latin1 text) `source` sends to ask for tcp/`protectedPort`, stamped now. */
export function spaPacket(source: string, protectedPort: number, spa: SpaSendKeys): string {
  return encodeSpa(
    {
      allowIp: source,
      access: [`tcp/${protectedPort}`],
      username: 'bench',
      timestamp: Math.floor(Date.now() / 1000),
    },
    { key: Buffer.from(spa.keyBase64, 'base64'), hmacKey: Buffer.from(spa.hmacKeyBase64, 'base64') },
  );
}

/** Send one SPA packet from `source` asking for tcp/`protectedPort`; resolves once it left. */
export function spaFrom(
  source: string,
  target: string,
  protectedPort: number,
  spa: SpaSendKeys,
): Promise<void> {
  const packet = spaPacket(source, protectedPort, spa);
  const socket = createSocket('udp4');
  return new Promise<void>((resolve, reject) =>
    socket.bind({ address: source }, () =>
      socket.send(Buffer.from(packet, 'latin1'), spa.port, target, (err) => (err ? reject(err) : resolve())),
    ),
  ).finally(() => socket.close());
}
