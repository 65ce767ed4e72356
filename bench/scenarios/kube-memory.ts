// Idle RSS of every knockgate role, measured as the memory scenario measures standalone's: VmRSS
// after 20 s without traffic (V8 returns the young generation it grew while loading by then). The
// Kubernetes roles — `knockgate sniffer` (capturing on the veth), `knockgate agent` (nftables) and
// `knockgate controller` — run together against the API emulator with the bench's policies (they
// hold their watches open and idle), then knockgate standalone, knockd and fwknopd one after the
// other in the same topology, so every idle figure of one run sits side by side.

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
import { newKeys, type Figure, type RunOptions, type Scenario, type ScenarioResult } from '../lib/setup.js';
import { fmt, markdownTable } from '../lib/stats.js';
import { withTopology } from '../lib/topology.js';

const NAME = 'kube-memory';
/** The same idle wait as the memory scenario's. */
const IDLE_MS = 20_000;
const TARGET = '< 64 MiB';

interface Row {
  label: string;
  idleMiB: number;
  target?: string;
}

const mib = (b: number) => b / 2 ** 20;
const idle = () => new Promise((r) => setTimeout(r, IDLE_MS));

export const kubeMemory: Scenario = {
  name: NAME,
  description: 'idle RSS of sniffer, agent and controller (API emulator), standalone, knockd, fwknopd',
  async run(opts: RunOptions): Promise<ScenarioResult> {
    console.error(`${NAME}: idle RSS after ${IDLE_MS / 1000} s of each role`);
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
        await idle();
        for (const r of roles)
          rows.push({
            label: r.label,
            idleMiB: mib(rssBytes(r.proc.process.pid!)),
            ...(r.target ? { target: r.target } : {}),
          });
        rows.push({
          label: 'kube-apiserver emulator (for reference)',
          idleMiB: mib(rssBytes(cluster.emulator.process.pid!)),
        });
      } finally {
        for (const r of roles) await stopPeer(r.proc);
        await cleanupFirewall(srv, 'nftables');
        await cluster.stop();
      }
      for (const kind of ['knockgate', 'knockd', 'fwknopd'] as DaemonKind[]) {
        const daemon = await startDaemon(kind, srv, opts.dir, keys, opts.bufferBytes);
        try {
          await idle();
          rows.push({
            label: kind === 'knockgate' ? `${daemon.label} standalone` : daemon.label,
            idleMiB: mib(rssBytes(daemon.pid)),
            ...(kind === 'knockgate' ? { target: TARGET } : {}),
          });
        } finally {
          await daemon.stop();
        }
      }
    });
    for (const r of rows) console.error(`  ${r.label}: ${fmt(r.idleMiB)} MiB`);
    const figures: Figure[] = rows.map((r) => ({
      scenario: NAME,
      daemon: r.label,
      name: 'RSS idle',
      unit: 'MiB',
      median: r.idleMiB,
      p99: r.idleMiB,
      runs: 1,
      values: [r.idleMiB],
      ...(r.target ? { target: r.target } : {}),
    }));
    const markdown = [
      `### Idle RSS of every role (MiB, VmRSS after ${IDLE_MS / 1000} s without traffic; one run; Kubernetes roles against the API emulator)`,
      '',
      markdownTable(
        ['process', 'RSS idle (MiB)', 'target'],
        rows.map((r) => [r.label, fmt(r.idleMiB), r.target ?? '']),
      ),
    ].join('\n');
    return { name: NAME, command: `npm run bench -- --only ${NAME}`, markdown, figures };
  },
};
