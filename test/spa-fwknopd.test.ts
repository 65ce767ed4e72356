// `knockgate spa` → the real fwknopd 2.6: fwknopd sniffs the server end of a veth in its own
// namespace (iptables firewall, private config, run dir, digest cache and pid file), `knockgate spa`
// sends from the client namespace. fwknopd must open its FWKNOP_INPUT chain for the allow IP, and
// the same packet sent again (saved with -B, resent as one raw UDP datagram) must be logged by
// fwknopd as a replay and open nothing more.

import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knockgateCli } from './helpers/capture-live.js';
import { skipWithoutNetns, Topology, waitFor, type Host } from './helpers/netns.js';

const SPA_PORT = 62201;
// Fresh keys per run, the sizes fwknop --key-gen makes.
const KEY_BASE64 = randomBytes(32).toString('base64');
const HMAC_KEY_BASE64 = randomBytes(64).toString('base64');

/** One UDP datagram with a file's contents (the packet text), from inside `host`'s namespace. */
const RESEND_SCRIPT = `
const dgram = require('node:dgram');
const fs = require('node:fs');
const [file, host, port] = process.argv.slice(1);
const data = Buffer.from(fs.readFileSync(file, 'latin1').trim(), 'latin1');
const s = dgram.createSocket('udp4');
s.send(data, Number(port), host, (err) => { s.close(); if (err) { console.error(err.message); process.exit(1); } });
`;

describe.skipIf(skipWithoutNetns('knockgate spa against fwknopd'))('knockgate spa → real fwknopd', () => {
  let net: Topology;
  let dir: string;
  let srv: Host;
  let cli: Host;
  let fwknopd: ChildProcess;
  let log = '';

  const fwknopInput = async (): Promise<string> =>
    (await srv.run('iptables', ['-w', '5', '-S', 'FWKNOP_INPUT'])).stdout;

  beforeAll(async () => {
    net = await Topology.create(['srv', 'cli']);
    srv = net.ns('srv');
    cli = net.ns('cli');
    dir = mkdtempSync(join(tmpdir(), 'kg-spa-fwknopd-'));
    chmodSync(dir, 0o700);
    const conf = join(dir, 'fwknopd.conf');
    const access = join(dir, 'access.conf');
    writeFileSync(
      conf,
      [
        `PCAP_INTF                 ${srv.ifname['cli']};`,
        'ENABLE_PCAP_PROMISC       N;',
        `PCAP_FILTER               udp port ${SPA_PORT};`,
        'FIREWALL_EXE              /usr/sbin/iptables;',
        'ENABLE_DIGEST_PERSISTENCE Y;',
        'ENABLE_SPA_PACKET_AGING   Y;',
        'MAX_SPA_PACKET_AGE        120;',
        'FLUSH_IPT_AT_INIT         Y;',
        'FLUSH_IPT_AT_EXIT         Y;',
        `FWKNOP_RUN_DIR            ${dir};`,
        'LOCALE                    C;',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    writeFileSync(
      access,
      [
        'SOURCE             ANY',
        `KEY_BASE64         ${KEY_BASE64}`,
        `HMAC_KEY_BASE64    ${HMAC_KEY_BASE64}`,
        'HMAC_DIGEST_TYPE   sha256',
        'OPEN_PORTS         tcp/22',
        'FW_ACCESS_TIMEOUT  60',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    fwknopd = srv.spawn('fwknopd', [
      '-v',
      '-f',
      '-c',
      conf,
      '-a',
      access,
      '-d',
      join(dir, 'digest.cache'),
      '-p',
      join(dir, 'fwknopd.pid'),
      '-r',
      dir,
    ]);
    fwknopd.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    fwknopd.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    // Ready once its chain exists and it sniffs (it logs its main loop after opening pcap).
    await waitFor(
      async () =>
        fwknopd.exitCode === null &&
        /main event loop/.test(log) &&
        (await fwknopInput()).includes('-N FWKNOP_INPUT'),
      { what: 'fwknopd to create FWKNOP_INPUT and start sniffing', timeoutMs: 30_000 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nfwknopd output:\n${log}`);
    });
  });

  afterAll(async () => {
    if (fwknopd?.pid && fwknopd.exitCode === null) {
      try {
        process.kill(fwknopd.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    await net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fwknopd opens FWKNOP_INPUT for the allow IP, then logs the same packet again as a replay', async () => {
    const allowIp = cli.addr4['srv']!;
    const saved = join(dir, 'sent.spa');
    const sent = await knockgateCli(cli, [
      'spa',
      '-A',
      'tcp/22',
      '-a',
      allowIp,
      '-D',
      srv.addr4['cli']!,
      '-p',
      String(SPA_PORT),
      '--key-base64-rijndael',
      KEY_BASE64,
      '--key-base64-hmac',
      HMAC_KEY_BASE64,
      '-U',
      'alice',
      '-B',
      saved,
    ]);
    expect(sent.code, sent.stderr).toBe(0);

    const rule = new RegExp(
      `-A FWKNOP_INPUT -s ${allowIp.replace(/\./g, '\\.')}(/32)? .*--dport 22 .*-j ACCEPT`,
    );
    await waitFor(async () => rule.test(await fwknopInput()), {
      what: `an ACCEPT for ${allowIp} in FWKNOP_INPUT`,
      timeoutMs: 30_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\nfwknopd output:\n${log}`);
    });
    const rulesAfterFirst = (await fwknopInput()).split('\n').filter((l) => l.startsWith('-A')).length;
    expect(rulesAfterFirst).toBe(1);

    // The same bytes again, as one raw datagram.
    const packetText = readFileSync(saved, 'latin1').trim();
    expect(packetText).toMatch(/^[A-Za-z0-9+/]+$/);
    await cli.run(process.execPath, ['-e', RESEND_SCRIPT, saved, srv.addr4['cli']!, String(SPA_PORT)]);
    await waitFor(() => /Replay detected/i.test(log), {
      what: 'fwknopd to log the resent packet as a replay',
      timeoutMs: 30_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\nfwknopd output:\n${log}`);
    });
    expect(log).toMatch(
      new RegExp(
        `Replay detected.*${allowIp.replace(/\./g, '\\.')}|${allowIp.replace(/\./g, '\\.')}.*Replay detected`,
        'i',
      ),
    );
    // Still the one rule: the replay opened nothing.
    expect((await fwknopInput()).split('\n').filter((l) => l.startsWith('-A')).length).toBe(1);
    // fwknopd decoded exactly what knockgate put in (-v prints the fields).
    expect(log).toMatch(/Username: alice\n/);
    expect(log).toContain(`Message String: ${allowIp},tcp/22\n`);
  });

  it('a packet with the wrong HMAC key opens nothing', async () => {
    const before = await fwknopInput();
    const lenBefore = log.length;
    const sent = await knockgateCli(cli, [
      'spa',
      '-A',
      'tcp/22',
      '-a',
      '10.99.99.99',
      '-D',
      srv.addr4['cli']!,
      '--key-base64-rijndael',
      KEY_BASE64,
      '--key-base64-hmac',
      Buffer.alloc(32, 7).toString('base64'),
    ]);
    expect(sent.code, sent.stderr).toBe(0);
    await waitFor(() => /SPA Packet from IP[^\n]*\n(.*\n)*.*(HMAC|Error)/.test(log.slice(lenBefore)), {
      what: 'fwknopd to refuse the packet',
      timeoutMs: 30_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\nfwknopd output:\n${log.slice(lenBefore)}`);
    });
    expect(log.slice(lenBefore)).toContain('FKO_ERROR_INVALID_DATA_HMAC_COMPAREFAIL');
    expect(await fwknopInput()).toBe(before);
  });

  it('-f (client timeout), another allow IP and another digest type: fwknopd opens for that long', async () => {
    const allowIp = '10.200.0.9';
    const sent = await knockgateCli(cli, [
      'spa',
      '-A',
      'tcp/22',
      '-a',
      allowIp,
      '-D',
      srv.addr4['cli']!,
      '--key-base64-rijndael',
      KEY_BASE64,
      '--key-base64-hmac',
      HMAC_KEY_BASE64,
      '--digest-type',
      'sha3_256',
      '-f',
      '45',
      '-U',
      'bob',
    ]);
    expect(sent.code, sent.stderr).toBe(0);
    const sentAt = Date.now() / 1000;
    const rule = new RegExp(`-A FWKNOP_INPUT -s 10\\.200\\.0\\.9/32 .*--dport 22 .*_exp_(\\d+).*-j ACCEPT`);
    const match = await waitFor(async () => rule.exec(await fwknopInput()), {
      what: `an ACCEPT for ${allowIp} in FWKNOP_INPUT`,
      timeoutMs: 30_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\nfwknopd output:\n${log}`);
    });
    // fwknopd took the client's 45 s, not the stanza's 60 s.
    const expiresIn = Number(match![1]) - sentAt;
    expect(expiresIn).toBeGreaterThan(30);
    expect(expiresIn).toBeLessThan(55);
    expect(log).toContain('Client Timeout: 45\n');
    expect(log).toMatch(/Digest Type: \d+ \(SHA3_256\)/);
  });
});
