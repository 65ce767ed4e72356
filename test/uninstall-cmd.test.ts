// knockgate uninstall against the API emulator (in this process), every party with the RBAC its
// rbac.ts declares: the command as the pre-delete hook Job (controller/uninstall/rbac.ts), agents
// (their marker rule), the sniffer (read-only marker rule). No controller and no agent processes:
// the test plays them (clears the finalizer, writes acknowledgements), so the deadline path, the
// resume and the summary are checked exactly. The whole thing with real processes and a node
// firewall: k8s-two-node-e2e.test.ts (last check).

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../api/clock.js';
import { createLogger } from '../api/log.js';
import type { AccessGrant } from '../api/types.js';
import { AGENT_NAMESPACE_RULES, agentRules } from '../controller/agent/rbac.js';
import { buildGrant } from '../controller/grants/build.js';
import { KubeApiError, toKubeApiError } from '../controller/kube/errors.js';
import { SNIFFER_CLUSTER_RULES, SNIFFER_NAMESPACE_RULES } from '../controller/sniffer/rbac.js';
import { acknowledgeRemoved, MarkerWatch, UNINSTALL_MARKER } from '../controller/uninstall/marker.js';
import { UNINSTALL_CLUSTER_RULES, UNINSTALL_NAMESPACE_RULES } from '../controller/uninstall/rbac.js';
import { formatSummary, uninstall, UninstallIncompleteError } from '../controller/uninstall/uninstall.js';
import { startEmulatedCluster, type EmulatedCluster } from './helpers/kube-store-emulator.js';
import { KNOCKGATE, requireBuilt } from './helpers/standalone-harness.js';
import { waitFor } from './helpers/netns.js';

const NS = 'knockgate';
const JOB = 'system:serviceaccount:knockgate:uninstall';
const SNIFFER = 'system:serviceaccount:knockgate:sniffer';
const agentUser = (node: string) => `system:serviceaccount:knockgate:agent-${node}`;
const WRITE = { fieldValidation: 'Strict' as const, dryRun: false };
const FINALIZER = 'knockgate.io/revoke';
const logger = createLogger({ level: 'silent', name: 'test' });
const inNs = <T>(rules: T[]) => rules.map((r) => ({ ...r, namespaces: [NS] }));

let cluster: EmulatedCluster | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
  await cluster?.stop();
  cluster = undefined;
});

async function setup(): Promise<EmulatedCluster> {
  const token = () => randomBytes(16).toString('hex');
  cluster = await startEmulatedCluster({
    namespaces: [NS],
    users: [
      { name: 'admin', token: token(), rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] },
      { name: JOB, token: token(), rules: [...UNINSTALL_CLUSTER_RULES, ...inNs(UNINSTALL_NAMESPACE_RULES)] },
      { name: SNIFFER, token: token(), rules: [...SNIFFER_CLUSTER_RULES, ...inNs(SNIFFER_NAMESPACE_RULES)] },
      ...['node-a', 'node-b'].map((n) => ({
        name: agentUser(n),
        token: token(),
        rules: [...agentRules(n), ...inNs(AGENT_NAMESPACE_RULES)],
      })),
    ],
  });
  const c = cluster;
  const nodeType = c.server.api.type('', 'v1', 'nodes')!;
  for (const [name, role] of [
    ['node-a', 'edge'],
    ['node-b', 'edge'],
    ['node-c', 'db'],
  ])
    c.server.api.create(
      nodeType,
      undefined,
      { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { role } } },
      WRITE,
    );
  return c;
}

const grantType = (c: EmulatedCluster) => c.server.api.type('knockgate.io', 'v1alpha1', 'accessgrants')!;

/** A grant as the controller and an agent leave it: the finalizer, and `node` saying Applied. */
function liveGrant(c: EmulatedCluster, source: string, node: string, finalizer = true): string {
  const g = buildGrant(
    { kind: 'grant', policy: 'ssh', method: 'knock', source, ports: ['22/tcp'], durationSeconds: 600 },
    { clock: systemClock, node },
  );
  if (finalizer) g.metadata.finalizers = [FINALIZER];
  c.server.api.create(grantType(c), undefined, g, WRITE);
  c.server.api.patch(
    grantType(c),
    undefined,
    g.metadata.name,
    'application/merge-patch+json',
    { status: { phase: 'Active', nodes: { [node]: { state: 'Applied', since: new Date().toISOString() } } } },
    'status',
    WRITE,
  );
  return g.metadata.name;
}

function serverGrant(c: EmulatedCluster, name: string): AccessGrant | undefined {
  try {
    return c.server.api.get(grantType(c), undefined, name) as unknown as AccessGrant;
  } catch {
    return undefined;
  }
}

/** What the controller does once the targets said Removed: the finalizer goes, the object with it. */
function clearFinalizer(c: EmulatedCluster, name: string): void {
  c.server.api.patch(
    grantType(c),
    undefined,
    name,
    'application/merge-patch+json',
    { metadata: { finalizers: [] } },
    '',
    WRITE,
  );
}

function marker(c: EmulatedCluster): { data?: Record<string, string> } | undefined {
  try {
    return c.server.api.get(c.server.api.type('', 'v1', 'configmaps')!, NS, UNINSTALL_MARKER) as {
      data?: Record<string, string>;
    };
  } catch {
    return undefined;
  }
}

const run = (
  c: EmulatedCluster,
  timeoutMs: number,
  extra: { nodeSelector?: string; nodes?: string[] } = {},
) =>
  uninstall({
    kubeConfig: c.kubeConfigFor(JOB),
    namespace: NS,
    timeoutMs,
    pollMs: 100,
    clock: systemClock,
    logger,
    ...extra,
  });

describe('knockgate uninstall (API emulator, RBAC per role)', () => {
  it('past the deadline: names the grant its finalizer holds and the silent nodes, keeps the marker; a second run resumes and finishes', async () => {
    const c = await setup();
    const held = liveGrant(c, '10.88.0.7', 'node-a');
    const err = await run(c, 1500, { nodeSelector: 'role=edge' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UninstallIncompleteError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toContain(
      `1 accessgrant(s) left: ${held} held by ${FINALIZER} (waiting for node node-a)`,
    );
    expect(message).toContain('no acknowledgement from node(s) node-a, node-b');
    expect(message).not.toContain('node-c'); // not an agent node (role=db)
    expect(message).toContain('left in place');
    // Revoked (deleted: the finalizer holds it), and the marker stays for the next run.
    expect(serverGrant(c, held)?.metadata.deletionTimestamp).toBeDefined();
    expect(marker(c)).toBeDefined();

    // The agents, each with its own rules, see the marker and acknowledge; the controller lets go.
    for (const node of ['node-a', 'node-b']) {
      let latched = false;
      const w = new MarkerWatch({
        kubeConfig: c.kubeConfigFor(agentUser(node)),
        namespace: NS,
        clock: systemClock,
        logger,
        onUninstall: () => (latched = true),
      });
      w.start();
      cleanups.push(() => w.stop());
      await waitFor(() => latched, { timeoutMs: 10_000, what: `${node} latched` });
      await acknowledgeRemoved(c.kubeConfigFor(agentUser(node)), NS, node, { clock: systemClock });
    }
    expect(marker(c)?.data).toEqual({ 'node-a': 'removed', 'node-b': 'removed' });
    clearFinalizer(c, held);

    const summary = await run(c, 10_000, { nodeSelector: 'role=edge' });
    expect(summary).toMatchObject({
      resumed: true,
      revoked: [],
      nodes: ['node-a', 'node-b'],
      unfinalized: [],
    });
    expect(serverGrant(c, held)).toBeUndefined();
    expect(marker(c)).toBeUndefined();
    expect(formatSummary(summary, NS)).toContain('firewall objects removed on 2 node(s): node-a, node-b');
  });

  it('deletes grants that appear meanwhile, waits for the existing nodes the grants name, warns of a grant without the finalizer', async () => {
    const c = await setup();
    const first = liveGrant(c, '10.88.0.8', 'node-b', false);
    // Named by a grant but no Node any more (scaled away): no agent there to wait for.
    const gone = liveGrant(c, '10.88.0.11', 'node-gone', false);
    const done = run(c, 20_000); // no --node-selector: only the nodes the grants name
    // A grant written after the command started (a sniffer not latched yet), for node-a.
    await waitFor(() => marker(c) !== undefined, { timeoutMs: 10_000, what: 'the marker' });
    const late = liveGrant(c, '10.88.0.9', 'node-a');
    await waitFor(() => serverGrant(c, late)?.metadata.deletionTimestamp !== undefined, {
      timeoutMs: 10_000,
      what: `${late} revoked`,
    });
    clearFinalizer(c, late);
    for (const node of ['node-b', 'node-a'])
      await acknowledgeRemoved(c.kubeConfigFor(agentUser(node)), NS, node, { clock: systemClock });
    const summary = await done;
    expect(summary.revoked).toEqual([first, gone, late].sort());
    expect(summary.nodes).toEqual(['node-a', 'node-b']);
    // Deleted at once (no finalizer): nobody confirmed their targets closed; said so.
    expect(summary.unfinalized).toEqual([first, gone].sort());
    expect(formatSummary(summary, NS)).toMatch(/^warning: deleted without the controller's finalizer.*$/m);
  });

  it('the marker rules are that one ConfigMap only; the sniffer cannot acknowledge', async () => {
    const c = await setup();
    c.server.api.create(
      c.server.api.type('', 'v1', 'configmaps')!,
      NS,
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other', namespace: NS }, data: {} },
      WRITE,
    );
    const status = async (p: Promise<unknown>) =>
      p.then(
        () => 200,
        (e: unknown) => toKubeApiError('x', e).status,
      );
    const agent = c.kubeConfigFor(agentUser('node-a')).makeApiClient(CoreV1Api);
    expect(await status(agent.readNamespacedConfigMap({ name: 'other', namespace: NS }))).toBe(403);
    const job = c.kubeConfigFor(JOB).makeApiClient(CoreV1Api);
    expect(await status(job.deleteNamespacedConfigMap({ name: 'other', namespace: NS }))).toBe(403);
    await run(c, 200).catch(() => undefined); // creates the marker (and times out: nothing acknowledges)
    const err = await acknowledgeRemoved(c.kubeConfigFor(SNIFFER), NS, 'node-a', { clock: systemClock }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(403);
  });

  it('the command: exit 1 with one line naming what is left; exit 2 on bad input', async () => {
    requireBuilt();
    const c = await setup();
    const dir = mkdtempSync(join(tmpdir(), 'kg-uninstall-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const kubeconfig = join(dir, 'job.kubeconfig');
    writeFileSync(kubeconfig, c.server.kubeconfig(JOB), { mode: 0o600 });
    const held = liveGrant(c, '10.88.0.10', 'node-b');
    const cli = async (args: string[]) =>
      promisify(execFile)('node', [KNOCKGATE, 'uninstall', '--kubeconfig', kubeconfig, ...args], {
        timeout: 60_000,
      }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const r = await cli(['--namespace', NS, '--node', 'node-a', '--timeout', '2']);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^knockgate: uninstall incomplete after 2 s: 1 accessgrant\\(s\\) left: ${held} held by`),
    );
    expect(lines[0]).toContain('no acknowledgement from node(s) node-a, node-b');
    for (const bad of [
      ['--namespace', 'Not_A_Namespace'],
      ['--namespace', NS, '--timeout', '0'],
      ['--namespace', NS, '--node', 'a/b'],
    ]) {
      const b = await cli(bad);
      expect(b.code, bad.join(' ')).toBe(2);
      expect(b.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
