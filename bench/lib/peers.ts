// The peers the benchmarks compare against, configured as their packages expect, inside the server
// namespace: knockd (its `command` inserts an iptables ACCEPT) and fwknopd (its own FWKNOP_INPUT
// chain), each with the protected port dropped by a plain iptables rule behind them.

import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host } from '../../test/helpers/netns.js';
import { waitFor } from '../../test/helpers/netns.js';

export interface Peer {
  process: ChildProcess;
  output: () => string;
}

function collect(child: ChildProcess): () => string {
  let text = '';
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
  return () => text;
}

export async function dropProtectedPort(srv: Host, port: number): Promise<void> {
  await srv.run('iptables', ['-w', '5', '-A', 'INPUT', '-p', 'tcp', '--dport', String(port), '-j', 'DROP']);
}

export async function flushIptables(srv: Host): Promise<void> {
  await srv.run('iptables', ['-w', '5', '-F']);
  await srv.run('iptables', ['-w', '5', '-X']);
}

export async function startKnockd(
  srv: Host,
  dir: string,
  iface: string,
  knockPorts: number[],
  protectedPort: number,
): Promise<Peer> {
  const conf = join(dir, 'knockd.conf');
  writeFileSync(
    conf,
    [
      '[options]',
      `  LogFile = ${join(dir, 'knockd.log')}`,
      `  PidFile = ${join(dir, 'knockd.pid')}`,
      `  Interface = ${iface}`,
      '[bench]',
      `  sequence = ${knockPorts.map((p) => `${p}:tcp`).join(',')}`,
      '  seq_timeout = 10',
      '  tcpflags = syn',
      `  command = /usr/sbin/iptables -w -I INPUT 1 -s %IP% -p tcp --dport ${protectedPort} -j ACCEPT`,
      '',
    ].join('\n'),
  );
  const child = srv.spawn('knockd', ['-c', conf, '-i', iface]);
  const output = collect(child);
  await waitFor(() => child.exitCode === null && output().includes('listening'), {
    what: 'knockd to listen',
    timeoutMs: 15_000,
  }).catch(() => waitFor(() => child.exitCode === null, { timeoutMs: 2000 }));
  return { process: child, output };
}

export async function startFwknopd(
  srv: Host,
  dir: string,
  iface: string,
  spaPort: number,
  protectedPort: number,
  keys: { keyBase64: string; hmacKeyBase64: string },
): Promise<Peer> {
  const conf = join(dir, 'fwknopd.conf');
  const access = join(dir, 'access.conf');
  writeFileSync(
    conf,
    [
      `PCAP_INTF ${iface};`,
      'ENABLE_PCAP_PROMISC N;',
      `PCAP_FILTER udp port ${spaPort};`,
      'FIREWALL_EXE /usr/sbin/iptables;',
      'FLUSH_IPT_AT_INIT Y;',
      'FLUSH_IPT_AT_EXIT Y;',
      `FWKNOP_RUN_DIR ${dir};`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  writeFileSync(
    access,
    [
      'SOURCE ANY',
      `KEY_BASE64 ${keys.keyBase64}`,
      `HMAC_KEY_BASE64 ${keys.hmacKeyBase64}`,
      `OPEN_PORTS tcp/${protectedPort}`,
      'FW_ACCESS_TIMEOUT 60',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const child = srv.spawn('fwknopd', [
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
  const output = collect(child);
  await waitFor(
    async () =>
      child.exitCode === null &&
      (await srv.run('iptables', ['-w', '5', '-S', 'FWKNOP_INPUT']).then(
        () => true,
        () => false,
      )),
    { what: 'fwknopd to create FWKNOP_INPUT', timeoutMs: 30_000 },
  );
  return { process: child, output };
}

export async function stopPeer(peer: Peer): Promise<void> {
  if (peer.process.exitCode !== null || !peer.process.pid) return;
  const exited = new Promise<void>((resolve) => peer.process.once('exit', () => resolve()));
  process.kill(peer.process.pid, 'SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (peer.process.exitCode === null) process.kill(peer.process.pid, 'SIGKILL');
}
