// `knockgate spa` over the wire in every transport it offers: UDP and TCP (-P tcp), IPv4 and IPv6,
// from the client namespace to a plain receiver in the server namespace. What arrives must be
// exactly the packet -B saved (one datagram; one TCP stream), from the client's address, and decode
// to what was asked. (fwknopd itself is tested in spa-fwknopd.test.ts; the Debian fwknop tools are
// IPv4-only, so IPv6 is checked here.)

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePacketFields } from '../cmd/spa.js';
import { knockgateCli } from './helpers/capture-live.js';
import { skipWithoutNetns, Topology, waitFor, type Host } from './helpers/netns.js';

const PORT = 62211;
const KEY = Buffer.alloc(32, 0x31).toString('base64');
const HMAC = Buffer.alloc(64, 0x32).toString('base64');

/** UDP and TCP on PORT, both families; one JSON line per datagram or per closed TCP stream. */
const RECEIVER = `
const dgram = require('node:dgram');
const net = require('node:net');
const port = Number(process.argv[1]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
let ready = 0;
const up = () => { if (++ready === 3) out({ ready: true }); };
for (const type of ['udp4', 'udp6']) {
  const s = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
  s.on('message', (m, r) => out({ transport: type, from: r.address, data: m.toString('latin1') }));
  s.bind(port, type === 'udp4' ? '0.0.0.0' : '::', up);
}
net.createServer((c) => {
  const chunks = [];
  c.on('data', (d) => chunks.push(d));
  c.on('end', () => out({ transport: 'tcp', from: c.remoteAddress, data: Buffer.concat(chunks).toString('latin1') }));
}).listen({ port, host: '::' }, up);
`;

interface Received {
  transport: string;
  from: string;
  data: string;
}

describe.skipIf(skipWithoutNetns('knockgate spa transports'))('knockgate spa: UDP/TCP, IPv4/IPv6', () => {
  let net: Topology;
  let srv: Host;
  let cli: Host;
  let dir: string;
  let receiver: ChildProcess;
  const received: Received[] = [];

  beforeAll(async () => {
    net = await Topology.create(['srv', 'cli']);
    srv = net.ns('srv');
    cli = net.ns('cli');
    dir = mkdtempSync(join(tmpdir(), 'kg-spa-send-'));
    receiver = srv.spawn(process.execPath, ['-e', RECEIVER, String(PORT)]);
    let buffered = '';
    let ready = false;
    receiver.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = JSON.parse(buffered.slice(0, nl)) as Received & { ready?: boolean };
        buffered = buffered.slice(nl + 1);
        if (line.ready) ready = true;
        else received.push(line);
      }
    });
    await waitFor(() => ready, { what: 'the receiver to listen' });
  });

  afterAll(async () => {
    await net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cases = [
    { transport: 'udp', family: 4 },
    { transport: 'udp', family: 6 },
    { transport: 'tcp', family: 4 },
    { transport: 'tcp', family: 6 },
  ] as const;

  for (const c of cases) {
    it(`${c.transport.toUpperCase()} over IPv${c.family}`, async () => {
      const dest = c.family === 4 ? srv.addr4['cli']! : srv.addr6['cli']!;
      const from = c.family === 4 ? cli.addr4['srv']! : cli.addr6['srv']!;
      const saved = join(dir, `${c.transport}${c.family}`);
      const before = received.length;
      const sent = await knockgateCli(cli, [
        'spa',
        '-A',
        'tcp/22',
        '-a',
        from,
        '-D',
        dest,
        '-p',
        String(PORT),
        '-P',
        c.transport,
        '--key-base64-rijndael',
        KEY,
        '--key-base64-hmac',
        HMAC,
        '-U',
        `user${c.family}${c.transport}`,
        '-B',
        saved,
      ]);
      expect(sent.code, sent.stderr).toBe(0);
      const got = (await waitFor(() => received.slice(before).find((r) => r.from.endsWith(from)), {
        what: `the packet from ${from}`,
      }))!;
      expect(got.transport).toBe(c.transport === 'tcp' ? 'tcp' : `udp${c.family}`);
      expect(received.length - before).toBe(1);
      // Exactly the saved packet (the file has a trailing newline; the wire has none).
      expect(got.data).toBe(readFileSync(saved, 'latin1').replace(/\n$/, ''));
      const fields = decodePacketFields(Buffer.from(got.data, 'latin1'), {
        keyBase64Rijndael: KEY,
        keyBase64Hmac: HMAC,
        encryptionMode: 'cbc',
      });
      expect(fields).toMatchObject({
        username: `user${c.family}${c.transport}`,
        accessMessage: `${from},tcp/22`,
        messageType: 'access',
      });
    });
  }

  it('an unreachable TCP destination is one line and a non-zero exit', async () => {
    const sent = await knockgateCli(cli, [
      'spa',
      '-A',
      'tcp/22',
      '-a',
      cli.addr4['srv']!,
      '-D',
      srv.addr4['cli']!,
      '-p',
      String(PORT + 1),
      '-P',
      'tcp',
      '--key-base64-rijndael',
      KEY,
    ]);
    expect(sent.code).toBe(1);
    expect(sent.stderr).toMatch(
      new RegExp(
        `^knockgate: sending to ${srv.addr4['cli']!.replace(/\./g, '\\.')} port ${PORT + 1}/tcp: .*ECONNREFUSED.*\\n$`,
      ),
    );
  });
});
