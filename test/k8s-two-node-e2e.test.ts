// Issue 5, end to end on two emulated nodes, every component its own process as a user would run
// it (test/helpers/cluster-harness.ts): the API emulator and `knockgate controller` in an api
// namespace, `knockgate sniffer` + `knockgate agent` (nftables) in node-a and node-b, the real
// `knock` and `fwknop` clients in a client namespace, a stranger that never knocks, and the real
// kubectl (admin) doing what an operator does: apply the CRDs, the Secret, the policies, read and
// delete grants. Each component talks to the API with its own token and least-privilege RBAC.
//
// One cluster for the whole file; each check starts from "closed everywhere" and waits for
// outcomes with generous deadlines. Grants last seconds, retention is 15 s.

import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { AccessGrant } from '../api/types.js';
import { addressHex } from '../controller/grants/build.js';
import { Cluster, RELEASE_NS, type NodeName, type Role } from './helpers/cluster-harness.js';
import { skipWithoutNetns, waitFor } from './helpers/netns.js';
import { keygen, ROOT, type SpaKeys } from './helpers/standalone-harness.js';

/** Dropped unless granted, on both nodes (a listener answers on both). */
const PORT = 2222;
/** The long grants' port (knock-long and the hand-written grants). */
const LONG_PORT = 2223;
const SPA_PORT = 62201;
const GRANT_SECONDS = 6;
const RETENTION_SECONDS = 15;
const SG = { groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' };

const b64 = (text: string) => Buffer.from(text).toString('base64');

const nodes = (): string => `apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {role: edge, zone: a}}
---
apiVersion: v1
kind: Node
metadata: {name: node-b, labels: {role: edge, zone: b}}
`;

const secret = (keys: SpaKeys): string => `apiVersion: v1
kind: Secret
metadata: {name: spa-keys, namespace: ${RELEASE_NS}}
data: {KEY_BASE64: "${b64(keys.key)}", HMAC_KEY_BASE64: "${b64(keys.hmac)}"}
`;

const POLICIES = `apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: knock-local}
spec:
  knock: {sequence: ["7001/tcp", "7002/tcp", "7003/tcp"], sequenceTimeoutSeconds: 10, tcpFlags: [syn]}
  grant: {ports: ["${PORT}/tcp"], durationSeconds: ${GRANT_SECONDS}, targets: {node: {mode: Local}}}
  nodeSelector: {role: edge}
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: knock-both}
spec:
  knock: {sequence: ["7101/tcp", "7102/tcp", "7103/tcp"], sequenceTimeoutSeconds: 10, tcpFlags: [syn]}
  grant:
    ports: ["${PORT}/tcp"]
    durationSeconds: ${2 * GRANT_SECONDS}
    targets: {node: {mode: Selector, nodeSelector: {role: edge}}}
  nodeSelector: {role: edge}
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: knock-long}
spec:
  knock: {sequence: ["7201/tcp", "7202/tcp", "7203/tcp"], sequenceTimeoutSeconds: 10, tcpFlags: [syn]}
  grant: {ports: ["${LONG_PORT}/tcp"], durationSeconds: 120}
  nodeSelector: {role: edge}
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: spa-local}
spec:
  spa: {keySecretRef: {name: spa-keys}, port: "${SPA_PORT}/udp", maxPacketAgeSeconds: 120}
  grant: {ports: ["${PORT}/tcp"], durationSeconds: ${GRANT_SECONDS}}
  nodeSelector: {role: edge}
`;

const agentConfig = (node: NodeName): string => `apiVersion: knockgate.io/v1alpha1
kind: AgentConfig
nodeName: ${node}
protectedPorts: ["${PORT}/tcp", "${LONG_PORT}/tcp"]
knockPorts: ["7001/tcp", "7002/tcp", "7003/tcp", "7101/tcp", "7102/tcp", "7103/tcp", "7201/tcp", "7202/tcp", "7203/tcp", "${SPA_PORT}/udp"]
backend: nftables
resyncIntervalSeconds: 5
`;

const CONTROLLER_CONFIG = `apiVersion: knockgate.io/v1alpha1
kind: ControllerConfig
retention: {seconds: ${RETENTION_SECONDS}, maxGrants: 100}
revokeTimeoutSeconds: 15
eventsNamespace: ${RELEASE_NS}
leaderElection: {namespace: ${RELEASE_NS}, leaseName: knockgate-controller, leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2}
`;

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;

describe.skipIf(skipWithoutNetns('k8s-two-node-e2e'))(
  'two nodes end to end (processes, real clients)',
  () => {
    let c: Cluster;
    let keys: SpaKeys;
    let namespaces: string[] = [];

    const client = () => c.addr('client');
    const knockName = (policy: string, node?: NodeName) =>
      `${policy}-${addressHex(client())}${node ? `-${node}` : ''}`;

    /** Closed for `from` on both nodes' protected ports (earlier checks' grants have expired). */
    async function allClosed(from: Role = 'client'): Promise<void> {
      await Promise.all(
        (['node-a', 'node-b'] as const).flatMap((node) =>
          [PORT, LONG_PORT].map((port) => c.waitReach(from, node, port, 'closed', 30_000)),
        ),
      );
    }

    /** A few connects in a row that all fail (a door that must stay shut, not just be shut now). */
    async function staysClosed(from: Role, to: NodeName, port: number, tries = 3): Promise<void> {
      for (let i = 0; i < tries; i++)
        expect(await c.connect(from, to, port), `${from} → ${to}:${port}`).toBe('closed');
    }

    /** staysClosed for every (from, node, port) at once. */
    async function allStayClosed(froms: Role[], ports: number[], tries = 2): Promise<void> {
      await Promise.all(
        froms.flatMap((from) =>
          (['node-a', 'node-b'] as const).flatMap((node) =>
            ports.map((port) => staysClosed(from, node, port, tries)),
          ),
        ),
      );
    }

    /** The reasons of the Events about grant `name`, as `kubectl get events` lists them. */
    async function eventsOf(name: string): Promise<Set<string>> {
      const out = await c.kubectlOk(['get', 'events', '-n', RELEASE_NS, '-o', 'json']);
      const items = (JSON.parse(out) as { items: { reason: string; involvedObject?: { name?: string } }[] })
        .items;
      return new Set(items.filter((e) => e.involvedObject?.name === name).map((e) => e.reason));
    }

    function withLogs<T>(p: Promise<T>): Promise<T> {
      return p.catch((err: Error) => {
        throw new Error(`${err.message}\n${c.logs()}`);
      });
    }

    beforeAll(async () => {
      c = await Cluster.create();
      namespaces = c.namespaces;
      keys = await keygen();
      await withLogs(
        (async () => {
          await c.startApi();
          // The operator's steps, with the real kubectl: CRDs first, then what uses them.
          const crds = await c.kubectlOk(['apply', '-f', `${ROOT}crds/`]);
          expect(crds).toMatch(/customresourcedefinition.*accessgrants\.knockgate\.io created/);
          await c.apply('nodes', nodes());
          await c.apply('secret', secret(keys));
          await c.apply('policies', POLICIES);
          await Promise.all([c.listen('node-a', [PORT, LONG_PORT]), c.listen('node-b', [PORT, LONG_PORT])]);
          await Promise.all([
            c.startNode('node-a', agentConfig('node-a')),
            c.startNode('node-b', agentConfig('node-b')),
            c.startController(CONTROLLER_CONFIG),
          ]);
          // Every sniffer runs all four policies before the first knock.
          for (const s of c.sniffers.values())
            await s.waitLog(
              (l) =>
                (l.event === 'started' || l.event === 'policies') && (l.policies as string[]).length === 4,
              'all four policies',
              30_000,
            );
        })(),
      );
      console.log(`cluster up after ${elapsed()}`);
    }, 180_000);

    afterAll(async () => {
      await c?.destroy();
      const listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.split(' ')[0]);
      const left = namespaces.filter((ns) => listed.includes(ns));
      expect(left, 'namespaces left behind').toEqual([]);
    }, 60_000);

    it('a real knock opens the node it reached only (Local); a Selector policy opens both nodes', async () => {
      await allClosed();
      await allClosed('stranger');
      await c.knock('client', 'node-a', ['7001', '7002', '7003']);
      const name = knockName('knock-local', 'node-a');
      await withLogs(c.waitReach('client', 'node-a', PORT, 'open'));
      const grant = await c.waitGrant(
        (g) => g.metadata.name === name && g.status?.nodes?.['node-a']?.state === 'Applied',
        `${name} applied on node-a`,
      );
      expect(grant.spec).toMatchObject({
        source: `${client()}/32`,
        method: 'knock',
        observedBy: 'node-a',
        policyRef: { name: 'knock-local' },
        targets: { nodes: ['node-a'] },
      });
      expect(grant.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'KnockPolicy', name: 'knock-local' });
      await staysClosed('client', 'node-b', PORT);
      await staysClosed('stranger', 'node-a', PORT);
      expect(grant.status?.nodes?.['node-b']).toBeUndefined();

      // The Selector policy: one knock on node-a, one grant, both firewalls.
      await c.knock('client', 'node-a', ['7101', '7102', '7103']);
      await withLogs(c.waitReach('client', 'node-b', PORT, 'open'));
      const both = await c.waitGrant(
        (g) =>
          g.metadata.name === knockName('knock-both') &&
          g.status?.nodes?.['node-a']?.state === 'Applied' &&
          g.status?.nodes?.['node-b']?.state === 'Applied',
        'the Selector grant applied on both nodes',
      );
      expect([...(both.spec.targets?.nodes ?? [])].sort()).toEqual(['node-a', 'node-b']);
      expect(await c.connect('client', 'node-a', PORT)).toBe('open');
      await staysClosed('stranger', 'node-b', PORT);

      // IPv6 (knock -6) on node-b: node-b opens for the client's IPv6 address, node-a does not.
      const client6 = c.addr('client', 6);
      expect(await c.connect('client', 'node-b', PORT, 6)).toBe('closed');
      await c.knock('client', 'node-b', ['7001', '7002', '7003'], 6);
      await withLogs(c.waitReach('client', 'node-b', PORT, 'open', 20_000, 6));
      const name6 = `knock-local-${addressHex(client6)}-node-b`;
      const g6 = await c.waitGrant(
        (g) => g.metadata.name === name6 && g.status?.nodes?.['node-b']?.state === 'Applied',
        `${name6} applied on node-b`,
      );
      expect(g6.spec).toMatchObject({
        source: `${client6}/128`,
        observedBy: 'node-b',
        targets: { nodes: ['node-b'] },
      });
      expect(await c.connect('client', 'node-a', PORT, 6)).toBe('closed');
      expect(await c.connect('stranger', 'node-b', PORT, 6)).toBe('closed');
      console.log(`knock checks done at ${elapsed()}`);
    }, 90_000);

    it('an SPA packet (real fwknop) opens node-a; its exact bytes are refused on node-b, and again after expiry, delete and garbage collection', async () => {
      await allClosed();
      const sniffA = c.sniffers.get('node-a')!;
      const sniffB = c.sniffers.get('node-b')!;
      const refusedReplay = async (d: typeof sniffA, from: number, what: string) =>
        d.waitLog(
          (l) => l.event === 'refuse' && l.reason === 'replay' && l.policy === 'spa-local',
          `${what}: refused as a replay`,
          20_000,
          from,
        );
      const claimNodes = async () => {
        const out = await c.kubectlOk(['get', 'replayclaims', '-o', 'json']);
        return (JSON.parse(out) as { items: { spec: { claimedBy?: string } }[] }).items.map(
          (x) => x.spec.claimedBy,
        );
      };
      const spaGrants = async () =>
        (await c.grants()).filter((g) => g.spec.policyRef?.name === 'spa-local' && g.spec.method === 'spa');

      const packet = await c.fwknop('client', 'node-a', keys, `tcp/${PORT}`, SPA_PORT);
      await withLogs(c.waitReach('client', 'node-a', PORT, 'open'));
      const first = await c.waitGrant(
        (g) => g.spec.policyRef?.name === 'spa-local' && g.status?.phase === 'Active',
        'the SPA grant Active',
      );
      expect(first.spec).toMatchObject({ observedBy: 'node-a', targets: { nodes: ['node-a'] } });
      expect(await claimNodes()).toEqual(['node-a']);

      // 1. The same bytes to node-b, while the grant lives: the cluster-wide claim refuses them.
      let mark = sniffB.lines.length;
      await c.sendUdp('client', 'node-b', SPA_PORT, packet);
      await refusedReplay(sniffB, mark, 'the packet replayed to node-b');
      await staysClosed('client', 'node-b', PORT);
      expect((await spaGrants()).map((g) => g.metadata.name)).toEqual([first.metadata.name]);

      // 2. After the grant expired (still listed as Expired): refused on node-a and node-b.
      await c.waitGrant(
        (g) => g.metadata.name === first.metadata.name && g.status?.phase === 'Expired',
        'the SPA grant Expired',
      );
      await c.waitReach('client', 'node-a', PORT, 'closed');
      mark = sniffA.lines.length;
      const markB = sniffB.lines.length;
      await c.sendUdp('client', 'node-a', SPA_PORT, packet);
      await c.sendUdp('client', 'node-b', SPA_PORT, packet);
      await refusedReplay(sniffA, mark, 'the packet replayed to node-a after expiry');
      await refusedReplay(sniffB, markB, 'the packet replayed to node-b after expiry');
      await staysClosed('client', 'node-a', PORT);
      const after = await spaGrants();
      expect(after.map((g) => [g.metadata.uid, g.status?.phase ?? 'gone'])).toEqual(
        after.length === 0 ? [] : [[first.metadata.uid, 'Expired']],
      );

      // 3. After the controller garbage-collected it (retention): still refused. The claim outlives
      // the grant; node-b's sniffer is restarted first, so what refuses there is the claim in the
      // API, not the sniffer's memory of the packet.
      await c.waitGone(first.metadata.name, (RETENTION_SECONDS + 20) * 1000);
      expect(await claimNodes()).toEqual(['node-a']);
      const freshB = await c.restartSniffer('node-b');
      mark = sniffA.lines.length;
      await c.sendUdp('client', 'node-a', SPA_PORT, packet);
      await c.sendUdp('client', 'node-b', SPA_PORT, packet);
      await refusedReplay(sniffA, mark, 'the packet replayed to node-a after garbage collection');
      await refusedReplay(freshB, 0, 'the packet replayed to a restarted node-b after garbage collection');
      await staysClosed('client', 'node-a', PORT);
      expect(await spaGrants()).toEqual([]);

      // 4. A fresh packet opens again; after `kubectl delete accessgrant` its replay is refused.
      const second = await c.fwknop('client', 'node-a', keys, `tcp/${PORT}`, SPA_PORT);
      await withLogs(c.waitReach('client', 'node-a', PORT, 'open'));
      const grant2 = await c.waitGrant(
        (g) => g.spec.policyRef?.name === 'spa-local' && g.status?.phase === 'Active',
        'the second SPA grant Active',
      );
      await c.kubectlOk(['delete', 'accessgrant', grant2.metadata.name, '--wait=true', '--timeout=30s']);
      await c.waitReach('client', 'node-a', PORT, 'closed', 10_000);
      for (const p of [second, packet]) {
        mark = sniffA.lines.length;
        const mB = freshB.lines.length;
        await c.sendUdp('client', 'node-a', SPA_PORT, p);
        await c.sendUdp('client', 'node-b', SPA_PORT, p);
        await refusedReplay(sniffA, mark, 'a packet replayed to node-a after kubectl delete');
        await refusedReplay(freshB, mB, 'a packet replayed to node-b after kubectl delete');
      }
      await staysClosed('client', 'node-a', PORT);
      await staysClosed('client', 'node-b', PORT);
      expect(await spaGrants()).toEqual([]);
      console.log(`SPA checks done at ${elapsed()}`);
    }, 120_000);

    it('kubectl get accessgrants shows the printer columns, Active then Expired; kubectl delete closes at once', async () => {
      await allClosed();
      // A short grant on node-b: Active, then Expired in the table.
      await c.knock('client', 'node-b', ['7001', '7002', '7003']);
      const short = knockName('knock-local', 'node-b');
      await withLogs(c.waitReach('client', 'node-b', PORT, 'open'));
      const row = async (name: string) => {
        const out = await c.kubectlOk(['get', 'accessgrants']);
        const [header, ...rows] = out.trim().split('\n');
        expect(header!.trim().split(/\s+/)).toEqual([
          'NAME',
          'SOURCE',
          'PORTS',
          'METHOD',
          'POLICY',
          'PHASE',
          'EXPIRES',
          'AGE',
        ]);
        const cells = rows.map((r) => r.trim().split(/\s+/));
        // One row per grant, no duplicates.
        expect(new Set(cells.map((x) => x[0])).size).toBe(cells.length);
        return cells.find((x) => x[0] === name);
      };
      const active = await waitFor(
        async () => {
          const r = await row(short);
          return r?.[5] === 'Active' ? r : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 250, what: `${short} listed Active` },
      );
      const g = (await c.grant(short))!;
      expect(active.slice(1, 7)).toEqual([
        `${client()}/32`,
        // A string column over a list prints it as JSON, as the real API server's printer does.
        JSON.stringify([`${PORT}/tcp`]),
        'knock',
        'knock-local',
        'Active',
        g.spec.expiresAt,
      ]);
      expect(active[7]).toMatch(/^\d+s$/);
      // Rows and objects agree (compared when nothing changed in between).
      await waitFor(
        async () => {
          const before = (await c.grants()).map((x) => x.metadata.name).sort();
          const out = await c.kubectlOk(['get', 'accessgrants', '--no-headers']);
          const after = (await c.grants()).map((x) => x.metadata.name).sort();
          if (before.join() !== after.join()) return false;
          const listed = out
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => l.trim().split(/\s+/)[0]!)
            .sort();
          expect(listed).toEqual(before);
          return true;
        },
        { timeoutMs: 20_000, intervalMs: 200, what: 'a stable grant list' },
      );
      await waitFor(async () => (await row(short))?.[5] === 'Expired', {
        timeoutMs: 30_000,
        intervalMs: 250,
        what: `${short} listed Expired`,
      });
      await c.waitReach('client', 'node-b', PORT, 'closed');

      // A long grant (120 s) on node-a, deleted with kubectl: closed within seconds, object gone.
      await c.knock('client', 'node-a', ['7201', '7202', '7203']);
      const long = knockName('knock-long', 'node-a');
      await withLogs(c.waitReach('client', 'node-a', LONG_PORT, 'open'));
      const live = await c.waitGrant(
        (x) => x.metadata.name === long && x.status?.phase === 'Active',
        `${long} Active`,
      );
      expect(live.metadata.finalizers?.length ?? 0).toBeGreaterThan(0);
      const t0 = Date.now();
      await c.kubectlOk(['delete', 'accessgrant', long, '--wait=false']);
      await c.waitReach('client', 'node-a', LONG_PORT, 'closed', 10_000);
      const closedMs = Date.now() - t0;
      await c.waitGone(long, 20_000);
      const goneMs = Date.now() - t0;
      console.log(`kubectl delete accessgrant: closed after ${closedMs} ms, object gone after ${goneMs} ms`);
      // The Events kubectl shows for it: opened, then revoked.
      await waitFor(
        async () => {
          const reasons = await eventsOf(long);
          return reasons.has('Opened') && reasons.has('Revoked');
        },
        { timeoutMs: 20_000, intervalMs: 500, what: `Opened and Revoked events of ${long}` },
      );
    }, 120_000);

    it('a hand-written grant that exceeds its policy applies nothing and is Failed with the reason', async () => {
      await allClosed();
      const soon = (s: number) => new Date(Date.now() + s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const base = {
        apiVersion: 'knockgate.io/v1alpha1',
        kind: 'AccessGrant',
      };
      const spec = (over: Record<string, unknown>) => ({
        source: `${client()}/32`,
        ports: [`${LONG_PORT}/tcp`],
        expiresAt: soon(60),
        policyRef: { name: 'knock-long' },
        method: 'knock',
        observedBy: 'node-a',
        targets: { nodes: ['node-a'] },
        ...over,
      });
      const cases: [string, Record<string, unknown>, RegExp][] = [
        ['hand-wide', { method: 'manual', source: c.subnet }, /wider/],
        ['hand-port', { ports: [`${LONG_PORT}/tcp`, `${PORT}/tcp`] }, new RegExp(`${PORT}/tcp`)],
        [
          'hand-sg',
          { targets: { nodes: ['node-a'], awsSecurityGroups: [SG] } },
          /security group sg-0123456789abcdef0/,
        ],
        ['hand-long', { expiresAt: soon(3600) }, /120 s/],
      ];
      const agentA = c.agents.get('node-a')!;
      const mark = agentA.lines.length;
      await c.apply(
        'hand-grants',
        cases
          .map(([name, over]) => stringify({ ...base, metadata: { name }, spec: spec(over) }))
          .join('---\n'),
      );
      for (const [name, , reason] of cases) {
        const g = await c.waitGrant(
          (x) => x.metadata.name === name && x.status?.phase === 'Failed',
          `${name} Failed`,
        );
        const yaml = await c.kubectlOk(['get', 'accessgrant', name, '-o', 'yaml']);
        const status = (parse(yaml) as AccessGrant).status!;
        expect(status.phase).toBe('Failed');
        // The reason, in a condition (Refused: over its policy's bounds; Failed: a node refused it).
        const why = status.conditions?.find(
          (x) => (x.type === 'Refused' || x.type === 'Failed') && x.status === 'True',
        );
        expect(why?.message ?? '', `${name}: ${yaml}`).toMatch(reason);
        expect(g.status?.nodes?.['node-a']?.state ?? 'none').not.toBe('Applied');
      }
      // Nothing of them reached node-a's firewall: never opened (the audit trail), and closed now.
      for (const port of [PORT, LONG_PORT]) await staysClosed('client', 'node-a', port);
      const opened = agentA.lines
        .slice(mark)
        .filter((l) => l.event === 'open' && String(l.grant).startsWith('hand-'));
      expect(opened, 'hand-written grants the agent opened').toEqual([]);
      // A warning Event says so for each.
      for (const [name] of cases)
        await waitFor(
          async () => [...(await eventsOf(name))].some((r) => r === 'Refused' || r === 'Failed'),
          {
            timeoutMs: 20_000,
            intervalMs: 500,
            what: `a Refused or Failed event of ${name}`,
          },
        );
      await c.kubectlOk(['delete', 'accessgrants', ...cases.map(([n]) => n), '--timeout=30s']);
    }, 90_000);

    it('deleting a policy revokes its grants', async () => {
      await allClosed();
      await c.knock('client', 'node-a', ['7201', '7202', '7203']);
      const name = knockName('knock-long', 'node-a');
      await withLogs(c.waitReach('client', 'node-a', LONG_PORT, 'open'));
      await c.waitGrant((g) => g.metadata.name === name && g.status?.phase === 'Active', `${name} Active`);
      await c.kubectlOk(['delete', 'knockpolicy', 'knock-long', '--wait=false']);
      await withLogs(c.waitReach('client', 'node-a', LONG_PORT, 'closed', 15_000));
      // The grant goes with its owner (garbage collection through the revoke finalizer), or stays
      // listed as Revoked: either way it no longer opens anything.
      await waitFor(
        async () => {
          const g = await c.grant(name);
          return !g || g.status?.phase === 'Revoked';
        },
        { timeoutMs: 30_000, intervalMs: 250, what: `${name} revoked or gone` },
      );
      await staysClosed('client', 'node-a', LONG_PORT);
    }, 90_000);

    it('an empty or failing policy watch never removes the drops', async () => {
      await allClosed();
      const hasTable = async (node: NodeName) => {
        const rules = await c.ruleset(node);
        return (
          rules.includes('table inet knockgate') &&
          rules.includes(String(PORT)) &&
          rules.includes(String(LONG_PORT))
        );
      };
      // Policy lists fail (500) and the watches are dropped: the agents relist into errors.
      const marks = new Map([...c.agents].map(([n, d]) => [n, d.lines.length]));
      await c.fault({ fail: { code: 500, count: 1000, pathIncludes: 'knockpolicies' }, dropWatches: true });
      await Promise.all(
        [...c.agents].map(([n, d]) =>
          d.waitLog(
            (l) => l.event === 'kube-watch-error' && l.resource === 'knockpolicies' && l.status === 500,
            `${n}: the policy list failing`,
            20_000,
            marks.get(n),
          ),
        ),
      );
      await new Promise((r) => setTimeout(r, 6000)); // past one resync (5 s)
      for (const node of ['node-a', 'node-b'] as const)
        expect(await hasTable(node), `${node}'s table`).toBe(true);
      await allStayClosed(['stranger', 'client'], [PORT, LONG_PORT]);
      await c.fault({ clear: true, dropWatches: true });

      // Every policy deleted: the agents' policy caches are empty; the drops stay.
      await c.kubectlOk(['delete', 'knockpolicies', '--all', '--wait=false']);
      await Promise.all(
        [...c.sniffers.values()].map((s) =>
          s.waitLog(
            (l) => l.event === 'policies' && (l.policies as string[]).length === 0,
            'no policy left',
            30_000,
          ),
        ),
      );
      await new Promise((r) => setTimeout(r, 6000)); // past one resync (5 s)
      for (const node of ['node-a', 'node-b'] as const)
        expect(await hasTable(node), `${node}'s table`).toBe(true);
      await allStayClosed(['stranger', 'client'], [PORT, LONG_PORT]);
      // And nothing opens any more: a knock is just dropped traffic.
      await c.knock('client', 'node-a', ['7001', '7002', '7003']);
      await new Promise((r) => setTimeout(r, 2000));
      await staysClosed('client', 'node-a', PORT);
    }, 90_000);

    // Last: it takes knockgate off the cluster. The command runs as the pre-delete hook Job's
    // service account (controller/uninstall/rbac.ts), every role with its own RBAC.
    it('knockgate uninstall: live grants on both nodes revoked, every firewall object removed, no finalizer, no grant, marker gone; nothing is reinstalled', async () => {
      await c.apply('policies', POLICIES);
      for (const s of c.sniffers.values())
        await s.waitLog(
          (l) => l.event === 'policies' && (l.policies as string[]).length === 4,
          'all four policies again',
          30_000,
        );
      // Live grants (120 s) on each node, the way they are made: a real knock.
      const live = [knockName('knock-long', 'node-a'), knockName('knock-long', 'node-b')];
      await c.knock('client', 'node-a', ['7201', '7202', '7203']);
      await c.knock('client', 'node-b', ['7201', '7202', '7203']);
      await withLogs(
        Promise.all(
          (['node-a', 'node-b'] as const).map((n, i) =>
            c.waitGrant(
              (g) => g.metadata.name === live[i] && g.status?.nodes?.[n]?.state === 'Applied',
              `${live[i]} applied on ${n}`,
            ),
          ),
        ),
      );
      await c.waitReach('client', 'node-a', LONG_PORT, 'open');
      await c.waitReach('client', 'node-b', LONG_PORT, 'open');
      for (const n of ['node-a', 'node-b'] as const) expect(await c.firewallObjects(n)).not.toEqual([]);
      const grants = await c.grants();
      expect(grants.every((g) => g.metadata.finalizers?.includes('knockgate.io/revoke'))).toBe(true);

      const controllerMark = c.controller!.lines.length;
      const sniffMarks = new Map([...c.sniffers].map(([n, d]) => [n, d.lines.length]));
      const t0 = Date.now();
      const r = await c.uninstall(['--node-selector', 'role=edge', '--timeout', '90']);
      console.log(`knockgate uninstall: ${((Date.now() - t0) / 1000).toFixed(1)} s\n${r.stdout}`);
      expect(r.code, `${r.stderr}\n${c.logs()}`).toBe(0);
      expect(r.stdout).toMatch(/revoked [1-9]\d* accessgrant\(s\)/);
      for (const name of live) expect(r.stdout).toContain(name);
      expect(r.stdout).toContain('firewall objects removed on 2 node(s): node-a, node-b');

      // Nothing left: no grant (so no finalizer), no marker, no knockgate object in either node.
      expect(await c.grants()).toEqual([]);
      const cms = await c.kubectlOk(['get', 'configmaps', '-n', RELEASE_NS, '-o', 'name']);
      expect(cms).not.toContain('knockgate-uninstall');
      for (const n of ['node-a', 'node-b'] as const) expect(await c.firewallObjects(n), n).toEqual([]);
      // The finalizers went because the nodes said Removed, not because the revoke timeout ran out.
      expect(c.controller!.lines.slice(controllerMark).filter((l) => l.event === 'revoke-timeout')).toEqual(
        [],
      );
      for (const [n, a] of c.agents)
        expect(
          a.lines.some((l) => l.event === 'uninstall-acknowledged'),
          `${n} acknowledged`,
        ).toBe(true);

      // The firewall is gone, drops included: the stranger reaches the listeners now.
      await c.waitReach('stranger', 'node-a', PORT, 'open');
      await c.waitReach('stranger', 'node-b', LONG_PORT, 'open');
      // The roles stay latched with the marker gone: a knock writes no grant, and past the agents'
      // resync (5 s) nothing is reinstalled.
      await c.knock('client', 'node-a', ['7201', '7202', '7203']);
      await c.sniffers
        .get('node-a')!
        .waitLog(
          (l) => l.event === 'refuse' && l.reason === 'uninstalling',
          'the knock refused (uninstalling)',
          20_000,
          sniffMarks.get('node-a'),
        );
      await new Promise((resolve) => setTimeout(resolve, 6000));
      expect(await c.grants()).toEqual([]);
      for (const n of ['node-a', 'node-b'] as const) expect(await c.firewallObjects(n), n).toEqual([]);
      console.log(`all checks done at ${elapsed()}`);
    }, 150_000);
  },
);
