// The in-namespace side of the kube-reconcile benchmark, run inside the node's network namespace
// (the emulator listens on that namespace's loopback only):
//   node dist/bench/lib/kube-node.js '<json KubeNodeArgs>'
//
// - create-grants: create `count` AccessGrants for the node (one /32 source each, the protected
//   port, the knock policy), `concurrency` requests at a time; prints {"createdMs": n}.
// - watch-reconcile: list and follow the grants (an informer, as the agent has), print {"ready":true}
//   once listed, then poll the kernel set and count the grants whose status shows this node
//   Applied, until both reach the number listed (`count` unless a create was lost) or `timeoutMs`; prints one JSON line of when each
//   was reached (Date.now(), to compare with the agent's spawn time in the bench process).

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { systemClock } from '../../api/clock.js';
import type { FirewallBackend } from '../../api/standalone.js';
import type { AccessGrant } from '../../api/types.js';
import { NAMES as FIREWALL_NAMES } from '../../controller/firewall/limits.js';
import { loadKubeConfig } from '../../controller/kube/client.js';
import { KubeInformer, type CachedObject } from '../../controller/kube/informer.js';
import { ResourceClient } from '../../controller/kube/resource-client.js';

const execFileP = promisify(execFile);

interface Common {
  kubeconfig: string;
  context: string;
  node: string;
  count: number;
}

export interface CreateGrantsArgs extends Common {
  op: 'create-grants';
  policy: string;
  port: number;
  expiresAt: string;
  concurrency: number;
}

export interface WatchReconcileArgs extends Common {
  op: 'watch-reconcile';
  backend: FirewallBackend;
  pollMs: number;
  timeoutMs: number;
}

export type KubeNodeArgs = CreateGrantsArgs | WatchReconcileArgs;

export interface WatchReconcileResult {
  /** Date.now() when the kernel set first held `count` entries (undefined: not within the time). */
  kernelAt?: number;
  /** Date.now() when every grant's status first showed the node Applied. */
  appliedAt?: number;
  /** Grants in the first list (the target: normally `count`; fewer when a create was lost). */
  listed: number;
  kernelCount: number;
  applied: number;
  /** Kernel polls done (each an `nft -j list set` / `ipset list -t`). */
  polls: number;
}

/** A distinct IPv4 /32 per index in 10.100.0.0/14 (never the bench topology's own 10.x.y.z). */
export function grantSource(i: number): string {
  return `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;
}

const grantClient = (args: Common) =>
  new ResourceClient<AccessGrant>(
    loadKubeConfig({ kubeconfig: args.kubeconfig, context: args.context }),
    'accessgrants',
    'accessgrant',
    { clock: systemClock },
  );

async function createGrants(args: CreateGrantsArgs): Promise<void> {
  const client = grantClient(args);
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < args.count; i = next++) {
      const name = `bench-scale-${i}`;
      await client.create(name, {
        apiVersion: 'knockgate.io/v1alpha1',
        kind: 'AccessGrant',
        metadata: { name },
        spec: {
          source: grantSource(i),
          ports: [`${args.port}/tcp`],
          expiresAt: args.expiresAt,
          policyRef: { name: args.policy },
          method: 'knock',
          observedBy: args.node,
          targets: { nodes: [args.node] },
        },
      });
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, worker));
  process.stdout.write(`${JSON.stringify({ createdMs: performance.now() - t0 })}\n`);
}

/** Entries in the backend's IPv4 grant set now (0 when it does not exist yet). */
async function kernelCount(backend: FirewallBackend): Promise<number> {
  try {
    if (backend === 'ipset') {
      const { stdout } = await execFileP('ipset', ['list', '-t', FIREWALL_NAMES.ipsetGrants4]);
      return Number(/^Number of entries: (\d+)$/m.exec(stdout)?.[1] ?? 0);
    }
    if (backend === 'nftables') {
      const { stdout } = await execFileP(
        'nft',
        ['-j', 'list', 'set', 'inet', FIREWALL_NAMES.nftTable, 'grants4'],
        { maxBuffer: 256 * 1024 * 1024 },
      );
      const doc = JSON.parse(stdout) as { nftables: { set?: { elem?: unknown[] } }[] };
      return doc.nftables.reduce((n, o) => n + (o.set?.elem?.length ?? 0), 0);
    }
  } catch {
    return 0;
  }
  throw new Error(`kube-node: backend ${backend} has no grant set to count`);
}

async function watchReconcile(args: WatchReconcileArgs): Promise<void> {
  const client = grantClient(args);
  const informer = new KubeInformer<AccessGrant & CachedObject>({
    kubeConfig: loadKubeConfig({ kubeconfig: args.kubeconfig, context: args.context }),
    path: client.path,
    list: () => client.list(),
    resource: 'accessgrants',
    clock: systemClock,
    resyncIntervalMs: 0,
  });
  const applied = new Set<string>();
  const result: WatchReconcileResult = { listed: 0, kernelCount: 0, applied: 0, polls: 0 };
  const note = (g: AccessGrant) => {
    if (g.status?.nodes?.[args.node]?.state === 'Applied') applied.add(g.metadata.name);
    else applied.delete(g.metadata.name);
    if (result.listed > 0 && result.appliedAt === undefined && applied.size >= result.listed)
      result.appliedAt = Date.now();
  };
  informer.subscribe((e) => (e.type === 'DELETED' ? applied.delete(e.object.metadata.name) : note(e.object)));
  informer.start();
  await informer.waitForSync(60_000);
  result.listed = informer.list().length;
  if (result.listed === 0) throw new Error('no grants listed');
  for (const g of informer.list()) note(g);
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  const end = Date.now() + args.timeoutMs;
  while (Date.now() < end && (result.kernelAt === undefined || result.appliedAt === undefined)) {
    if (result.kernelAt === undefined) {
      result.kernelCount = await kernelCount(args.backend);
      result.polls++;
      if (result.kernelCount >= result.listed) result.kernelAt = Date.now();
    }
    await new Promise((r) => setTimeout(r, args.pollMs));
  }
  result.applied = applied.size;
  await informer.stop();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const args = JSON.parse(process.argv[2] ?? '{}') as KubeNodeArgs;
try {
  if (args.op === 'create-grants') await createGrants(args);
  else if (args.op === 'watch-reconcile') await watchReconcile(args);
  else throw new Error(`unknown op ${JSON.stringify((args as { op?: unknown }).op)}`);
} catch (err) {
  process.stderr.write(`kube-node: ${(err as Error).message.split('\n')[0]}\n`);
  process.exitCode = 1;
}
