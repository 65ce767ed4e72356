// `knockgate knock` against the real knockd 0.8: knockd listens on the server end of a veth in its
// own namespace, with a door whose command appends %IP% to a file; `knockgate knock` runs in the
// client namespace. TCP, UDP and mixed sequences, -u, -d, IPv6 with -6, and a host name (resolved
// through the client namespace's own /etc/netns/NS/hosts, which `ip netns exec` mounts as /etc/hosts).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKnock } from '../cmd/knock.js';
import { CliError } from '../cmd/errors.js';
import { knockgateCli } from './helpers/capture-live.js';
import { skipWithoutNetns, Topology, waitFor } from './helpers/netns.js';

describe('knock arguments', () => {
  it('reads knock syntax: PORT, PORT:PROTO (and PORT/PROTO), default protocol from -u', () => {
    expect(parseKnock('7000', 'tcp')).toEqual({ port: 7000, proto: 'tcp' });
    expect(parseKnock('7000', 'udp')).toEqual({ port: 7000, proto: 'udp' });
    expect(parseKnock('8000:UDP', 'tcp')).toEqual({ port: 8000, proto: 'udp' });
    expect(parseKnock('9000/tcp', 'udp')).toEqual({ port: 9000, proto: 'tcp' });
  });

  it('refuses bad ports and protocols with one line naming the argument', () => {
    for (const bad of ['0', '65536', 'ssh', '7000:icmp', '7000:', '-1', '70 00', '']) {
      expect(() => parseKnock(bad, 'tcp')).toThrow(CliError);
      try {
        parseKnock(bad, 'tcp');
      } catch (err) {
        expect((err as Error).message).toContain(`"${bad}"`);
        expect((err as Error).message).not.toContain('\n');
      }
    }
  });
});

describe.skipIf(skipWithoutNetns('knockgate knock against knockd'))('knockgate knock → real knockd', () => {
  let net: Topology;
  let dir: string;
  let opened: string;
  let hostsDir: string;

  beforeAll(async () => {
    net = await Topology.create(['srv', 'cli']);
    dir = mkdtempSync(`${tmpdir()}/kg-knock-client-`);
    opened = `${dir}/opened`;
    const srv = net.ns('srv');
    const iface = srv.ifname['cli']!;
    // One door per test case, on ports of its own, so the cases do not share knockd state.
    writeFileSync(
      `${dir}/knockd.conf`,
      [
        '[options]',
        `  LogFile = ${dir}/knockd.log`,
        '',
        '[mixed]',
        '  sequence = 7101,7102:udp,7103',
        '  seq_timeout = 15',
        '  tcpflags = syn',
        `  command = /bin/sh -c 'echo mixed %IP% >> ${opened}'`,
        '',
        '[udponly]',
        '  sequence = 7201:udp,7202:udp,7203:udp',
        '  seq_timeout = 15',
        `  command = /bin/sh -c 'echo udponly %IP% >> ${opened}'`,
        '',
        '[tcponly]',
        '  sequence = 7301,7302,7303',
        '  seq_timeout = 15',
        '  tcpflags = syn',
        `  command = /bin/sh -c 'echo tcponly %IP% >> ${opened}'`,
        '',
        '[named]',
        '  sequence = 7401,7402',
        '  seq_timeout = 15',
        `  command = /bin/sh -c 'echo named %IP% >> ${opened}'`,
        '',
      ].join('\n'),
    );
    srv.spawn('knockd', [
      '-i',
      iface,
      '-c',
      `${dir}/knockd.conf`,
      '-D',
      '-p',
      `${dir}/knockd.pid`,
      '-g',
      `${dir}/knockd.log`,
    ]);
    await waitFor(
      () =>
        existsSync(`${dir}/knockd.log`) && readFileSync(`${dir}/knockd.log`, 'utf8').includes('starting up'),
      { timeoutMs: 20_000, what: 'knockd to start' },
    );
    // A name for the server, seen only inside the client namespace.
    hostsDir = `/etc/netns/${net.ns('cli').netns}`;
    mkdirSync(hostsDir, { recursive: true });
    writeFileSync(`${hostsDir}/hosts`, `127.0.0.1 localhost\n${srv.addr4['cli']} knock-server\n`);
  });

  afterAll(async () => {
    await net?.destroy();
    if (hostsDir) rmSync(hostsDir, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const openedLines = () => (existsSync(opened) ? readFileSync(opened, 'utf8').trim().split('\n') : []);
  const waitOpened = (line: string) =>
    waitFor(() => openedLines().includes(line), { timeoutMs: 20_000, what: `knockd to run "${line}"` });

  it('a mixed TCP/UDP sequence over IPv4 runs knockd’s command for the client’s address', async () => {
    const srv = net.ns('srv').addr4['cli']!;
    const r = await knockgateCli(net.ns('cli'), ['knock', '-v', srv, '7101', '7102:udp', '7103:tcp']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`hitting udp ${srv}:7102`);
    await waitOpened(`mixed ${net.ns('cli').addr4['srv']}`);
  });

  it('-u makes bare ports UDP; -d spaces the knocks', async () => {
    const srv = net.ns('srv').addr4['cli']!;
    const r = await knockgateCli(net.ns('cli'), ['knock', '-u', '-d', '300', srv, '7201', '7202', '7203']);
    expect(r.code).toBe(0);
    await waitOpened(`udponly ${net.ns('cli').addr4['srv']}`);
  });

  it('-6 knocks over IPv6', async () => {
    const srv = net.ns('srv').addr6['cli']!;
    const r = await knockgateCli(net.ns('cli'), ['knock', '-6', '-d', '100', srv, '7301', '7302', '7303']);
    expect(r.code).toBe(0);
    await waitOpened(`tcponly ${net.ns('cli').addr6['srv']}`);
  });

  it('HOST may be a name, looked up with the family', async () => {
    const r = await knockgateCli(net.ns('cli'), ['knock', '-4', 'knock-server', '7401', '7402']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await waitOpened(`named ${net.ns('cli').addr4['srv']}`);
  });

  it('bad input: one line on stderr, exit status 2, nothing sent', async () => {
    const srv = net.ns('srv').addr4['cli']!;
    const before = openedLines().length;
    for (const args of [
      ['knock', srv, '7101', '7102:icmp', '7103'],
      ['knock', '-d', 'soon', srv, '7101'],
      ['knock', '-6', srv, '7101'],
      ['knock', 'no-such-host.invalid', '7101'],
    ]) {
      const r = await knockgateCli(net.ns('cli'), args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^knockgate: /);
    }
    expect(openedLines().length).toBe(before);
  });
});
