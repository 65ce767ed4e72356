// Memory: each daemon's RSS idle and after each scale point of the flood that fills its state —
// spoofed first knocks for knockgate and knockd (one tracked source each), junk at the SPA port for
// knockgate and fwknopd. Scale points are cumulative packet counts; RSS is read once the daemon has
// caught up with each segment.

import type { DaemonKind } from '../lib/daemons.js';
import { floodDaemon, type FloodResult } from '../lib/flood.js';
import {
  newKeys,
  oneRunFigure,
  type Figure,
  type RunOptions,
  type Scenario,
  type ScenarioResult,
} from '../lib/setup.js';
import { fmt, markdownTable } from '../lib/stats.js';
import { writeJunkFlood, writeKnockFlood } from '../lib/traffic.js';
import { withTopology } from '../lib/topology.js';

const NAME = 'memory';
/** "Idle": after 20 s without traffic (V8 returns the startup young generation by then; flood.ts). */
const IDLE_MS = 20_000;
const RUNS: { kind: DaemonKind; traffic: 'knocks' | 'junk'; label: string }[] = [
  { kind: 'knockgate', traffic: 'knocks', label: 'knockgate (nftables), spoofed first knocks' },
  { kind: 'knockd', traffic: 'knocks', label: 'knockd 0.8, spoofed first knocks' },
  { kind: 'knockgate', traffic: 'junk', label: 'knockgate (nftables), SPA-port junk' },
  { kind: 'fwknopd', traffic: 'junk', label: 'fwknopd 2.6.10, SPA-port junk' },
];

export const memory: Scenario = {
  name: NAME,
  description: 'RSS idle and at each flood scale point, knockgate vs knockd vs fwknopd',
  async run(opts: RunOptions): Promise<ScenarioResult> {
    const points = opts.quick ? [10_000, 50_000] : [10_000, 100_000, 1_000_000];
    console.error(`${NAME}: RSS at ${points.join(', ')} packets`);
    const results: { label: string; r: FloodResult }[] = [];
    await withTopology(async (net) => {
      // --quick leaves out knockgate under junk: its kernel filter keeps junk out, so its RSS is flat.
      for (const run of opts.quick
        ? RUNS.filter((r) => !(r.kind === 'knockgate' && r.traffic === 'junk'))
        : RUNS) {
        const keys = newKeys();
        const segments = points.map((p, i) => {
          const n = p - (points[i - 1] ?? 0);
          return {
            sources: [],
            write: (file: string, wire: Parameters<typeof writeJunkFlood>[1]) =>
              run.traffic === 'knocks'
                ? writeKnockFlood(file, wire, n, { v4: [], v6: [] })
                : writeJunkFlood(file, wire, n, { sources: [], keys }),
          };
        });
        const r = await floodDaemon(net, run.kind, {
          dir: opts.dir,
          keys,
          segments,
          ...(opts.bufferBytes === undefined ? {} : { bufferBytes: opts.bufferBytes }),
          catchUpMs: 30_000,
          idleMs: IDLE_MS,
        });
        results.push({ label: run.label, r });
      }
    });
    const mb = (b: number) => b / 2 ** 20;
    const figures: Figure[] = results.flatMap(({ label, r }) => {
      const rows: [string, number][] = [
        ['RSS 1.5 s after start', mb(r.startRssBytes)],
        ['RSS idle', mb(r.idleRssBytes)],
        ...points.map((p, i): [string, number] => [
          `RSS after ${p} packets`,
          mb(r.segments[i]!.rssAfterBytes),
        ]),
        ['RSS max', mb(r.maxRssBytes)],
      ];
      return rows.map(([name, v]) =>
        oneRunFigure(
          NAME,
          label,
          name,
          'MiB',
          v,
          !label.startsWith('knockgate')
            ? undefined
            : name === 'RSS idle'
              ? '< 64 MiB'
              : name === 'RSS after 1000000 packets'
                ? '< 128 MiB'
                : undefined,
        ),
      );
    });
    const markdown = [
      `### Memory (RSS in MiB, VmRSS; one run; the flood sent with tcpreplay --topspeed in segments up to each point)`,
      '',
      markdownTable(
        [
          'daemon, traffic',
          '1.5 s after start',
          'idle (20 s)',
          ...points.map((p) => `after ${p.toLocaleString('en')}`),
          'max',
        ],
        results.map(({ label, r }) => [
          label,
          fmt(mb(r.startRssBytes)),
          fmt(mb(r.idleRssBytes)),
          ...r.segments.map((s) => fmt(mb(s.rssAfterBytes))),
          fmt(mb(r.maxRssBytes)),
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
