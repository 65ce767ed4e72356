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
  /** knockd: its LogFile (one "OPEN SESAME" line per completed sequence). */
  logFile?: string;
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
  for (const tool of ['iptables', 'ip6tables']) {
    await srv.run(tool, ['-w', '5', '-F']);
    await srv.run(tool, ['-w', '5', '-X']);
  }
}

/**
 * Drop the knock or SPA ports themselves (IPv4 and IPv6), as knockgate's raw-table rules do, so a
 * peer's host answers a flood with nothing (no RST, no ICMP) either; pcap still sees every packet.
 */
export async function dropTriggerPorts(
  srv: Host,
  ports: { proto: 'tcp' | 'udp'; port: number }[],
): Promise<void> {
  for (const tool of ['iptables', 'ip6tables'])
    for (const p of ports)
      await srv.run(tool, ['-w', '5', '-A', 'INPUT', '-p', p.proto, '--dport', String(p.port), '-j', 'DROP']);
}

export async function startKnockd(
  srv: Host,
  dir: string,
  iface: string,
  knockPorts: number[],
  protectedPort: number,
  /** What an opened door runs; default: insert an iptables ACCEPT for the source. */
  command = `/usr/sbin/iptables -w -I INPUT 1 -s %IP% -p tcp --dport ${protectedPort} -j ACCEPT`,
): Promise<Peer> {
  const conf = join(dir, 'knockd.conf');
  const logFile = join(dir, `knockd-${Date.now()}.log`);
  writeFileSync(
    conf,
    [
      '[options]',
      `  LogFile = ${logFile}`,
      `  PidFile = ${join(dir, 'knockd.pid')}`,
      `  Interface = ${iface}`,
      '[bench]',
      `  sequence = ${knockPorts.map((p) => `${p}:tcp`).join(',')}`,
      '  seq_timeout = 10',
      '  tcpflags = syn',
      `  command = ${command}`,
      '',
    ].join('\n'),
  );
  const child = srv.spawn('knockd', ['-c', conf, '-i', iface]);
  const output = collect(child);
  await waitFor(() => child.exitCode === null && output().includes('listening'), {
    what: 'knockd to listen',
    timeoutMs: 15_000,
  }).catch(() => waitFor(() => child.exitCode === null, { timeoutMs: 2000 }));
  return { process: child, output, logFile };
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
