// The kernel-side SPA precheck of the capture filter (sniffer/capture/filter.ts): on UDP ports where
// only SPA policies listen, packets whose payload cannot be SPA data never reach JavaScript. Checked
// with libpcap's own filter engine (tcpdump -r applies the compiled BPF to a pcap file, as the kernel
// does to live packets) on real frames: fwknop-format packets pass over IPv4 and IPv6, random junk
// and short or overlong payloads do not, and knock ports (also UDP ones) are never prechecked.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { KnockPolicy, KnockPolicySpec } from '../api/types.js';
import { buildCaptureFilter } from '../sniffer/capture/filter.js';
import { createEngine } from '../sniffer/engine.js';
import { encodeSpa } from '../sniffer/spa/encode.js';
import { ip4Bytes, ip6Bytes, macBytes, PcapWriter, type Endpoints } from '../bench/lib/packets.js';

const dir = mkdtempSync(join(tmpdir(), 'kg-precheck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const link = { srcMac: macBytes('02:00:00:00:00:02'), dstMac: macBytes('02:00:00:00:00:01') };
const v4: Endpoints = { family: 4, src: ip4Bytes('10.0.0.2'), dst: ip4Bytes('10.0.0.1') };
const v6: Endpoints = { family: 6, src: ip6Bytes('fd00::2'), dst: ip6Bytes('fd00::1') };
const spaText = encodeSpa(
  { allowIp: '10.0.0.2', access: ['tcp/22'], username: 'alice', timestamp: 1_700_000_000 },
  { key: Buffer.alloc(32, 1), hmacKey: Buffer.alloc(64, 2) },
);

/** How many of the frames the filter matches (libpcap's BPF engine over a pcap file). */
function matches(filter: string, frames: { ep: Endpoints; port: number; payload: Buffer }[]): number {
  const file = join(dir, `f${Math.random().toString(16).slice(2)}.pcap`);
  const w = new PcapWriter(file);
  for (const f of frames)
    w.frame(link, f.ep, { proto: 'udp', srcPort: 40000, dstPort: f.port, payload: f.payload });
  w.close();
  const out = execFileSync('tcpdump', ['-n', '-r', file, filter], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return out.split('\n').filter(Boolean).length;
}

const filter = buildCaptureFilter({
  addresses: ['10.0.0.1', 'fd00::1'],
  ports: [
    { proto: 'udp', port: 7000 },
    { proto: 'udp', port: 62201 },
  ],
  spaPorts: [{ proto: 'udp', port: 62201 }],
  vlan: true,
});

describe('capture filter: SPA precheck in the kernel', () => {
  it('passes fwknop-format SPA packets over IPv4 and IPv6', () => {
    const payload = Buffer.from(spaText, 'latin1');
    expect(
      matches(filter, [
        { ep: v4, port: 62201, payload },
        { ep: v6, port: 62201, payload },
      ]),
    ).toBe(2);
  });

  it('drops random junk, too-short and too-long payloads on the SPA port', () => {
    const junk = Array.from({ length: 200 }, (_, i) => ({
      ep: i % 2 ? v4 : v6,
      port: 62201,
      payload: Buffer.from(Array.from({ length: 200 }, () => Math.floor(Math.random() * 256))),
    }));
    const short = { ep: v4, port: 62201, payload: Buffer.from('A'.repeat(35)) };
    const long = { ep: v4, port: 62201, payload: Buffer.from('A'.repeat(1501)) };
    const edge = [
      { ep: v4, port: 62201, payload: Buffer.from('A'.repeat(36)) },
      { ep: v6, port: 62201, payload: Buffer.from('z'.repeat(1500)) },
    ];
    expect(matches(filter, [...junk, short, long])).toBeLessThanOrEqual(1); // ~1e-8 each by chance
    expect(matches(filter, edge)).toBe(2);
  });

  it('never prechecks a knock port, whatever its payload', () => {
    const junk = { ep: v4, port: 7000, payload: Buffer.from([0, 1, 2, 3]) };
    expect(matches(filter, [junk, { ...junk, ep: v6 }])).toBe(2);
  });
});

describe('engine.spaOnlyPorts', () => {
  const policy = (name: string, spec: Partial<KnockPolicySpec>): KnockPolicy => ({
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name },
    spec: { grant: { ports: ['22/tcp'], durationSeconds: 30 }, ...spec },
  });

  it('lists UDP ports only SPA policies listen on, not ports a knock sequence shares', () => {
    const engine = createEngine({
      policies: [
        policy('k', { knock: { sequence: ['7000/tcp', '62202/udp'] } }),
        policy('s1', { spa: { keySecretRef: { name: 'k' }, port: '62201' } }),
        policy('s2', { spa: { keySecretRef: { name: 'k' }, port: '62202/udp' } }),
        policy('s3', { spa: { keySecretRef: { name: 'k' }, port: '62203/tcp' } }),
      ],
      spaVerifierFor: () => ({ verify: () => ({ kind: 'refused', policy: 's', reason: 'x', message: 'x' }) }),
      clock: new FakeClock(),
    });
    expect(engine.spaOnlyPorts?.()).toEqual([{ proto: 'udp', port: 62201 }]);
    engine.dispose();
  });
});
