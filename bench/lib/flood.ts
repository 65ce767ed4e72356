// One flood against one daemon, measured from outside it: the daemon is started in the server
// namespace, left idle, then the pcap is replayed from the client namespace at top speed; the
// daemon is given time to catch up (until it uses no CPU, bounded); then its CPU time (/proc), its
// packet socket's kernel counters (delivered, dropped for a full ring), its RSS (sampled throughout)
// and which real sources it opened for are read.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Topology } from '../../test/helpers/netns.js';
import { startDaemon, type Daemon, type DaemonKind } from './daemons.js';
import { cpuMicros, packetSocketStats, rssBytes, RssSampler, untilIdle } from './proc.js';
import { macOf, replay, type ReplayResult } from './replay.js';
import type { SpaKeys } from './setup.js';
import type { Wire } from './traffic.js';

export interface FloodSegment {
  /** Writes the segment's pcap to `file` (called right before it is sent: SPA timestamps stay fresh). */
  write(file: string, wire: Wire): void;
  /** Real sources the segment carries (valid SPA packets, complete knock sequences). */
  sources: string[];
}

export interface SegmentResult {
  sent: ReplayResult;
  /** Daemon CPU, user + system, from before the segment was sent until it caught up. */
  cpuMicros: number;
  /** Kernel counters of the daemon's packet socket(s) over the segment. */
  ring: { packets: number; drops: number };
  /** knockgate only: packets its engine refused or turned into grants (metrics). */
  examined?: number;
  rssAfterBytes: number;
  opened: number;
}

export interface FloodResult {
  daemon: Daemon['label'];
  kind: DaemonKind;
  /** RSS 1.5 s after the daemon said it started. */
  startRssBytes: number;
  /** RSS after `idleMs` without traffic (= startRssBytes when not asked to wait longer). */
  idleRssBytes: number;
  maxRssBytes: number;
  segments: SegmentResult[];
}

const SETTLE_MS = 1500;

/**
 * KG_BENCH_OFFLOAD=off: turn TSO, GSO and GRO off on the server's veth before the daemon starts
 * (every daemon of the run alike). libpcap sizes its ring slots by the snap length (64 KiB for cap,
 * so a 4 MiB buffer holds 64 packets) unless the interface has no offloads, when a slot holds one
 * MTU-sized frame: the same buffer then holds ~2,600 packets. It shows what a deeper ring does for
 * floods; by default the veth keeps its offloads, as most NICs do. (No ethtool binary is needed:
 * the SIOCETHTOOL set commands, from python3, which the ring counters need anyway.)
 */
const OFFLOAD_OFF = process.env.KG_BENCH_OFFLOAD === 'off';
const OFFLOAD_OFF_PY = `
import array, fcntl, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for cmd in (0x1f, 0x24, 0x2c):  # ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO
    v = array.array('I', [cmd, 0])
    fcntl.ioctl(s.fileno(), 0x8946, struct.pack('16sP', sys.argv[1].encode(), v.buffer_info()[0]))
`;

export async function floodDaemon(
  net: Topology,
  kind: DaemonKind,
  opts: {
    dir: string;
    keys: SpaKeys;
    segments: FloodSegment[];
    catchUpMs: number;
    bufferBytes?: number;
    /**
     * How long the daemon sits without traffic before "idle" RSS is read. V8 keeps the young
     * generation it grew while loading the program until its memory reducer runs, ~10-15 s after
     * the last allocation burst: idle is what the process holds after that.
     */
    idleMs?: number;
  },
): Promise<FloodResult> {
  const srv = net.ns('srv');
  const cli = net.ns('cli');
  const wire: Wire = {
    srcMac: await macOf(cli, cli.ifname['srv']!),
    dstMac: await macOf(srv, srv.ifname['cli']!),
    dst4: srv.addr4['cli']!,
    dst6: srv.addr6['cli']!,
  };
  if (OFFLOAD_OFF) await srv.run('python3', ['-c', OFFLOAD_OFF_PY, srv.ifname['cli']!]);
  const daemon = await startDaemon(kind, srv, opts.dir, opts.keys, opts.bufferBytes);
  try {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const startRssBytes = rssBytes(daemon.pid);
    const idleMs = opts.idleMs ?? SETTLE_MS;
    if (idleMs > SETTLE_MS) await new Promise((r) => setTimeout(r, idleMs - SETTLE_MS));
    const idleRssBytes = rssBytes(daemon.pid);
    const sampler = new RssSampler(daemon.pid);
    const segments: SegmentResult[] = [];
    try {
      const allSources: string[] = [];
      for (const seg of opts.segments) {
        const file = join(opts.dir, `flood-${kind}.pcap`);
        seg.write(file, wire);
        allSources.push(...seg.sources);
        await packetSocketStats(daemon.pid); // reset: the kernel clears them on each read
        const examined0 = await daemon.examined?.();
        const cpu0 = cpuMicros(daemon.pid);
        const sent = await replay(cli, cli.ifname['srv']!, file);
        rmSync(file, { force: true });
        await untilIdle(daemon.pid, { quietMs: 700, timeoutMs: opts.catchUpMs });
        const cpu1 = cpuMicros(daemon.pid);
        const ring = await packetSocketStats(daemon.pid);
        const examined1 = await daemon.examined?.();
        const opened = (await daemon.opened(seg.sources)).size;
        segments.push({
          sent,
          cpuMicros: cpu1 - cpu0,
          ring: { packets: ring.packets, drops: ring.drops },
          ...(examined0 !== undefined && examined1 !== undefined ? { examined: examined1 - examined0 } : {}),
          rssAfterBytes: sampler.sample(),
          opened,
        });
        console.error(
          `  ${daemon.label}: ${sent.packets} packets at ${Math.round(sent.pps)}/s, ring ${ring.packets} (${ring.drops} dropped), opened ${opened}/${seg.sources.length}, CPU ${((cpu1 - cpu0) / sent.packets).toFixed(2)} µs/packet`,
        );
      }
    } finally {
      sampler.stop();
    }
    return { daemon: daemon.label, kind, startRssBytes, idleRssBytes, maxRssBytes: sampler.max, segments };
  } finally {
    await daemon.stop();
  }
}
