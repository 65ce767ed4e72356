// Knock flood: N spoofed first knocks (TCP SYNs at the first knock port from random sources in
// 10.0.0.0/8 and fd00::/8, raw frames replayed onto the client's veth; no default route, so nothing
// answers outward) with complete sequences from real sources mixed in (40 IPv4, 10 IPv6): how many
// real sequences complete, and the daemon's RSS (sampled) — knockgate vs knockd.

import type { DaemonKind } from '../lib/daemons.js';
import { DAEMON_LABEL } from '../lib/daemons.js';
import { floodDaemon, type FloodResult } from '../lib/flood.js';
import { newKeys, type Figure, type RunOptions, type Scenario, type ScenarioResult } from '../lib/setup.js';
import { fmt, markdownTable, median, summarize } from '../lib/stats.js';
import { realSources4, realSources6, writeKnockFlood } from '../lib/traffic.js';
import { withTopology } from '../lib/topology.js';

const NAME = 'knock-flood';
const REAL4 = 40;
const REAL6 = 10;
const DAEMONS: DaemonKind[] = ['knockgate', 'knockd'];

interface Derived {
  pps: number;
  /** Packets the daemon read from its ring (handed to the socket, not dropped) per second of flood. */
  readPps: number;
  completed: number;
  cpuPerSent: number;
  cpuPerRead: number;
  dropPct: number;
  idleRssMb: number;
  maxRssMb: number;
}

export const knockFlood: Scenario = {
  name: NAME,
  description: 'spoofed first knocks with real sequences inside, knockgate vs knockd',
  async run(opts: RunOptions): Promise<ScenarioResult> {
    const count = opts.quick ? 100_000 : 1_000_000;
    console.error(
      `${NAME}: ${count} packets, ${REAL4 + REAL6} real sequences, ${opts.floodRuns} run(s) per daemon`,
    );
    const perDaemon = new Map<DaemonKind, Derived[]>(DAEMONS.map((d) => [d, []]));
    await withTopology(async (net) => {
      for (let run = 0; run < opts.floodRuns; run++) {
        for (const kind of DAEMONS) {
          const v4 = realSources4(REAL4 * (run + 1)).slice(REAL4 * run);
          const v6 = realSources6(REAL6 * (run + 1)).slice(REAL6 * run);
          const r: FloodResult = await floodDaemon(net, kind, {
            dir: opts.dir,
            ...(opts.bufferBytes === undefined ? {} : { bufferBytes: opts.bufferBytes }),
            keys: newKeys(),
            catchUpMs: 30_000,
            segments: [
              {
                sources: [...v4, ...v6],
                write: (file, wire) => writeKnockFlood(file, wire, count, { v4, v6 }),
              },
            ],
          });
          const d = r.segments[0]!;
          const read = d.ring.packets - d.ring.drops;
          perDaemon.get(kind)!.push({
            pps: d.sent.pps,
            readPps: d.ring.packets > 0 ? read / d.sent.seconds : NaN,
            completed: d.opened,
            cpuPerSent: d.cpuMicros / d.sent.packets,
            cpuPerRead: read > 0 ? d.cpuMicros / read : NaN,
            dropPct: d.ring.packets > 0 ? (100 * d.ring.drops) / d.ring.packets : NaN,
            idleRssMb: r.idleRssBytes / 2 ** 20,
            maxRssMb: r.maxRssBytes / 2 ** 20,
          });
        }
      }
    });
    const columns: { key: keyof Derived; name: string; unit: string; digits: number; target?: string }[] = [
      { key: 'pps', name: 'sender rate', unit: 'packets/s', digits: 0 },
      {
        key: 'readPps',
        name: 'packets the daemon read from its ring per second of flood (the sniffer rate)',
        unit: 'packets/s',
        digits: 0,
      },
      {
        key: 'completed',
        name: `real sequences completed (of ${REAL4 + REAL6}: ${REAL4} IPv4, ${REAL6} IPv6)`,
        unit: 'count',
        digits: 0,
        target: `${REAL4 + REAL6} of ${REAL4 + REAL6}`,
      },
      { key: 'cpuPerSent', name: 'daemon CPU per packet sent', unit: 'µs', digits: 2 },
      { key: 'cpuPerRead', name: 'daemon CPU per packet read', unit: 'µs', digits: 2 },
      { key: 'dropPct', name: 'pcap drops (kernel ring)', unit: '%', digits: 2 },
      { key: 'idleRssMb', name: 'RSS idle', unit: 'MiB', digits: 1, target: '< 64 MiB' },
      {
        key: 'maxRssMb',
        name: 'RSS max during and after the flood',
        unit: 'MiB',
        digits: 1,
        target: count >= 1_000_000 ? '< 128 MiB' : '',
      },
    ];
    const figures: Figure[] = [];
    for (const [kind, runs] of perDaemon)
      for (const c of columns) {
        const values = runs.map((d) => d[c.key]);
        figures.push({
          scenario: NAME,
          daemon: DAEMON_LABEL[kind],
          name: c.name,
          unit: c.unit,
          median: median(values),
          p99: summarize(values).p99,
          runs: values.length,
          values,
          ...(kind === 'knockgate' && c.target ? { target: c.target } : {}),
        });
      }
    const cell = (kind: DaemonKind, key: keyof Derived, digits: number) =>
      fmt(median(perDaemon.get(kind)!.map((d) => d[key])), digits);
    const markdown = [
      `### Knock flood (${count.toLocaleString('en')} spoofed first knocks from 10.0.0.0/8 and fd00::/8 + ${REAL4 + REAL6} real sequences; tcpreplay --topspeed; median of ${opts.floodRuns} run(s))`,
      '',
      markdownTable(
        ['figure', 'knockgate', 'knockd', 'knockgate target'],
        columns.map((c) => [
          `${c.name} (${c.unit})`,
          cell('knockgate', c.key, c.digits),
          cell('knockd', c.key, c.digits),
          c.target ?? '',
        ]),
      ),
    ].join('\n');
    return {
      name: NAME,
      command: `npm run bench -- --only ${NAME}${opts.quick ? ' --quick' : ''}`,
      markdown,
      figures,
    };
  },
};
