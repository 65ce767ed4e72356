// Junk flood: N random ~200-byte UDP payloads at the SPA port from random sources, sent as fast as
// tcpreplay goes, with 50 valid SPA packets spread through it (each from its own source) — knockgate
// vs fwknopd on identical traffic (regenerated per daemon only for fresh SPA timestamps and salts).

import type { DaemonKind } from '../lib/daemons.js';
import { floodDaemon, type FloodResult } from '../lib/flood.js';
import { newKeys, type Figure, type RunOptions, type Scenario, type ScenarioResult } from '../lib/setup.js';
import { fmt, markdownTable, median, summarize } from '../lib/stats.js';
import { realSources4, writeJunkFlood } from '../lib/traffic.js';
import { withTopology } from '../lib/topology.js';

type Payloads = 'random' | 'base64';
const VALID = 50;
const DAEMONS: DaemonKind[] = ['knockgate', 'fwknopd'];

interface Derived {
  pps: number;
  cpuPerSent: number;
  delivered: number;
  dropPct: number;
  opened: number;
  idleRssMb: number;
  maxRssMb: number;
}

function derive(r: FloodResult): Derived {
  const s = r.segments[0]!;
  const delivered = s.ring.packets - s.ring.drops;
  return {
    pps: s.sent.pps,
    cpuPerSent: s.cpuMicros / s.sent.packets,
    delivered,
    dropPct: s.ring.packets > 0 ? (100 * s.ring.drops) / s.ring.packets : NaN,
    opened: s.opened,
    idleRssMb: r.idleRssBytes / 2 ** 20,
    maxRssMb: r.maxRssBytes / 2 ** 20,
  };
}

const COLUMNS: { key: keyof Derived; name: string; unit: string; digits: number; target?: string }[] = [
  { key: 'pps', name: 'sender rate', unit: 'packets/s', digits: 0 },
  { key: 'cpuPerSent', name: 'daemon CPU per packet sent', unit: 'µs', digits: 2, target: '< 1 µs' },
  {
    key: 'delivered',
    name: 'packets reaching the daemon (kernel ring, after its BPF filter, not dropped)',
    unit: 'count',
    digits: 0,
  },
  { key: 'dropPct', name: 'pcap drops (kernel ring)', unit: '%', digits: 2, target: '< 1 %' },
  {
    key: 'opened',
    name: `valid SPA packets honoured (of ${VALID})`,
    unit: 'count',
    digits: 0,
    target: `${VALID} of ${VALID}`,
  },
  { key: 'idleRssMb', name: 'RSS idle', unit: 'MiB', digits: 1, target: '< 64 MiB' },
  { key: 'maxRssMb', name: 'RSS max during flood', unit: 'MiB', digits: 1 },
];

function junkScenario(NAME: string, payloads: Payloads, description: string): Scenario {
  return {
    name: NAME,
    description,
    async run(opts: RunOptions): Promise<ScenarioResult> {
      // Both floods are 1,000,000 packets: the base64 one is the native SPA gate's worst case
      // (every packet passes the kernel precheck and costs one HMAC per key, in the capture addon).
      const count = opts.quick ? (payloads === 'random' ? 100_000 : 20_000) : 1_000_000;
      console.error(`${NAME}: ${count} packets, ${VALID} valid, ${opts.floodRuns} run(s) per daemon`);
      const perDaemon = new Map<DaemonKind, Derived[]>(DAEMONS.map((d) => [d, []]));
      await withTopology(async (net) => {
        for (let run = 0; run < opts.floodRuns; run++) {
          for (const kind of DAEMONS) {
            const keys = newKeys();
            // Fresh valid sources per run: a repeated source would only extend a live grant.
            const sources = realSources4(VALID * (run + 1)).slice(VALID * run);
            const r = await floodDaemon(net, kind, {
              dir: opts.dir,
              ...(opts.bufferBytes === undefined ? {} : { bufferBytes: opts.bufferBytes }),
              keys,
              catchUpMs: 30_000,
              segments: [
                {
                  sources,
                  write: (file, wire) => writeJunkFlood(file, wire, count, { sources, keys }, payloads),
                },
              ],
            });
            perDaemon.get(kind)!.push(derive(r));
          }
        }
      });
      const figures: Figure[] = [];
      for (const [kind, runs] of perDaemon)
        for (const c of COLUMNS) {
          const values = runs.map((d) => d[c.key]);
          const s = summarize(values);
          figures.push({
            scenario: NAME,
            daemon: kind === 'knockgate' ? 'knockgate (nftables)' : 'fwknopd 2.6.10',
            name: c.name,
            unit: c.unit,
            median: median(values),
            p99: s.p99,
            runs: values.length,
            values,
            ...(kind === 'knockgate' && c.target ? { target: c.target } : {}),
          });
        }
      const cell = (kind: DaemonKind, key: keyof Derived, digits: number) =>
        fmt(median(perDaemon.get(kind)!.map((d) => d[key])), digits);
      const what =
        payloads === 'random'
          ? 'random 200-byte UDP payloads'
          : '200-character base64 UDP payloads (they pass every check before the HMAC)';
      const markdown = [
        `### Junk flood (${count.toLocaleString('en')} ${what} at the SPA port + ${VALID} valid SPA packets; tcpreplay --topspeed; median of ${opts.floodRuns} run(s))`,
        '',
        markdownTable(
          ['figure', 'knockgate', 'fwknopd', 'knockgate target'],
          COLUMNS.map((c) => [
            `${c.name} (${c.unit})`,
            cell('knockgate', c.key, c.digits),
            cell('fwknopd', c.key, c.digits),
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
}

export const junkFlood = junkScenario(
  'junk-flood',
  'random',
  'random UDP junk at the SPA port with valid SPA packets inside, knockgate vs fwknopd',
);

/** The worst case for the kernel-side precheck: junk that looks like SPA data costs an HMAC each. */
export const base64JunkFlood = junkScenario(
  'junk-flood-base64',
  'base64',
  'base64 UDP junk at the SPA port (passes the kernel precheck) with valid SPA packets inside',
);
