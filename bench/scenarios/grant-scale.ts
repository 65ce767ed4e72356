// Grant scale: the time to apply, sync and then expire N grants per firewall backend, through the
// firewall module itself run inside the server namespace as the daemon runs it (../lib/
// firewall-driver.ts, started with `ip netns exec`: nftables goes through libnftables in-process;
// nftables and ipset: concurrent per-grant add/remove, batched into one change; iptables: one
// atomic sync, its rule list being linear; then the whole state synced again), and the
// per-packet cost the kernel pays for them: the rate of a TCP connect storm from a granted client to
// the protected port with only the client's grant loaded, then with N more grants loaded.

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { FirewallBackend } from '../../api/standalone.js';
import type { Host, Topology } from '../../test/helpers/netns.js';
import {
  PROTECTED_PORT,
  ROOT,
  type Figure,
  type RunOptions,
  type Scenario,
  type ScenarioResult,
} from '../lib/setup.js';
import { fmt, markdownTable } from '../lib/stats.js';
import { withTopology } from '../lib/topology.js';

const BACKENDS: FirewallBackend[] = ['nftables', 'ipset', 'iptables'];
const NAME = 'grant-scale';
const DRIVER = join(ROOT, 'dist', 'bench', 'lib', 'firewall-driver.js');

interface Row {
  backend: FirewallBackend;
  grants: number;
  applyMs: number;
  /** The same N applied again after they expired (the code warm). */
  applyWarmMs: number;
  /** The whole state (the N grants and the client's) applied again while loaded. */
  syncMs: number;
  expireMs: number;
  /** Connects per second with only the client's grant, and with `grants` more loaded. */
  rate0: number;
  rateN: number;
  how: string;
}

const STORM_MS = 2000;
const STORM_CONCURRENCY = 32;

/**
 * Successful connects per second from the client to the protected port: STORM_CONCURRENCY loops of
 * connect → reset (no TIME_WAIT left behind) for STORM_MS.
 */
async function connectRate(cli: Host, target: string): Promise<number> {
  const script = `
const net = require('net');
const end = Date.now() + ${STORM_MS};
let ok = 0;
function loop() {
  if (Date.now() >= end) return;
  let settled = false;
  const s = net.connect({ host: '${target}', port: ${PROTECTED_PORT} });
  const next = (good) => { if (settled) return; settled = true; if (good) ok++; s.resetAndDestroy(); setImmediate(loop); };
  s.setTimeout(1000, () => next(false));
  s.once('connect', () => next(true));
  s.once('error', () => next(false));
}
for (let i = 0; i < ${STORM_CONCURRENCY}; i++) loop();
setTimeout(() => process.stdout.write(String(ok * 1000 / ${STORM_MS})), ${STORM_MS} + 1100);
`;
  const { stdout } = await cli.run('node', ['-e', script], { timeoutMs: 30_000 });
  return Number(stdout);
}

/** The firewall driver (../lib/firewall-driver.ts) in the server namespace: one request, one answer. */
function startDriver(srv: Host): { ask: (r: object) => Promise<{ ms?: number }>; child: ChildProcess } {
  const child = srv.spawn('node', [DRIVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const ask = async (r: object) => {
    child.stdin!.write(JSON.stringify(r) + '\n');
    const next = await answers.next();
    if (next.done) throw new Error('grant-scale: the firewall driver exited');
    const a = JSON.parse(next.value) as { ms?: number; error?: string };
    if (a.error !== undefined) throw new Error(`grant-scale: ${a.error}`);
    return a;
  };
  return { ask, child };
}

async function measure(net: Topology, count: number): Promise<Row[]> {
  const srv = net.ns('srv');
  const cli = net.ns('cli');
  const target = srv.addr4['cli']!;
  const rows: Row[] = [];
  for (const backend of BACKENDS) {
    const { ask, child } = startDriver(srv);
    try {
      await ask({ op: 'install', backend, count, port: PROTECTED_PORT, client: cli.addr4['srv']! });
      await ask({ op: 'client' });
      const rate0Before = await connectRate(cli, target);
      const applyMs = (await ask({ op: 'apply' })).ms!;
      // The client's grant is matched after (nftables/ipset: among) the N others.
      const rateN = await connectRate(cli, target);
      const syncMs = (await ask({ op: 'sync' })).ms!;
      const expireMs = (await ask({ op: 'expire' })).ms!;
      // The first burst of a process runs cold JavaScript (interpreter, young heap): the same burst
      // again is what a daemon that has handled grants before pays.
      const applyWarmMs = (await ask({ op: 'apply' })).ms!;
      await ask({ op: 'expire' });
      // The load of a shared machine drifts: the rate without the N grants is the mean of one
      // storm before they were loaded and one after they expired.
      const rate0 = (rate0Before + (await connectRate(cli, target))) / 2;
      const perGrant = backend !== 'iptables';
      rows.push({
        backend,
        grants: count,
        applyMs,
        applyWarmMs,
        syncMs,
        expireMs,
        rate0,
        rateN,
        how: perGrant
          ? backend === 'nftables'
            ? 'concurrent add/remove per grant (batched: one libnftables transaction)'
            : 'concurrent add/remove per grant (long-lived session, batched)'
          : 'one atomic iptables-restore',
      });
      console.error(
        `  ${backend}: ${count} grants applied in ${fmt(applyMs, 0)} ms (again ${fmt(applyWarmMs, 0)} ms), synced in ${fmt(syncMs, 0)} ms; connects/s ${fmt(rate0, 0)} → ${fmt(rateN, 0)}`,
      );
    } finally {
      await ask({ op: 'end' }).catch(() => undefined);
      child.stdin!.end();
      if (child.exitCode === null) await once(child, 'exit');
    }
  }
  return rows;
}

export const grantScale: Scenario = {
  name: NAME,
  description: 'apply and expire N grants per firewall backend',
  async run(opts: RunOptions): Promise<ScenarioResult> {
    const counts = opts.quick ? [1000] : [1000, 10_000];
    console.error(`${NAME}: ${counts.join(' and ')} grants per backend`);
    const rows = await withTopology(async (net) => {
      const all: Row[] = [];
      net
        .ns('srv')
        .spawn('node', [
          '-e',
          `require('net').createServer((s) => { s.on('error', () => {}); s.end(); }).listen(${PROTECTED_PORT}, '0.0.0.0', 4096)`,
        ]);
      for (const n of counts) all.push(...(await measure(net, n)));
      return all;
    });
    const figures: Figure[] = rows.flatMap((r) =>
      (['apply', 'apply-warm', 'sync', 'expire', 'rate'] as const).map((what) => {
        const v =
          what === 'apply'
            ? r.applyMs
            : what === 'apply-warm'
              ? r.applyWarmMs
              : what === 'sync'
                ? r.syncMs
                : what === 'expire'
                  ? r.expireMs
                  : (100 * r.rateN) / r.rate0;
        return {
          scenario: NAME,
          daemon: `knockgate (${r.backend})`,
          name:
            what === 'rate'
              ? `connect rate with ${r.grants} grants loaded, % of the rate with none`
              : what === 'apply-warm'
                ? `apply ${r.grants} grants again (warm)`
                : what === 'sync'
                  ? `sync ${r.grants + 1} grants (whole state)`
                  : `${what} ${r.grants} grants`,
          unit: what === 'rate' ? '%' : 'ms',
          median: v,
          p99: v,
          runs: 1,
          values: [v],
          ...(r.grants === 10_000 && r.backend !== 'iptables'
            ? {
                target:
                  what === 'rate'
                    ? '≥ 90 %'
                    : what === 'expire' || what === 'apply-warm'
                      ? ''
                      : r.backend === 'nftables'
                        ? '< 250 ms'
                        : what === 'apply'
                          ? '< 1000 ms'
                          : '',
              }
            : {}),
        };
      }),
    );
    return {
      name: NAME,
      command: `npm run bench -- --only ${NAME}${opts.quick ? ' --quick' : ''}`,
      markdown: [
        `### Grant scale (one run per point; connect storm: ${STORM_CONCURRENCY} concurrent connect→reset loops for ${STORM_MS / 1000} s from a granted client)`,
        '',
        markdownTable(
          [
            'backend',
            'grants',
            'apply all (ms)',
            'again, warm (ms)',
            'sync all (ms)',
            'expire all (ms)',
            'connects/s, client grant only',
            `connects/s, with N grants`,
            'ratio',
            'how',
          ],
          rows.map((s) => [
            s.backend,
            String(s.grants),
            fmt(s.applyMs, 0),
            fmt(s.applyWarmMs, 0),
            fmt(s.syncMs, 0),
            fmt(s.expireMs, 0),
            fmt(s.rate0, 0),
            fmt(s.rateN, 0),
            `${fmt((100 * s.rateN) / s.rate0, 0)} %`,
            s.how,
          ]),
        ),
      ].join('\n'),
      figures,
    };
  },
};
