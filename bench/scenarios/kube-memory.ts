// Idle RSS of every knockgate role, measured as the memory scenario measures standalone's: VmRSS
// after 20 s without traffic, and again at 60 s. The Kubernetes roles — `knockgate sniffer`
// (capturing on the veth), `knockgate agent` (nftables) and `knockgate controller` — run together
// against the API emulator with the bench's policies (they hold their watches open and idle), then
// knockgate standalone, knockd and fwknopd one after the other in the same topology, so every idle
// figure of one run sits side by side.

import { startDaemon, type DaemonKind } from '../lib/daemons.js';
import {
  cleanupFirewall,
  startCluster,
  startKubeAgent,
  startKubeController,
  startKubeSniffer,
  type KubeProcess,
} from '../lib/kube.js';
import { stopPeer } from '../lib/peers.js';
import { rssBytes } from '../lib/proc.js';
import {
  newKeys,
  oneRunFigure,
  type Figure,
  type RunOptions,
  type Scenario,
  type ScenarioResult,
} from '../lib/setup.js';
import { fmt, markdownTable } from '../lib/stats.js';
import { withTopology } from '../lib/topology.js';

const NAME = 'kube-memory';
/** The memory scenario's idle wait. */
const IDLE_MS = 20_000;
/**
 * A second reading: 20 s falls in the middle of V8's memory reducer (it gives the startup heap
 * back in steps, some 10-40 s after the last allocation burst), where the same program reads up to
 * ~30 MiB apart from run to run. By 60 s it has settled.
 */
const SETTLED_MS = 60_000;
const TARGET = '< 64 MiB';

interface Row {
  label: string;
  idleMiB: number;
  settledMiB: number;
  target?: string;
}

const mib = (b: number) => b / 2 ** 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS of each process IDLE_MS and SETTLED_MS from now. */
async function readings(pids: number[]): Promise<{ idle: number; settled: number }[]> {
  await sleep(IDLE_MS);
  const idle = pids.map((pid) => mib(rssBytes(pid)));
  await sleep(SETTLED_MS - IDLE_MS);
  return pids.map((pid, i) => ({ idle: idle[i]!, settled: mib(rssBytes(pid)) }));
}

export const kubeMemory: Scenario = {
  name: NAME,
  description: 'idle RSS of sniffer, agent and controller (API emulator), standalone, knockd, fwknopd',
  async run(opts: RunOptions): Promise<ScenarioResult> {
    console.error(
      `${NAME}: RSS of each role ${IDLE_MS / 1000} s and ${SETTLED_MS / 1000} s after it started`,
    );
    const rows: Row[] = [];
    await withTopology(async (net) => {
      const srv = net.ns('srv');
      const keys = newKeys();
      const cluster = await startCluster(srv, opts.dir, keys);
      const roles: { label: string; proc: KubeProcess; target?: string }[] = [];
      try {
        roles.push({
          label: 'knockgate sniffer (API emulator)',
          proc: await startKubeSniffer(srv, cluster, srv.ifname['cli']!),
          target: TARGET,
        });
        roles.push({
          label: 'knockgate agent (nftables, API emulator)',
          proc: await startKubeAgent(srv, cluster, opts.dir, 'nftables'),
        });
        roles.push({
          label: 'knockgate controller (API emulator)',
          proc: await startKubeController(srv, cluster),
        });
        const measured = [
          ...roles,
          { label: 'kube-apiserver emulator (for reference)', proc: cluster.emulator },
        ];
        const read = await readings(measured.map((m) => m.proc.process.pid!));
        measured.forEach((m, i) =>
          rows.push({
            label: m.label,
            idleMiB: read[i]!.idle,
            settledMiB: read[i]!.settled,
            ...('target' in m && m.target ? { target: m.target } : {}),
          }),
        );
      } finally {
        for (const r of roles) await stopPeer(r.proc);
        await cleanupFirewall(srv, 'nftables');
        await cluster.stop();
      }
      for (const kind of ['knockgate', 'knockd', 'fwknopd'] as DaemonKind[]) {
        const daemon = await startDaemon(kind, srv, opts.dir, keys, opts.bufferBytes);
        try {
          const [read] = await readings([daemon.pid]);
          rows.push({
            label: kind === 'knockgate' ? `${daemon.label} standalone` : daemon.label,
            idleMiB: read!.idle,
            settledMiB: read!.settled,
            ...(kind === 'knockgate' ? { target: TARGET } : {}),
          });
        } finally {
          await daemon.stop();
        }
      }
    });
    for (const r of rows)
      console.error(
        `  ${r.label}: ${fmt(r.idleMiB)} MiB at ${IDLE_MS / 1000} s, ${fmt(r.settledMiB)} MiB at ${SETTLED_MS / 1000} s`,
      );
    const figure = (r: Row, name: string, v: number) => oneRunFigure(NAME, r.label, name, 'MiB', v, r.target);
    const figures: Figure[] = rows.flatMap((r) => [
      figure(r, 'RSS idle', r.idleMiB),
      figure(r, `RSS idle at ${SETTLED_MS / 1000} s`, r.settledMiB),
    ]);
    const markdown = [
      `### Idle RSS of every role (MiB, VmRSS ${IDLE_MS / 1000} s and ${SETTLED_MS / 1000} s after start, no traffic; one run; Kubernetes roles against the API emulator)`,
      '',
      markdownTable(
        ['process', `${IDLE_MS / 1000} s`, `${SETTLED_MS / 1000} s`, 'target'],
        rows.map((r) => [r.label, fmt(r.idleMiB), fmt(r.settledMiB), r.target ?? '']),
      ),
    ].join('\n');
    return { name: NAME, command: `npm run bench -- --only ${NAME}`, markdown, figures };
  },
};
