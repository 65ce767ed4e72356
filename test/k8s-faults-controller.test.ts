// Faults of the controller, end to end: `knockgate controller` processes (the built CLI) beside the
// real agent driving nftables in a network namespace, against the API emulator on the real clock.
// A leader SIGKILLed and replaced by a new pod; a leader frozen (SIGSTOP: it stops renewing, as if
// partitioned) whose Lease another instance takes over, and which, thawed, must not act again; a
// leader cut off from the API by a network partition (its TCP link silenced), likewise.
// Each scenario ends on the bench's invariant (test/helpers/k8s-faults-harness.ts): no grant lost,
// none open past its expiry, no nft element without a live grant, every status converged.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultsBench } from './helpers/k8s-faults-harness.js';
import { skipWithoutNetns, waitFor } from './helpers/netns.js';

/** Short Lease timings (the ratios of client-go's 15/10/2) and a short retention, to see it end. */
const CONFIG = `apiVersion: knockgate.io/v1alpha1
kind: ControllerConfig
retention: {seconds: 8, maxGrants: 100}
revokeTimeoutSeconds: 120
leaderElection: {leaseDurationSeconds: 4, renewDeadlineSeconds: 3, retryPeriodSeconds: 1}
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skipWithoutNetns('faults of the controller, agent + controller processes'))(
  'controller processes killed, restarted and taken over (agent with nftables in a namespace)',
  () => {
    const bench = new FaultsBench();
    const active = (name: string) =>
      bench.phase(name) === 'Active' && bench.nodeStatus(name)?.state === 'Applied';

    beforeAll(() => bench.start(['ctl-a', 'ctl-b', 'ctl-c']), 60_000);
    afterAll(() => bench.stop(), 60_000);

    it('SIGKILLed and restarted: the agent carries on alone; the new controller expires, retains, deletes and finalizes', async () => {
      const a = await bench.spawnController('ctl-a', CONFIG);
      await waitFor(() => bench.holder() === 'ctl-a', { what: 'ctl-a to lead', timeoutMs: 30_000 });
      bench.put('kill-cli', bench.cli4);
      bench.put('kill-short', '10.77.4.2', 12);
      bench.put('kill-gone', '10.77.4.3');
      await waitFor(() => ['kill-cli', 'kill-short', 'kill-gone'].every(active), { what: 'three Active' });
      const shortEnd = Date.parse(bench.get('kill-short')!.spec.expiresAt);

      await bench.kill(a, 'SIGKILL');
      const killedAt = Date.now();
      expect(a.child.signalCode).toBe('SIGKILL');
      bench.delete('kill-gone');
      bench.put('kill-new', '10.77.4.4');
      // No controller: the agent alone closes the deleted grant, applies the new one, and closes the
      // short one at its expiry; the finalizer holds the deleted object, nobody sets phases.
      await waitFor(async () => bench.nodeStatus('kill-gone')?.state === 'Removed', { what: 'Removed' });
      expect(await bench.hasElement('10.77.4.3')).toBe(false);
      expect(bench.get('kill-gone')?.metadata.deletionTimestamp).toBeDefined();
      await waitFor(async () => bench.nodeStatus('kill-new')?.state === 'Applied', { what: 'Applied' });
      expect(await bench.hasElement('10.77.4.4')).toBe(true);
      expect(bench.phase('kill-new')).toBeUndefined();
      await waitFor(async () => !(await bench.hasElement('10.77.4.2')), {
        what: 'the short grant closed at its expiry',
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      expect(Date.now()).toBeLessThan(shortEnd + 3_000);
      expect(bench.phase('kill-short')).toBe('Active'); // nobody marks it Expired yet
      expect(bench.holder()).toBe('ctl-a'); // the killed leader's Lease, not released

      // A new pod takes the Lease once the killed leader's lapses, and picks up from the API state.
      const b = await bench.spawnController('ctl-b', CONFIG);
      await waitFor(() => bench.holder() === 'ctl-b', { what: 'ctl-b to lead', timeoutMs: 30_000 });
      await waitFor(() => bench.get('kill-gone') === undefined, { what: 'the finalizer released' });
      await waitFor(() => active('kill-new'), { what: 'the grant made meanwhile Active' });
      await waitFor(() => bench.phase('kill-short') === 'Expired', { what: 'Expired' });
      // Retained for the retention (8 s), then deleted.
      const expiredSeen = Date.now();
      await waitFor(() => bench.get('kill-short') === undefined, {
        what: 'retention end',
        timeoutMs: 30_000,
      });
      expect(Date.now() - expiredSeen).toBeGreaterThan(2_000);
      expect(bench.eventCount('Expired', 'kill-short')).toBe(1);
      expect(bench.eventCount('Revoked', 'kill-gone')).toBe(1);
      expect(bench.eventCount('Opened', 'kill-cli')).toBe(1);
      expect(bench.eventCount('Opened', 'kill-new')).toBe(1);
      expect(bench.writesBy('ctl-a', killedAt + 500)).toEqual([]);
      // The finalizer path still works under the new leader.
      bench.delete('kill-new');
      await waitFor(() => bench.get('kill-new') === undefined, { what: 'kubectl delete with ctl-b' });
      expect(await bench.hasElement('10.77.4.4')).toBe(false);
      expect(await bench.letIn()).toBe(true);
      await bench.invariant('after the controller was killed and replaced');
      expect(b.child.exitCode).toBeNull();
    }, 120_000);

    it('the Lease taken over from a frozen leader: exactly one acts, the new leader carries on, the old one stays out', async () => {
      // ctl-b leads (started here when the previous test did not run); ctl-c stands by.
      if (!bench.running('ctl-b')) await bench.spawnController('ctl-b', CONFIG);
      await waitFor(() => bench.holder() === 'ctl-b', { what: 'ctl-b leading', timeoutMs: 30_000 });
      const c = await bench.spawnController('ctl-c', CONFIG);
      await waitFor(() => bench.seen.some((r) => r.user === 'ctl-c' && r.url.includes('/leases/')), {
        what: 'ctl-c campaigning',
        timeoutMs: 30_000,
      });
      bench.put('lease-cli', bench.cli4);
      bench.put('lease-before', '10.77.5.1');
      await waitFor(() => active('lease-cli') && active('lease-before'), { what: 'Active under ctl-b' });
      const leader = bench.controller('ctl-b');

      await bench.kill(leader, 'SIGSTOP');
      const frozenAt = Date.now();
      const lastRenewal = Date.parse(bench.lease()!.renewTime!);
      const transitions = bench.lease()!.leaseTransitions ?? 0;
      bench.put('lease-new', '10.77.5.2');
      bench.put('lease-short', '10.77.5.3', 8);
      bench.delete('lease-before');
      await waitFor(() => bench.holder() === 'ctl-c', { what: 'ctl-c to take over', timeoutMs: 30_000 });
      const tookOverAt = Date.now();
      // Only once the frozen leader's Lease lapsed (4 s after its last renewal), in one transition.
      expect(tookOverAt - lastRenewal).toBeGreaterThanOrEqual(4_000);
      expect(bench.lease()!.leaseTransitions).toBe(transitions + 1);
      await waitFor(() => active('lease-new'), { what: 'the new leader carries on' });
      await waitFor(() => bench.get('lease-before') === undefined, { what: 'revoked by the new leader' });
      await waitFor(() => bench.phase('lease-short') === 'Expired', { what: 'Expired by the new leader' });

      await bench.kill(leader, 'SIGCONT');
      const thawedAt = Date.now();
      bench.put('lease-after', '10.77.5.4');
      await waitFor(() => active('lease-after'), { what: 'Active after the thaw' });
      await sleep(3_000); // several of the thawed instance's retry periods
      expect(bench.holder()).toBe('ctl-c');
      // The thawed one wrote nothing (not even what it had queued), ctl-c nothing before it led.
      // Frozen, ctl-b sent nothing. Thawed, it may finish at most the writes whose leadership check
      // passed before the freeze (client-go's leader election has the same window): each of them
      // either refused by its precondition (409) or an Event of a fixed name (created once,
      // whoever is first). After that, nothing.
      const late = bench.writesBy('ctl-b', frozenAt + 200);
      const show = (rs: typeof late) =>
        rs.map((r) => `${r.method} ${r.url} ${r.status} +${r.seenAt - thawedAt} ms`);
      expect(show(late.filter((r) => r.seenAt < thawedAt))).toEqual([]);
      expect(show(late.filter((r) => r.seenAt > thawedAt + 2_000))).toEqual([]);
      for (const r of late) expect(r.status === 409 || r.url.endsWith('/events'), show([r])[0]).toBe(true);
      expect(bench.writesBy('ctl-c').filter((r) => r.seenAt < tookOverAt - 1_000)).toEqual([]);
      expect(bench.writesBy('ctl-c').length).toBeGreaterThan(0);
      expect(bench.eventCount('Opened', 'lease-new')).toBe(1);
      expect(bench.eventCount('Opened', 'lease-after')).toBe(1);
      expect(bench.eventCount('Revoked', 'lease-before')).toBe(1);
      expect(bench.eventCount('Expired', 'lease-short')).toBe(1);
      expect(await bench.letIn()).toBe(true);
      await bench.invariant('after the Lease was taken over');
      expect(c.child.exitCode).toBeNull();
    }, 120_000);

    it('a leader cut off from the API (a network partition) steps down, the other takes over; healed, it stays out', async () => {
      // Two instances campaign (ctl-c leads after the previous test); started here otherwise.
      for (const id of ['ctl-b', 'ctl-c']) if (!bench.running(id)) await bench.spawnController(id, CONFIG);
      await waitFor(() => ['ctl-b', 'ctl-c'].includes(bench.holder() ?? ''), {
        what: 'a leader',
        timeoutMs: 30_000,
      });
      const leaderId = bench.holder()!;
      const otherId = leaderId === 'ctl-b' ? 'ctl-c' : 'ctl-b';
      const leader = bench.controller(leaderId);
      bench.put('part-cli', bench.cli4);
      bench.put('part-before', '10.77.6.1');
      await waitFor(() => active('part-cli') && active('part-before'), { what: `Active under ${leaderId}` });

      leader.link.partition();
      const cutAt = Date.now();
      const transitions = bench.lease()!.leaseTransitions ?? 0;
      bench.put('part-new', '10.77.6.2');
      bench.put('part-short', '10.77.6.3', 8);
      bench.delete('part-before');
      await waitFor(() => bench.holder() === otherId, { what: `${otherId} to take over`, timeoutMs: 30_000 });
      await waitFor(() => active('part-new'), { what: 'the new leader carries on' });
      await waitFor(() => bench.get('part-before') === undefined, { what: 'revoked by the new leader' });
      await waitFor(() => bench.phase('part-short') === 'Expired', { what: 'Expired by the new leader' });

      leader.link.heal();
      const healedAt = Date.now();
      bench.put('part-after', '10.77.6.4');
      await waitFor(() => active('part-after'), { what: 'Active after the heal' });
      await waitFor(() => bench.seen.some((r) => r.user === leaderId && r.seenAt > healedAt), {
        what: `${leaderId} back in touch`,
        timeoutMs: 20_000,
      }).catch((err: Error) => {
        const { exitCode, signalCode } = leader.child;
        throw new Error(
          `${err.message} (exit ${exitCode}, signal ${signalCode}):\n${leader.output().slice(-4000)}`,
        );
      });
      await sleep(3_000); // several retry periods of the healed instance
      expect(bench.holder()).toBe(otherId);
      expect(bench.lease()!.leaseTransitions).toBe(transitions + 1);
      // Cut off, then healed, the old leader wrote nothing: no object, no Event, no Lease.
      const late = bench.seen.filter(
        (r) => r.user === leaderId && r.seenAt > cutAt + 200 && r.method !== 'GET',
      );
      expect(late.map((r) => `${r.method} ${r.url} ${r.status}`)).toEqual([]);
      expect(bench.eventCount('Opened', 'part-new')).toBe(1);
      expect(bench.eventCount('Opened', 'part-after')).toBe(1);
      expect(bench.eventCount('Revoked', 'part-before')).toBe(1);
      expect(bench.eventCount('Expired', 'part-short')).toBe(1);
      expect(await bench.letIn()).toBe(true);
      await bench.invariant('after the partition healed');
      expect(leader.child.exitCode).toBeNull(); // it rode the partition out
    }, 120_000);
  },
);
