// Sending a generated pcap onto the client's veth with tcpreplay at top speed (measured faster here
// than a node dgram loop: no syscall per packet from JavaScript, and spoofed sources need raw frames
// anyway).

import type { Host } from '../../test/helpers/netns.js';

export interface ReplayResult {
  packets: number;
  seconds: number;
  pps: number;
}

export async function replay(cli: Host, iface: string, file: string): Promise<ReplayResult> {
  const { stdout } = await cli.run('tcpreplay', ['--topspeed', '--preload-pcap', '-i', iface, file], {
    timeoutMs: 300_000,
  });
  const sent = /Actual: (\d+) packets .* sent in ([\d.]+) seconds/.exec(stdout);
  const rated = /Rated: .*?([\d.]+) pps/.exec(stdout);
  if (!sent) throw new Error(`tcpreplay: cannot read its summary: ${stdout.slice(0, 500)}`);
  const packets = Number(sent[1]);
  const seconds = Number(sent[2]);
  return { packets, seconds, pps: rated ? Number(rated[1]) : packets / seconds };
}

export async function macOf(host: Host, iface: string): Promise<string> {
  const { stdout } = await host.run('cat', [`/sys/class/net/${iface}/address`]);
  return stdout.trim();
}
