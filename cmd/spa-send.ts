// Sending one SPA packet: one UDP datagram (fwknop's default) or one TCP connection carrying the
// packet text (fwknop -P tcp). IPv4 and IPv6 destinations; a host name is resolved once.

import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { connect, isIP } from 'node:net';

/** How long a TCP send may take before it is abandoned. */
const TCP_SEND_TIMEOUT_MS = 10_000;

export type SpaTransport = 'udp' | 'tcp';

export async function resolveDestination(host: string): Promise<{ address: string; family: 4 | 6 }> {
  const family = isIP(host);
  if (family === 4 || family === 6) return { address: host, family };
  const found = await lookup(host);
  return { address: found.address, family: found.family === 6 ? 6 : 4 };
}

export async function sendSpa(
  packet: string,
  dest: { address: string; family: 4 | 6 },
  port: number,
  transport: SpaTransport,
): Promise<void> {
  const data = Buffer.from(packet, 'latin1');
  if (transport === 'udp') {
    const socket = createSocket(dest.family === 6 ? 'udp6' : 'udp4');
    try {
      await new Promise<void>((resolve, reject) =>
        socket.send(data, port, dest.address, (err) => (err ? reject(err) : resolve())),
      );
    } finally {
      socket.close();
    }
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host: dest.address, port, family: dest.family });
    socket.setTimeout(TCP_SEND_TIMEOUT_MS, () =>
      socket.destroy(new Error(`timed out sending to ${dest.address}:${port}/tcp`)),
    );
    socket.once('error', reject);
    socket.once('connect', () => socket.end(data));
    socket.once('close', (hadError) => {
      if (!hadError) resolve();
    });
  });
}
