// Faults of the API server, end to end: the real agent driving nftables in a network namespace and a
// real controller (in process, real clock), both against the API emulator while it drops watches,
// compacts its history (410 Gone), answers 429 and 500 to lists, watches and patches, and stops
// listening for 30 real seconds. Each scenario ends on the invariant of the bench
// (test/helpers/k8s-faults-harness.ts): no grant lost, none open past its expiry, no nft element
// without a live grant, every status converged.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultsBench } from './helpers/k8s-faults-harness.js';
import { skipWithoutNetns, waitFor } from './helpers/netns.js';

const CTL = 'system:serviceaccount:knockgate:controller';
const NODE2 = 'third-node';

describe.skipIf(skipWithoutNetns('faults of the API, agent + controller'))(
  'agent and controller under API faults (nftables in a namespace)',
  () => {
    const bench = new FaultsBench();
    /** A second node: `knockgate agent` as a process in the "third" namespace. */
    let agent2: Awaited<ReturnType<FaultsBench['spawnAgent']>>;
    const active = (name: string) =>
      bench.phase(name) === 'Active' && bench.nodeStatus(name)?.state === 'Applied';

    beforeAll(async () => {
      await bench.start([CTL]);
      const ctl = bench.manager(CTL);
      await waitFor(() => ctl.isLeader(), { what: 'the controller to lead' });
      // No metrics server: nothing but the agent's own work keeps the process up.
      agent2 = await bench.spawnAgent(bench.lab.third, NODE2, ['--metrics-address', 'off']);
    }, 90_000);

    afterAll(() => bench.stop(), 60_000);

    it('dropped watches and 410 Gone: every grant still applied, closed and reported', async () => {
      bench.put('drop-cli', bench.cli4);
      bench.put('drop-a', '10.77.1.2');
      bench.put('drop-short', '10.77.1.3', 6);
      await waitFor(() => ['drop-cli', 'drop-a', 'drop-short'].every(active), { what: 'three Active' });
      expect(await bench.letIn()).toBe(true);
      const faults = bench.cluster.server.faults;
      // Changes made while nobody watches, then the history they were in is compacted away.
      for (let i = 0; i < 3; i++) {
        // Once the watches (re)opened: the agent's two and the controller's.
        await waitFor(() => faults.dropWatches() > 0, { what: 'open watches to drop' });
        bench.put(`drop-new${i}`, `10.77.1.${10 + i}`);
        if (i === 0) bench.delete('drop-a');
        faults.compact();
        faults.dropWatches();
        await new Promise((r) => setTimeout(r, 300));
      }
      await waitFor(() => bench.get('drop-a') === undefined, {
        what: 'the deleted grant revoked on the node and gone',
        timeoutMs: 30_000,
      });
      await waitFor(() => bench.phase('drop-short') === 'Expired', { what: 'Expired', timeoutMs: 30_000 });
      await waitFor(() => bench.nodeStatus('drop-short')?.state === 'Removed', { what: 'Removed' });
      for (let i = 0; i < 3; i++)
        await waitFor(() => active(`drop-new${i}`), { what: `drop-new${i} Active` });
      expect(await bench.hasElement('10.77.1.2')).toBe(false);
      expect(await bench.letIn()).toBe(true);
      await bench.invariant('after dropped watches and 410s');
      expect(bench.eventCount('Revoked', 'drop-a')).toBe(1);
      expect(bench.eventCount('Expired', 'drop-short')).toBe(1);
    });

    it('429 and 500 on lists, watches and patches for a while: nothing lost, statuses converge', async () => {
      const since = Date.now();
      const faults = bench.cluster.server.faults;
      faults.fail({ code: 500, count: 12, method: 'GET' });
      faults.fail({ code: 429, count: 12, method: 'GET', retryAfterSeconds: 1 });
      faults.fail({ code: 500, count: 8, method: 'PATCH' });
      faults.fail({ code: 429, count: 8, method: 'PATCH', retryAfterSeconds: 1 });
      faults.dropWatches();
      bench.put('err-a', '10.77.2.1');
      bench.put('err-short', '10.77.2.2', 6);
      bench.delete('drop-new0');
      bench.put('err-b', '10.77.2.3');
      await waitFor(() => active('err-a') && active('err-b'), { what: 'both Active', timeoutMs: 40_000 });
      await waitFor(() => bench.phase('err-short') === 'Expired', { what: 'Expired', timeoutMs: 40_000 });
      await waitFor(() => bench.get('drop-new0') === undefined, {
        what: 'revoked and gone',
        timeoutMs: 40_000,
      });
      // The faults really were served, on lists/watches and on patches.
      const failed = [...bench.answered(500, since), ...bench.answered(429, since)];
      expect(failed.filter((r) => r.method === 'GET').length).toBeGreaterThan(0);
      expect(failed.filter((r) => r.method === 'PATCH').length).toBeGreaterThan(0);
      expect(await bench.letIn()).toBe(true);
      await bench.invariant('after 429s and 500s');
      expect(bench.eventCount('Opened', 'err-a')).toBe(1);
    }, 90_000);

    it('the API stopped for 30 s: expiry on time meanwhile, nothing new opened, full reconcile after', async () => {
      bench.put('stop-cli', bench.cli4);
      bench.put('stop-short', '10.77.3.2', 12);
      bench.put('stop-gone', '10.77.3.3');
      await waitFor(() => ['stop-cli', 'stop-short', 'stop-gone'].every(active), {
        what: 'Active before the stop',
      });
      const shortEnd = Date.parse(bench.get('stop-short')!.spec.expiresAt);
      const before = new Set((await bench.elements()).map((e) => e.address));
      let back = false;
      const stop = bench.cluster.server.faults.stopFor(30_000).then(() => (back = true));
      const stoppedAt = Date.now();
      // Meanwhile, in the emulator's storage (what a sniffer and kubectl did before the stop was
      // noticed): a new grant, and a deletion held by the controller's finalizer.
      await new Promise((r) => setTimeout(r, 500));
      bench.put('stop-new', '10.77.3.4');
      bench.put('stop-node2', '10.77.3.9', 300, NODE2);
      bench.delete('stop-gone');
      // The short grant closes at its expiresAt with the API away.
      await waitFor(async () => !(await bench.hasElement('10.77.3.2')), {
        what: 'the local expiry while the API is away',
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      expect(back).toBe(false);
      expect(Date.now()).toBeLessThan(shortEnd + 3_000);
      // Nothing new opened, the doors of live grants (cli's among them) still open.
      const during = (await bench.elements()).map((e) => e.address);
      expect(during.filter((a) => !before.has(a))).toEqual([]);
      expect(during).toContain('10.77.3.3');
      expect(await bench.letIn()).toBe(true);
      await stop;
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(29_000);
      // Back: everything created, deleted and expired meanwhile is reconciled.
      await waitFor(() => active('stop-new'), {
        what: 'the grant made during the stop Active',
        timeoutMs: 40_000,
      });
      await waitFor(() => bench.get('stop-gone') === undefined, {
        what: 'the grant deleted during the stop revoked and gone',
        timeoutMs: 40_000,
      });
      await waitFor(() => bench.phase('stop-short') === 'Expired', { what: 'Expired', timeoutMs: 40_000 });
      await waitFor(() => bench.nodeStatus('stop-short')?.state === 'Removed', { what: 'Removed' });
      expect(await bench.hasElement('10.77.3.3')).toBe(false);
      expect(await bench.letIn()).toBe(true);
      // The agent process of the second node rode the stop out and applies what was made meanwhile.
      await waitFor(() => bench.nodeStatus('stop-node2', NODE2)?.state === 'Applied', {
        what: `the grant of ${NODE2} Applied by its agent process`,
        timeoutMs: 40_000,
      }).catch((err: Error) => {
        const { exitCode, signalCode } = agent2.child;
        throw new Error(
          `${err.message} (exit ${exitCode}, signal ${signalCode}): ${agent2.output().slice(-3000)}`,
        );
      });
      expect((await bench.elements(bench.lab.third)).map((e) => e.address)).toEqual(['10.77.3.9']);
      expect(agent2.child.exitCode).toBeNull();
      await bench.invariant('after the 30 s stop');
    }, 120_000);
  },
);
