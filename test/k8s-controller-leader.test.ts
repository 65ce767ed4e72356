// Leader election of `knockgate controller` on a coordination.k8s.io/v1 Lease, against the API
// emulator on a FakeClock: of two controllers only the leader writes; a killed leader is replaced
// after the lease duration and the successor picks up from the API state; a leader that finds its
// Lease taken over, or cannot renew it within the renew deadline, stops acting at once; a stopped
// leader that releases the Lease is replaced at the next retry. Lease times go out as MicroTime
// with six fractional digits (client-node's Date would send three, which the server refuses).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ControllerConfig } from '../controller/reconciler/config.js';
import { FINALIZER } from '../controller/reconciler/grant-reconciler.js';
import type { RecordedRequest } from './emulators/kube-apiserver/server.js';
import { ControllerBench } from './helpers/k8s-controller-harness.js';

let bench: ControllerBench;

beforeEach(async () => {
  bench = new ControllerBench();
  await bench.start(['ctl-a', 'ctl-b']);
});

afterEach(async () => {
  await bench.stop();
});

/** client-go's defaults: lease 15 s, renew deadline 10 s, retry every 2 s. */
function realistic(): ControllerConfig {
  const config = bench.config();
  config.leaderElection = {
    ...config.leaderElection,
    leaseDurationSeconds: 15,
    renewDeadlineSeconds: 10,
    retryPeriodSeconds: 2,
  };
  return config;
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Writes `user` sent, other than to the Lease (campaigning is not acting). */
function actions(user: string, from = 0): RecordedRequest[] {
  return bench.cluster.server.requests
    .slice(from)
    .filter(
      (r) =>
        r.user === user && WRITES.has(r.method) && !r.url.includes('/leases/') && !r.url.endsWith('/leases'),
    );
}
const finalized = (name: string) => bench.grant(name)?.metadata.finalizers?.includes(FINALIZER) ?? false;
const settle = () => new Promise((r) => setTimeout(r, 300));

describe('leader election', () => {
  it('lets only the leader act; a killed leader is replaced after the lease duration and the new one picks up', async () => {
    const config = realistic();
    const a = bench.manager('ctl-a', config, 'ctl-a');
    await bench.until(() => a.isLeader(), 'a to lead');
    const b = bench.manager('ctl-b', config, 'ctl-b');
    const policy = bench.createPolicy('ssh');
    const first = bench.createGrant(bench.knockGrant(policy, '10.6.0.1', { seconds: 60 })).metadata.name;
    const opened = bench.createGrant(bench.knockGrant(policy, '10.6.0.3', { seconds: 60 })).metadata.name;
    await bench.until(() => bench.grant(first)?.status?.phase === 'Pending', 'a reconciles');
    bench.report(opened, 'node-a', 'Applied');
    await bench.until(() => bench.hasEvent('Opened', opened), 'a records Opened');
    // Both campaign for a while: b reads the Lease, never takes it, never acts.
    for (let i = 0; i < 5; i++) {
      bench.clock.advance(2_000);
      await settle();
    }
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    // /readyz: both ready (b's caches are warm), and b's body says it is a standby and who leads.
    await bench.until(() => a.notReady() === undefined && b.notReady() === undefined, 'both ready');
    expect(a.readyNote()).toBe('leader');
    expect(b.readyNote()).toBe('standby: the Lease is held by ctl-a');
    expect(actions('ctl-a').length).toBeGreaterThan(0);
    expect(actions('ctl-b')).toEqual([]);
    const lease = bench.lease()!;
    expect(lease.spec.holderIdentity).toBe('ctl-a');
    expect(lease.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(lease.spec.acquireTime).toMatch(/\.\d{6}Z$/);
    expect(lease.spec.leaseDurationSeconds).toBe(15);

    // a is killed: it neither renews nor releases. While nobody leads, the world moves on.
    await a.stop();
    const killedAt = bench.clock.now();
    bench.report(first, 'node-a', 'Applied');
    const second = bench.createGrant(bench.knockGrant(policy, '10.6.0.2', { seconds: 10 })).metadata.name;
    const took = await bench.advanceUntil(() => b.isLeader(), 1_000, 30, 'b to take over');
    expect(took).toBeGreaterThanOrEqual(13_000); // the lease duration, less b's last observation age
    expect(took).toBeLessThanOrEqual(15_000 + 2 * 2_000);
    expect(bench.lease()!.spec).toMatchObject({ holderIdentity: 'ctl-b', leaseTransitions: 1 });
    // b picks up from the API state: the Applied report made while nobody led, the grant that
    // expired meanwhile (10 s after it was created), and the one that had no finalizer yet.
    await bench.until(() => bench.grant(first)?.status?.phase === 'Active', 'b marks the first Active');
    await bench.until(() => bench.grant(second)?.status?.phase === 'Expired', 'b marks the second Expired');
    expect(bench.clock.now() - killedAt).toBeGreaterThan(10_000);
    expect(actions('ctl-b').length).toBeGreaterThan(0);
    expect(bench.hasEvent('Opened', first)).toBe(true);
    // Level-based Events: b saw `opened` Active too, and recorded nothing twice.
    await b.idle();
    const count = (reason: string, grant: string) =>
      bench.events().filter((e) => e.reason === reason && e.object === `AccessGrant/${grant}`).length;
    expect([count('Opened', opened), count('Opened', first), count('Expired', second)]).toEqual([1, 1, 1]);
    expect(bench.forbidden()).toEqual([]);
  });

  it('stops acting at once when its Lease is taken over, and retakes it only once that holder lapses', async () => {
    const a = bench.manager('ctl-a', realistic(), 'ctl-a');
    await bench.until(() => a.isLeader(), 'a to lead');
    const policy = bench.createPolicy('ssh');
    bench.takeOverLease('ctl-elsewhere');
    const lostAfter = await bench.advanceUntil(() => !a.isLeader(), 500, 10, 'a to notice');
    expect(lostAfter).toBeLessThanOrEqual(2_500); // its next renewal attempt
    const mark = bench.cluster.server.requests.length;
    const name = bench.createGrant(bench.knockGrant(policy, '10.6.1.1', { seconds: 60 })).metadata.name;
    // The other holder is live for 15 s from when a saw it: a does nothing meanwhile.
    for (let i = 0; i < 6; i++) {
      bench.clock.advance(2_000);
      await settle();
    }
    expect(a.isLeader()).toBe(false);
    expect(finalized(name)).toBe(false);
    expect(actions('ctl-a', mark)).toEqual([]);
    // The other holder never renews: after the lease duration a takes the Lease back and acts.
    await bench.advanceUntil(() => a.isLeader(), 1_000, 10, 'a to retake the lapsed lease');
    await bench.until(() => finalized(name), 'a reconciles again');
    // One transition: the intruder's write (made in-process) did not count one, a's take-back did.
    expect(bench.lease()!.spec).toMatchObject({ holderIdentity: 'ctl-a', leaseTransitions: 1 });
  });

  it('stops acting when it cannot renew within the renew deadline (API down), and resumes after', async () => {
    const a = bench.manager('ctl-a', realistic(), 'ctl-a');
    await bench.until(() => a.isLeader(), 'a to lead');
    void bench.cluster.server.faults.stopFor(30_000);
    const lostAfter = await bench.advanceUntil(() => !a.isLeader(), 1_000, 20, 'a to step down');
    expect(lostAfter).toBeLessThanOrEqual(10_000);
    expect(lostAfter).toBeGreaterThanOrEqual(8_000);
    // The API comes back after 30 s; a's own record is still in the Lease, so a renews it.
    await bench.advanceUntil(() => a.isLeader(), 1_000, 40, 'a to lead again');
    const policy = bench.createPolicy('ssh');
    const name = bench.createGrant(bench.knockGrant(policy, '10.6.2.1')).metadata.name;
    await bench.until(() => finalized(name), 'a acts again');
  });

  it('hands over at the next retry when the leader stops and releases the Lease', async () => {
    const config = realistic();
    const a = bench.manager('ctl-a', config, 'ctl-a');
    await bench.until(() => a.isLeader(), 'a to lead');
    const b = bench.manager('ctl-b', config, 'ctl-b');
    bench.clock.advance(2_000);
    await settle();
    expect(b.isLeader()).toBe(false);
    await a.stop({ release: true });
    expect(bench.lease()!.spec.holderIdentity).toBe('');
    const took = await bench.advanceUntil(() => b.isLeader(), 500, 10, 'b to take over');
    expect(took).toBeLessThanOrEqual(2_500);
    const policy = bench.createPolicy('ssh');
    const name = bench.createGrant(bench.knockGrant(policy, '10.6.3.1')).metadata.name;
    await bench.until(() => finalized(name), 'b acts');
  });
});
