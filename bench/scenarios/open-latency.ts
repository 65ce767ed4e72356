// Open latency: last knock or SPA packet sent → the protected port's first SYN-ACK (bench/syn-probe.c),
// for knockgate standalone with each firewall backend, knockd (knocks) and fwknopd (SPA), in one
// topology: a server and a client namespace joined by a veth pair. Each trial uses its own client
// source address (bench/probe.ts), so every trial starts from a closed port.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FirewallBackend } from '../../api/standalone.js';
import { Topology, type Host } from '../../test/helpers/netns.js';
import type { ProbeArgs } from '../probe.js';
import { realClientStages, stageFigures, stageTable, type StageSet } from '../lib/grant-stages.js';
import { startKnockgate, stopKnockgate } from '../lib/knockgate.js';
import { dropProtectedPort, flushIptables, startFwknopd, startKnockd, stopPeer } from '../lib/peers.js';
import {
  KNOCK_PORTS,
  PROBE,
  PROTECTED_PORT,
  SPA_PORT,
  newKeys,
  type Figure,
  type RunOptions,
  type Scenario,
  type ScenarioResult,
} from '../lib/setup.js';
import { fmt, markdownTable, summarize, type Summary } from '../lib/stats.js';
import { withTopology } from '../lib/topology.js';

const BACKENDS: FirewallBackend[] = ['nftables', 'ipset', 'iptables'];
const NAME = 'open-latency';

interface Row {
  daemon: string;
  trigger: 'knock' | 'spa';
  latenciesMs: number[];
  summary: Summary;
}

export async function probe(
  cli: Host,
  probeArgs: ProbeArgs,
): Promise<{ latenciesMs: number[]; failures: number }> {
  const { stdout } = await cli.run('node', [PROBE, JSON.stringify(probeArgs)], { timeoutMs: 600_000 });
  return JSON.parse(stdout) as { latenciesMs: number[]; failures: number };
}

/** Trials sent by the real `knock` and `fwknop` clients for the stage breakdown (nftables). */
const REAL_CLIENT_TRIALS = { full: 50, quick: 10 };

async function measure(net: Topology, opts: RunOptions): Promise<{ rows: Row[]; stages: StageSet[] }> {
  const { dir } = opts;
  const srv = net.ns('srv');
  const cli = net.ns('cli');
  const target = srv.addr4['cli']!;
  // Knock and SPA trials each get their own client addresses (a grant from one trigger must not
  // make the other's trial start open): 10.T.2.x and 10.T.3.x, on-link on both ends.
  const tag = target.split('.').slice(0, 2).join('.');
  const sourcesFor = (net3: number) =>
    Array.from({ length: opts.trials }, (_, i) => `${tag}.${net3}.${10 + i}`);
  const knockSources = sourcesFor(2);
  const spaSources = sourcesFor(3);
  const batch = join(dir, 'addresses.batch');
  writeFileSync(
    batch,
    [...knockSources, ...spaSources].map((s) => `addr add ${s}/24 dev ${cli.ifname['srv']}\n`).join(''),
  );
  await cli.run('ip', ['-batch', batch]);
  for (const net3 of [2, 3])
    await srv.run('ip', ['addr', 'add', `${tag}.${net3}.1/24`, 'dev', srv.ifname['cli']!]);
  srv.spawn('node', [
    '-e',
    `require('net').createServer((s) => { s.on('error', () => {}); s.end('ok\\n'); }).listen(${PROTECTED_PORT}, '0.0.0.0')`,
  ]);
  const keys = newKeys();
  const base = { target, protectedPort: PROTECTED_PORT, timeoutMs: 5000 };
  const knockProbe: ProbeArgs = { ...base, sources: knockSources, mode: 'knock', knockPorts: KNOCK_PORTS };
  const spaProbe: ProbeArgs = { ...base, sources: spaSources, mode: 'spa', spa: { port: SPA_PORT, ...keys } };
  const iface = srv.ifname['cli']!;
  const rows: Row[] = [];
  const stages: StageSet[] = [];
  const record = (
    daemon: string,
    trigger: 'knock' | 'spa',
    r: { latenciesMs: number[]; failures: number },
  ) => {
    rows.push({ daemon, trigger, latenciesMs: r.latenciesMs, summary: summarize(r.latenciesMs, r.failures) });
    console.error(`  ${daemon} ${trigger}: ${r.latenciesMs.length} trials, ${r.failures} failed`);
  };

  for (const backend of BACKENDS) {
    // The default backend runs at debug level: its grant-timing lines give the stage breakdown.
    const staged = backend === 'nftables';
    const kg = await startKnockgate(srv, dir, iface, backend, keys, opts.bufferBytes, {
      logLevel: staged ? 'debug' : 'info',
    });
    try {
      record(`knockgate (${backend})`, 'knock', await probe(cli, knockProbe));
      const afterKnock = kg.timings.length;
      record(`knockgate (${backend})`, 'spa', await probe(cli, spaProbe));
      if (staged) {
        stages.push({ label: 'knock (probe)', timings: kg.timings.slice(0, afterKnock) });
        stages.push({ label: 'SPA (probe)', timings: kg.timings.slice(afterKnock) });
        const real = await realClientStages({
          srv,
          cli,
          kg,
          target,
          keys,
          dir,
          trials: opts.quick ? REAL_CLIENT_TRIALS.quick : REAL_CLIENT_TRIALS.full,
        });
        stages.push(real.knock, real.spa);
      }
    } finally {
      await stopKnockgate(srv, kg);
    }
  }

  await dropProtectedPort(srv, PROTECTED_PORT);
  const knockd = await startKnockd(srv, dir, iface, KNOCK_PORTS, PROTECTED_PORT);
  try {
    record('knockd 0.8', 'knock', await probe(cli, knockProbe));
  } finally {
    await stopPeer(knockd);
    await flushIptables(srv);
  }

  await dropProtectedPort(srv, PROTECTED_PORT);
  const fwknopd = await startFwknopd(srv, dir, iface, SPA_PORT, PROTECTED_PORT, keys);
  try {
    record('fwknopd 2.6.10', 'spa', await probe(cli, spaProbe));
  } finally {
    await stopPeer(fwknopd);
    await flushIptables(srv);
  }
  return { rows, stages };
}

function table(rows: Row[]): string {
  const peerOf = (r: Row) => rows.find((p) => p.trigger === r.trigger && !p.daemon.startsWith('knockgate'));
  return markdownTable(
    [
      'daemon',
      'trigger',
      'trials',
      'failed',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'peer p50 / this p50',
      'peer p99 / this p99',
    ],
    rows.map((r) => {
      const peer = peerOf(r);
      const own = r.daemon.startsWith('knockgate');
      return [
        r.daemon,
        r.trigger,
        String(r.summary.runs + r.summary.failures),
        String(r.summary.failures),
        fmt(r.summary.p50),
        fmt(r.summary.p90),
        fmt(r.summary.p99),
        fmt(r.summary.max),
        own && peer ? `${fmt(peer.summary.p50 / r.summary.p50)}×` : '',
        own && peer ? `${fmt(peer.summary.p99 / r.summary.p99)}×` : '',
      ];
    }),
  );
}

export const openLatency: Scenario = {
  name: NAME,
  description: 'last knock / SPA packet sent → first SYN-ACK of the protected port, per daemon and backend',
  async run(opts: RunOptions): Promise<ScenarioResult> {
    console.error(`${NAME}: ${opts.trials} trials per daemon and trigger`);
    const { rows, stages } = await withTopology((net) => measure(net, opts));
    const figures: Figure[] = rows.map((r) => ({
      scenario: NAME,
      daemon: r.daemon,
      name: `open latency (${r.trigger})`,
      unit: 'ms',
      median: r.summary.p50,
      p99: r.summary.p99,
      runs: r.summary.runs,
      values: r.latenciesMs,
      ...(r.daemon === 'knockgate (nftables)'
        ? { target: 'p99 < 2 ms' }
        : r.daemon.startsWith('knockgate')
          ? { target: 'p99 < 5 ms' }
          : {}),
      failures: r.summary.failures,
    }));
    for (const set of stages)
      for (const [stage, s] of Object.entries(stageFigures(set)))
        figures.push({
          scenario: NAME,
          daemon: 'knockgate (nftables)',
          name: `grant stage ${stage} (${set.label})`,
          unit: 'ms',
          median: s.p50,
          p99: s.p99,
          runs: s.n,
          values: [],
        });
    return {
      name: NAME,
      command: `npm run bench -- --only ${NAME}${opts.quick ? ' --quick' : ''}`,
      markdown: [
        `### Open latency (last knock / SPA packet sent → first SYN-ACK of the protected port; ${opts.trials} trials, each from its own source; raw SYNs every 0.1 ms (bench/syn-probe.c))`,
        '',
        table(rows),
        '',
        `#### Where an nftables grant's time goes (the daemon's grant-timing debug lines: decision → each stage; kernelAtMs = decision → the firewall took the element; probe trials above plus trials sent by the real knock and fwknop --no-rc-file clients)`,
        '',
        stageTable(stages),
      ].join('\n'),
      figures,
      samples: Object.fromEntries(rows.map((r) => [`${r.daemon} ${r.trigger}`, r.latenciesMs])),
    };
  },
};
