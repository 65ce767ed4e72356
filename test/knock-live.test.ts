// Live knock matching: knockgate's capture (cap/libpcap, sniffer/capture) runs in a server namespace
// on the server ends of two veths (two client namespaces, so two capture interfaces at once), with
// the engine and these knock policies; the real `knock` client (and `knockgate knock`) knock from the
// clients. Completed sequences show up as grant verdicts naming the policy and the client.
//
// "Does not complete" is asserted without sleeping: after the knocks under test the client knocks a
// sentinel sequence; packets of one client cross the veth and are captured in order, so once the
// sentinel's grant is seen every earlier packet has been matched.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KnockPolicy } from '../api/types.js';
import { knockgateCli, startCaptureHarness, type CaptureHarness } from './helpers/capture-live.js';
import { skipWithoutNetns, Topology, type Host } from './helpers/netns.js';

function policy(
  name: string,
  sequence: string[],
  extra: Partial<NonNullable<KnockPolicy['spec']['knock']>> = {},
) {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name },
    spec: {
      knock: { sequence, sequenceTimeoutSeconds: 15, ...extra },
      grant: { ports: ['22/tcp'], durationSeconds: 60 },
    },
  } as KnockPolicy;
}

const POLICIES = [
  policy('tcp-door', ['7101/tcp', '7102/tcp', '7103/tcp'], { tcpFlags: ['syn'] }),
  policy('udp-door', ['7201/udp', '7202/udp', '7203/udp']),
  policy('mixed-door', ['7301/tcp', '7302/udp', '7303/tcp'], { tcpFlags: ['syn', '!ack'] }),
  // The sniffer stamps packets when it handles them (cap gives no capture time), so the slow sequence
  // below is spread wide enough that no stall of a loaded machine can squeeze it into the timeout.
  policy('slow-door', ['7401/tcp', '7402/tcp', '7403/tcp'], { sequenceTimeoutSeconds: 2 }),
  // `knock` sends SYNs: a door that wants ACK never sees a knock.
  policy('ack-door', ['7501/tcp', '7502/tcp', '7503/tcp'], { tcpFlags: ['ack'] }),
  policy('sentinel', ['7901/udp', '7902/udp']),
];

describe.skipIf(skipWithoutNetns('live knock capture'))('live capture: real knock client → knockgate', () => {
  let net: Topology;
  let dir: string;
  let harness: CaptureHarness;
  let srv: Host;
  let cli: Host;
  let cli2: Host;
  const sentinels = new Map<string, number>();

  beforeAll(async () => {
    net = await Topology.create(['srv', 'cli', 'cli2']);
    dir = mkdtempSync(`${tmpdir()}/kg-knock-live-`);
    srv = net.ns('srv');
    cli = net.ns('cli');
    cli2 = net.ns('cli2');
    harness = await startCaptureHarness(srv, {
      interfaces: [srv.ifname['cli']!, srv.ifname['cli2']!],
      policies: POLICIES,
      dir,
      bufferBytes: 1024 * 1024,
    });
  });

  afterAll(async () => {
    await net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const grantsFor = (policyName: string, source: string) =>
    harness.grants().filter((e) => e.verdict!.policy === policyName && e.verdict!.source === source);

  async function knock(from: Host, args: string[]): Promise<void> {
    await from.run('knock', args);
  }

  /** Knock the sentinel from `from` (family 4 or 6) and wait until it is seen. */
  async function barrier(from: Host, family: 4 | 6): Promise<void> {
    const src = family === 4 ? `${from.addr4['srv']}/32` : `${from.addr6['srv']}/128`;
    const dst = family === 4 ? srv.addr4[from.role]! : srv.addr6[from.role]!;
    const n = (sentinels.get(src) ?? 0) + 1;
    sentinels.set(src, n);
    await knock(from, [`-${family}`, dst, '7901:udp', '7902:udp']);
    await harness.waitFor(() => grantsFor('sentinel', src).length >= n, `sentinel grant #${n} from ${src}`);
  }

  it('captures on both interfaces, with the buffer size given and pcap_stats drop counts', () => {
    expect(harness.ready.interfaces).toEqual([srv.ifname['cli'], srv.ifname['cli2']]);
    const filter = harness.ready.filters![srv.ifname['cli']!]!;
    expect(filter).toContain(`dst host ${srv.addr4['cli']}`);
    expect(filter).toContain('tcp dst port 7101');
    expect(filter).toContain('udp dst port 7902');
    expect(harness.ready.drops).toHaveLength(2);
    for (const d of harness.ready.drops!) expect(d.dropped).toBe(0);
  });

  it('a TCP sequence with -d delays completes its policy, naming the client', async () => {
    await knock(cli, ['-d', '200', srv.addr4['cli']!, '7101', '7102', '7103']);
    const e = await harness.waitFor(
      (x) => x.verdict?.policy === 'tcp-door' && x.verdict.source === `${cli.addr4['srv']}/32`,
      'tcp-door grant',
    );
    expect(e.verdict).toMatchObject({ kind: 'grant', ports: ['22/tcp'] });
  });

  it('a UDP sequence (-u) and a mixed TCP/UDP sequence complete theirs', async () => {
    await knock(cli, ['-u', '-d', '100', srv.addr4['cli']!, '7201', '7202', '7203']);
    await knock(cli, [srv.addr4['cli']!, '7301:tcp', '7302:udp', '7303:tcp']);
    await harness.waitFor((x) => x.verdict?.policy === 'udp-door', 'udp-door grant');
    await harness.waitFor((x) => x.verdict?.policy === 'mixed-door', 'mixed-door grant');
  });

  it('IPv6 with knock -6', async () => {
    await knock(cli, ['-6', '-d', '100', srv.addr6['cli']!, '7101', '7102', '7103']);
    await harness.waitFor(
      (x) => x.verdict?.policy === 'tcp-door' && x.verdict.source === `${cli.addr6['srv']}/128`,
      'tcp-door grant over IPv6',
    );
  });

  it('on the second interface, from the second client', async () => {
    await knock(cli2, ['-u', srv.addr4['cli2']!, '7201', '7202', '7203']);
    await harness.waitFor(
      (x) => x.verdict?.policy === 'udp-door' && x.verdict.source === `${cli2.addr4['srv']}/32`,
      'udp-door grant from cli2',
    );
  });

  it('a wrong port in the sequence does not complete it', async () => {
    const src = `${cli2.addr4['srv']}/32`;
    const before = grantsFor('tcp-door', src).length;
    await knock(cli2, [srv.addr4['cli2']!, '7101', '7103', '7102']);
    await knock(cli2, [srv.addr4['cli2']!, '7101', '7102', '7109', '7103']); // 7109: not captured at all
    await barrier(cli2, 4);
    // 7101 7102 (7109 unseen) 7103 does complete: only the policy's ports count.
    expect(grantsFor('tcp-door', src).length).toBe(before + 1);
    const seen = harness.verdicts().filter((e) => e.packet!.src === cli2.addr4['srv']);
    expect(seen.every((e) => e.packet!.dstPort !== 7109)).toBe(true);
  });

  it('a sequence slower than sequenceTimeoutSeconds does not complete; the same one in time does', async () => {
    const src = `${cli2.addr4['srv']}/32`;
    await knock(cli2, ['-d', '2500', srv.addr4['cli2']!, '7401', '7402', '7403']);
    await barrier(cli2, 4);
    expect(grantsFor('slow-door', src)).toHaveLength(0);
    await knock(cli2, [srv.addr4['cli2']!, '7401', '7402', '7403']);
    await harness.waitFor(
      (x) => x.verdict?.policy === 'slow-door' && x.verdict.source === src,
      'slow-door grant',
    );
  });

  it('knocks with the wrong TCP flags (SYN where ACK is required) do not complete', async () => {
    await knock(cli, [srv.addr4['cli']!, '7501', '7502', '7503']);
    await knock(cli, ['-6', srv.addr6['cli']!, '7501', '7502', '7503']);
    await barrier(cli, 4);
    await barrier(cli, 6);
    expect(harness.grants().filter((e) => e.verdict!.policy === 'ack-door')).toHaveLength(0);
  });

  it('knockgate knock --repeat (each knock sent 3 times) completes the sequence', async () => {
    const src = `${cli.addr4['srv']}/32`;
    const before = grantsFor('mixed-door', src).length;
    const r = await knockgateCli(cli, [
      'knock',
      '--repeat',
      '3',
      '-d',
      '50',
      srv.addr4['cli']!,
      '7301',
      '7302:udp',
      '7303',
    ]);
    expect(r.code).toBe(0);
    await harness.waitFor(
      () => grantsFor('mixed-door', src).length > before,
      'mixed-door grant after knockgate knock --repeat 3',
    );
    await barrier(cli, 4);
    expect(grantsFor('mixed-door', src).length).toBe(before + 1);
  });
});
