import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { buildCaptureFilter, CaptureFilterError } from '../sniffer/capture/filter.js';
import { parseIpv4Routes, parseIpv6Routes } from '../sniffer/capture/routes.js';
import { interfaceAddresses } from '../sniffer/capture/local-addresses.js';
import { captureDrops } from '../sniffer/capture/drops.js';

const ports = [
  { proto: 'tcp', port: 7000 },
  { proto: 'udp', port: 62201 },
] as const;

describe('capture filter', () => {
  it('lets through only packets to the node on the policy ports', () => {
    expect(buildCaptureFilter({ addresses: ['10.0.0.1', 'fd00::1'], ports: [...ports] })).toBe(
      '(dst host 10.0.0.1 or dst host fd00::1) and (tcp dst port 7000 or udp dst port 62201)',
    );
  });

  it('repeats the expression after `vlan` for Ethernet interfaces', () => {
    const f = buildCaptureFilter({ addresses: ['10.0.0.1'], ports: [...ports], vlan: true });
    expect(f).toBe(
      '((dst host 10.0.0.1) and (tcp dst port 7000 or udp dst port 62201)) or (vlan and (dst host 10.0.0.1) and (tcp dst port 7000 or udp dst port 62201))',
    );
  });

  it('compiles with libpcap (tcpdump -d) and matches what it must', () => {
    const f = buildCaptureFilter({
      addresses: ['10.0.0.1', 'fd00::1', 'fe80::1'],
      ports: [...ports],
      vlan: true,
    });
    // tcpdump -d compiles the filter for the loopback interface (Ethernet-framed on Linux) and prints BPF.
    const bpf = execFileSync('tcpdump', ['-d', '-i', 'lo', f], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(bpf).toMatch(/ret\s+#0/);
    expect(bpf).toContain('0x1b58'); // 7000
    expect(bpf).toContain('0xf2f9'); // 62201
  });

  it('refuses to build a filter that would let everything through or is malformed', () => {
    expect(() => buildCaptureFilter({ addresses: ['10.0.0.1'], ports: [] })).toThrow(CaptureFilterError);
    expect(() => buildCaptureFilter({ addresses: [], ports: [...ports] })).toThrow(/no local address/);
    expect(() => buildCaptureFilter({ addresses: ['10.0.0.1 or 1=1'], ports: [...ports] })).toThrow(
      /not an IP/,
    );
    expect(() => buildCaptureFilter({ addresses: ['10.0.0.1'], ports: [{ proto: 'tcp', port: 0 }] })).toThrow(
      /invalid port/,
    );
  });
});

describe('default route interfaces', () => {
  it('reads /proc/net/route: destination and mask zero, up, lowest metric', () => {
    const text = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0',
      'eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
      'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      'down0\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0',
    ].join('\n');
    expect(parseIpv4Routes(text)).toEqual(['eth0']);
    expect(parseIpv4Routes(text.split('\n').slice(0, 1).join('\n'))).toEqual([]);
  });

  it('reads /proc/net/ipv6_route, ignoring the unreachable default on lo', () => {
    const z = '0'.repeat(32);
    const text = [
      `fd00${'0'.repeat(28)} 40 ${z} 00 ${z} 00000100 00000001 00000000 00000001     eth0`,
      `${z} 00 ${z} 00 fd00${'0'.repeat(27)}1 00000400 00000002 00000000 00000003     eth1`,
      `${z} 00 ${z} 00 ${z} ffffffff 00000001 00000000 00200200       lo`,
    ].join('\n');
    expect(parseIpv6Routes(text)).toEqual(['eth1']);
    expect(parseIpv6Routes('')).toEqual([]);
  });

  it('lists the loopback addresses, and every address for `any`', () => {
    expect(interfaceAddresses(['lo'])).toContain('127.0.0.1');
    expect(interfaceAddresses(['no-such-if'])).toEqual([]);
    expect(interfaceAddresses(['any']).length).toBeGreaterThanOrEqual(interfaceAddresses(['lo']).length);
  });

  it('reports pcap_stats as drop counts, unavailable once the capture is closed', () => {
    expect(captureDrops('lo', { received: 10, dropped: 2, interfaceDropped: 1 })).toEqual({
      interface: 'lo',
      received: 10,
      dropped: 2,
      interfaceDropped: 1,
    });
    expect(captureDrops('lo', undefined)).toMatchObject({ received: undefined, dropped: undefined });
  });
});
