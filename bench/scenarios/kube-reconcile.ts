// Kubernetes reconcile at scale: N AccessGrants for one node are created in the API emulator while
// no agent runs (a node whose agent restarts after its kernel state was lost: a reboot, a new node),
// then `knockgate agent` is started: the time from its spawn until all N are in the kernel set, and
// until every grant's status shows the node Applied. A helper in the node's namespace
// (bench/lib/kube-node.ts) creates the grants and watches both, with its own informer and by polling
// the set. Each point gets a fresh emulator, so no status is left from an earlier agent.

import type { FirewallBackend } from '../../api/standalone.js';
import type { Host, Topology } from '../../test/helpers/netns.js';
import {
  KUBE_NODE_HELPER,
  NODE,
  POLICY_DURATION_SECONDS,
  cleanupFirewall,
  startCluster,
  startKubeAgent,
  type KubeProcess,
} from '../lib/kube.js';
import type { CreateGrantsArgs, WatchReconcileArgs, WatchReconcileResult } from '../lib/kube-node.js';
import { stopPeer } from '../lib/peers.js';
import {
  PROTECTED_PORT,
  newKeys,
  type Figure,
  type RunOptions,
  type Scenario,
  type ScenarioResult,
} from '../lib/setup.js';
import { fmt, markdownTable } from '../lib/stats.js';
import { withTopology } from '../lib/topology.js';
import { loadNow } from '../lib/kube.js';
import { waitFor } from '../../test/helpers/netns.js';

const BACKENDS: FirewallBackend[] = ['nftables', 'ipset'];
/** --quick: the default backend only (the whole --quick run stays within minutes). */
const backendsFor = (opts: RunOptions): FirewallBackend[] => (opts.quick ? ['nftables'] : BACKENDS);
const NAME = 'kube-reconcile';
/** How often the helper counts the kernel set (each count lists the set: not free at 10,000). */
const POLL_MS = 50;
const RECONCILE_TIMEOUT_MS = 300_000;

interface Row {
  backend: FirewallBackend;
  grants: number;
  createMs: number;
  /** From the agent's spawn: its "started" line (first full resync applied), all N in the kernel set, all N Applied. */
  startedMs: number;
  kernelMs: number;
  appliedMs: number;
  kernelCount: number;
  applied: number;
}

/** Run the in-namespace helper to completion; its last stdout line is its JSON result. */
function helperArgs(args: CreateGrantsArgs | WatchReconcileArgs): string[] {
  return [KUBE_NODE_HELPER, JSON.stringify(args)];
}

async function point(srv: Host, dir: string, backend: FirewallBackend, count: number): Promise<Row> {
  const cluster = await startCluster(srv, dir, newKeys());
  let agent: KubeProcess | undefined;
  try {
    const common = { kubeconfig: cluster.kubeconfig, context: 'admin', node: NODE, count };
    const create: CreateGrantsArgs = {
      ...common,
      op: 'create-grants',
      policy: 'bench-knock',
      port: PROTECTED_PORT,
      // Well inside the policy's duration, so the agent's check passes.
      expiresAt: new Date(Date.now() + (POLICY_DURATION_SECONDS - 600) * 1000).toISOString(),
      concurrency: 16,
    };
    const created = await srv.run('node', helperArgs(create), { timeoutMs: 900_000 });
    const { createdMs } = JSON.parse(created.stdout.trim().split('\n').at(-1)!) as { createdMs: number };
    console.error(`  ${count} grants created in the emulator in ${fmt(createdMs, 0)} ms`);

    const watch: WatchReconcileArgs = {
      ...common,
      op: 'watch-reconcile',
      backend,
      pollMs: POLL_MS,
      timeoutMs: RECONCILE_TIMEOUT_MS,
    };
    const watcher = srv.spawn('node', helperArgs(watch));
    let out = '';
    watcher.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    watcher.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => watcher.once('exit', () => resolve()));
    await waitFor(
      () => {
        if (watcher.exitCode !== null) throw new Error(`watcher exited: ${out}`);
        return out.includes('"ready":true');
      },
      { what: 'the reconcile watcher to list the grants', timeoutMs: 120_000 },
    );
    agent = await startKubeAgent(srv, cluster, dir, backend, RECONCILE_TIMEOUT_MS);
    // The deadline's timer is cleared once the watcher is done, or it would hold the process.
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([
      exited,
      new Promise((r) => (deadline = setTimeout(r, RECONCILE_TIMEOUT_MS + 30_000))),
    ]);
    clearTimeout(deadline);
    if (watcher.exitCode === null) await stopPeer({ process: watcher, output: () => out });
    const line = out.trim().split('\n').at(-1)!;
    let r: WatchReconcileResult;
    try {
      r = JSON.parse(line) as WatchReconcileResult;
    } catch {
      throw new Error(`reconcile watcher: ${out.slice(-2000)}`);
    }
    if (r.listed !== count)
      console.error(
        `  warning: ${r.listed} of the ${count} grants created were listed; measured against ${r.listed}`,
      );
    const t0 = agent.spawnedAt;
    const row: Row = {
      backend,
      grants: r.listed,
      createMs: createdMs,
      startedMs: agent.readyAt - t0,
      kernelMs: r.kernelAt === undefined ? NaN : r.kernelAt - t0,
      appliedMs: r.appliedAt === undefined ? NaN : r.appliedAt - t0,
      kernelCount: r.kernelCount,
      applied: r.applied,
    };
    console.error(
      `  ${backend} ${count}: agent started ${fmt(row.startedMs, 0)} ms, kernel ${fmt(row.kernelMs, 0)} ms (${r.kernelCount}), Applied ${fmt(row.appliedMs, 0)} ms (${r.applied})`,
    );
    return row;
  } finally {
    if (agent) await stopPeer(agent);
    await cleanupFirewall(srv, backend).catch(() => undefined);
    await cluster.stop();
  }
}

async function measure(net: Topology, opts: RunOptions): Promise<Row[]> {
  const srv = net.ns('srv');
  const rows: Row[] = [];
  for (const count of opts.quick ? [1000] : [1000, 10_000])
    for (const backend of backendsFor(opts)) rows.push(await point(srv, opts.dir, backend, count));
  return rows;
}

export const kubeReconcile: Scenario = {
  name: NAME,
  description: 'N grants in the API, agent started: time until all are in the kernel and all Applied',
  async run(opts: RunOptions): Promise<ScenarioResult> {
    console.error(
      `${NAME}: ${opts.quick ? '1,000' : '1,000 and 10,000'} grants, ${backendsFor(opts).join(', ')}`,
    );
    const loadAtStart = loadNow();
    const rows = await withTopology((net) => measure(net, opts));
    const load = `load average ${loadAtStart} at the start, ${loadNow()} at the end`;
    const figure = (r: Row, name: string, ms: number): Figure => ({
      scenario: NAME,
      daemon: `knockgate agent (${r.backend})`,
      name: `${name}, ${r.grants} grants`,
      unit: 'ms',
      median: ms,
      p99: ms,
      runs: 1,
      values: [ms],
    });
    return {
      name: NAME,
      command: `npm run bench -- --only ${NAME}${opts.quick ? ' --quick' : ''}`,
      markdown: [
        `### Kubernetes reconcile (N AccessGrants for the node in the API emulator, then the agent started; times from its spawn; the kernel set counted every ${POLL_MS} ms plus the time a count takes; one run per point; ${load})`,
        '',
        markdownTable(
          [
            'backend',
            'grants',
            'created in the API (ms)',
            'agent "started" (ms)',
            'all in the kernel set (ms)',
            'all statuses Applied (ms)',
          ],
          rows.map((r) => [
            r.backend,
            String(r.grants),
            fmt(r.createMs, 0),
            fmt(r.startedMs, 0),
            Number.isFinite(r.kernelMs)
              ? fmt(r.kernelMs, 0)
              : `not within ${RECONCILE_TIMEOUT_MS / 1000} s (${r.kernelCount})`,
            Number.isFinite(r.appliedMs)
              ? fmt(r.appliedMs, 0)
              : `not within ${RECONCILE_TIMEOUT_MS / 1000} s (${r.applied})`,
          ]),
        ),
      ].join('\n'),
      figures: rows.flatMap((r) => [
        figure(r, 'agent spawn → "started" (first full resync applied)', r.startedMs),
        figure(r, 'agent spawn → all grants in the kernel set', r.kernelMs),
        figure(r, 'agent spawn → all grant statuses Applied', r.appliedMs),
      ]),
    };
  },
};
