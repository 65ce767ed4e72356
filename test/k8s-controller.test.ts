// knockgate controller against the Kubernetes API emulator on a FakeClock: phases and conditions
// (Pending → Active when every targeted node reports Applied, Failed when one reports Failed,
// Expired at expiresAt), refusals (a grant beyond its policy, a manual grant beyond the
// controller's bounds), retention of expired grants (time, then count, oldest first), ReplayClaim
// garbage collection, the revoke finalizer with a simulated agent, and core/v1 Events.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AccessGrant } from '../api/types.js';
import { Registry } from 'prom-client';
import { FINALIZER } from '../controller/reconciler/grant-reconciler.js';
import { generationName, HISTORY_PER_NAME } from '../controller/kube/generations.js';
import { activeGrantsByTarget, createControllerMetrics } from '../controller/reconciler/metrics.js';
import type { ControllerManager } from '../controller/reconciler/manager.js';
import { ControllerBench } from './helpers/k8s-controller-harness.js';

let bench: ControllerBench;

beforeEach(async () => {
  bench = new ControllerBench();
  await bench.start();
});

afterEach(async () => {
  await bench.stop();
});

async function leader(m: ControllerManager): Promise<ControllerManager> {
  await bench.until(() => m.isLeader(), 'the controller to lead');
  return m;
}

const phase = (name: string) => bench.grant(name)?.status?.phase;
const condition = (g: AccessGrant | undefined, type: string) =>
  g?.status?.conditions?.find((c) => c.type === type);

describe('grants active by target', () => {
  it('counts Active grants once per kind of target they open, "none" for neither', () => {
    const g = (phase: string, targets: AccessGrant['spec']['targets']) =>
      ({ spec: { targets }, status: { phase } }) as unknown as AccessGrant;
    const sg = { groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' };
    expect(
      activeGrantsByTarget([
        g('Active', { nodes: ['node-a'] }),
        g('Active', { nodes: ['node-a', 'node-b'], awsSecurityGroups: [sg] }),
        g('Active', { awsSecurityGroups: [sg] }),
        g('Active', { nodes: [] }),
        g('Pending', { nodes: ['node-a'] }),
        g('Expired', { awsSecurityGroups: [sg] }),
      ]),
    ).toEqual({ node: 2, securityGroup: 2, none: 1 });
  });
});

describe('grant phases', () => {
  it('adds its finalizer, is Pending until the node reports Applied, Active after, Expired at expiresAt', async () => {
    const metrics = createControllerMetrics(new Registry(), false);
    await leader(bench.manager('ctl-a', bench.config(), undefined, metrics));
    const policy = bench.createPolicy('ssh');
    const g = bench.createGrant(bench.knockGrant(policy, '10.1.0.2', { seconds: 60 }));
    const name = g.metadata.name;
    await bench.until(() => phase(name) === 'Pending', 'Pending');
    expect(bench.grant(name)!.metadata.finalizers).toEqual([FINALIZER]);
    expect(condition(bench.grant(name), 'Ready')).toMatchObject({
      status: 'False',
      reason: 'WaitingForTargets',
    });

    bench.report(name, 'node-a', 'Applied');
    await bench.until(() => phase(name) === 'Active', 'Active');
    expect(condition(bench.grant(name), 'Ready')).toMatchObject({ status: 'True', reason: 'Applied' });
    await bench.until(() => bench.hasEvent('Opened', name), 'the Opened event');
    expect(await metrics.registry.metrics()).toContain('knockgate_controller_grants_active{target="node"} 1');

    // Not a moment before expiresAt...
    bench.clock.advance(59_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(phase(name)).toBe('Active');
    // ...and Expired at it, on the controller's own timer.
    bench.clock.advance(1_000);
    await bench.until(() => phase(name) === 'Expired', 'Expired');
    const expired = bench.grant(name)!;
    expect(condition(expired, 'Expired')).toMatchObject({ status: 'True', reason: 'Expired' });
    expect(condition(expired, 'Ready')).toMatchObject({ status: 'False' });
    expect(condition(expired, 'Expired')!.lastTransitionTime).toBe(
      expired.spec.expiresAt.replace('.000Z', 'Z'),
    );
    await bench.until(() => bench.hasEvent('Expired', name), 'the Expired event');
    const ev = bench.events().find((e) => e.reason === 'Opened')!;
    expect(ev).toMatchObject({ type: 'Normal', object: `AccessGrant/${name}` });
    // All of it as the controller's least-privileged service account.
    expect(bench.forbidden()).toEqual([]);
    const text = await metrics.registry.metrics();
    expect(text).toContain('knockgate_controller_leader 1');
    expect(text).toContain('knockgate_controller_grants{phase="Expired"} 1');
    expect(text).toContain('knockgate_controller_grants_active{target="node"} 0');
    expect(text).toContain('knockgate_controller_phase_transitions_total{phase="Active"} 1');
    expect(text).toContain('knockgate_controller_events_total{reason="Opened"} 1');
  });

  it('retries writes that fail with 500 or 429 (backoff on the clock) and gets there', async () => {
    await leader(bench.manager('ctl-a'));
    const policy = bench.createPolicy('ssh');
    bench.cluster.server.faults.fail({
      code: 500,
      count: 2,
      method: 'PATCH',
      pathIncludes: '/accessgrants/',
    });
    bench.cluster.server.faults.fail({
      code: 429,
      count: 1,
      method: 'POST',
      pathIncludes: '/events',
      retryAfterSeconds: 1,
    });
    const name = bench.createGrant(bench.knockGrant(policy, '10.1.0.9')).metadata.name;
    await bench.advanceUntil(() => phase(name) === 'Pending', 1_000, 40, 'Pending despite the 500s');
    bench.report(name, 'node-a', 'Applied');
    await bench.advanceUntil(() => bench.hasEvent('Opened', name), 1_000, 40, 'Opened despite the 429');
    expect(phase(name)).toBe('Active');
    const failed = bench.cluster.server.requests.filter((r) => r.status === 500 || r.status === 429);
    expect(failed).toHaveLength(3);
  });

  it('converges after its watches are dropped and the history compacted while a node reported', async () => {
    const m = await leader(bench.manager('ctl-a'));
    const policy = bench.createPolicy('ssh');
    const name = bench.createGrant(bench.knockGrant(policy, '10.1.0.7')).metadata.name;
    await bench.until(() => phase(name) === 'Pending', 'Pending');
    bench.cluster.server.faults.dropWatches();
    bench.report(name, 'node-a', 'Applied'); // in the gap: no watch is open
    bench.cluster.server.faults.compact(); // and resuming from the old resourceVersion gets 410
    await bench.advanceUntil(() => phase(name) === 'Active', 1_000, 30, 'Active after the relist');
    expect(m.isLeader()).toBe(true);
  });

  it('is Active only when every targeted node reports Applied, and Failed when one reports Failed', async () => {
    await leader(bench.manager('ctl-a'));
    const policy = bench.createPolicy('web', {
      targets: { node: { mode: 'Selector', nodeSelector: { 'knockgate.io/door': 'yes' } } },
    });
    // Selector policies are checked against Node labels: make the two nodes exist.
    const nodes = bench.cluster.server.api.type('', 'v1', 'nodes')!;
    for (const n of ['node-a', 'node-b', 'node-c'])
      bench.cluster.server.api.create(
        nodes,
        undefined,
        { apiVersion: 'v1', kind: 'Node', metadata: { name: n, labels: { 'knockgate.io/door': 'yes' } } },
        {
          fieldValidation: 'Strict',
          dryRun: false,
        },
      );
    const two = bench.createGrant(bench.knockGrant(policy, '10.1.0.3', { nodes: ['node-a', 'node-b'] }))
      .metadata.name;
    const other = bench.createGrant(bench.knockGrant(policy, '10.1.0.4', { nodes: ['node-a', 'node-c'] }))
      .metadata.name;
    await bench.until(() => phase(two) === 'Pending' && phase(other) === 'Pending', 'both Pending');

    bench.report(two, 'node-a', 'Applied');
    await new Promise((r) => setTimeout(r, 200));
    expect(phase(two)).toBe('Pending');
    expect(bench.grant(two)!.status!.message).toContain('node node-b');
    bench.report(two, 'node-b', 'Applied');
    await bench.until(() => phase(two) === 'Active', 'Active with both nodes');

    bench.report(other, 'node-a', 'Applied');
    bench.report(other, 'node-c', 'Failed', 'nft: no such table');
    await bench.until(() => phase(other) === 'Failed', 'Failed');
    expect(condition(bench.grant(other), 'Failed')).toMatchObject({ status: 'True', reason: 'TargetFailed' });
    expect(bench.grant(other)!.status!.message).toBe('node node-c: nft: no such table');
    await bench.until(() => bench.hasEvent('Failed', other), 'the Failed event');
    expect(bench.events().find((e) => e.reason === 'Failed')!.type).toBe('Warning');
    // A terminal phase is never undone by a later report.
    bench.report(other, 'node-c', 'Applied');
    await new Promise((r) => setTimeout(r, 200));
    expect(phase(other)).toBe('Failed');
  });

  it('refuses a grant that exceeds its policy: extra port, longer duration, other node, other security group', async () => {
    await leader(bench.manager('ctl-a'));
    const policy = bench.createPolicy('ssh', {
      ports: ['22/tcp'],
      durationSeconds: 60,
      targets: { awsSecurityGroups: [{ groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' }] },
    });
    const bad: [string, AccessGrant][] = [
      ['extra port', bench.knockGrant(policy, '10.2.0.1', { ports: ['22/tcp', '3389/tcp'] })],
      ['too long', bench.knockGrant(policy, '10.2.0.2', { seconds: 3600 })],
      ['other node', bench.knockGrant(policy, '10.2.0.3', { nodes: ['node-a', 'node-b'] })],
    ];
    const sg = bench.knockGrant(policy, '10.2.0.4');
    sg.spec.targets = {
      nodes: ['node-a'],
      awsSecurityGroups: [{ groupId: 'sg-00000000000000000', region: 'eu-west-1' }],
    };
    bad.push(['other security group', sg]);
    for (const [, g] of bad) bench.createGrant(g);
    for (const [what, g] of bad) {
      const name = g.metadata.name;
      await bench.until(() => phase(name) === 'Failed', `${what}: Failed`);
      expect(condition(bench.grant(name), 'Refused'), what).toMatchObject({
        status: 'True',
        reason: 'PolicyMismatch',
      });
      await bench.until(() => bench.hasEvent('Refused', name), `${what}: Refused event`);
    }
    expect(bench.grant(bad[0][1].metadata.name)!.status!.message).toContain('are not a subset of 22/tcp');
    expect(bench.grant(bad[1][1].metadata.name)!.status!.message).toContain('more than 60 s ahead');
    expect(bench.grant(bad[2][1].metadata.name)!.status!.message).toContain('not "node-b"');
    expect(bench.grant(sg.metadata.name)!.status!.message).toContain('sg-00000000000000000');
  });

  it('bounds manual grants by its configuration: largest prefix, allowed nodes and security groups', async () => {
    const config = bench.config({
      manualGrants: {
        largestPrefix: { ipv4: 24, ipv6: 64 },
        maxDurationSeconds: 3600,
        allowedNodes: ['node-a'],
        allowedSecurityGroups: [{ groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' }],
      },
    });
    await leader(bench.manager('ctl-a', config));
    bench.createGrant(bench.manualGrant('office', '192.0.2.0/24', 600, { nodes: ['node-a'] }));
    bench.createGrant(bench.manualGrant('too-wide', '192.0.0.0/16', 600, { nodes: ['node-a'] }));
    bench.createGrant(bench.manualGrant('wrong-node', '192.0.2.9/32', 600, { nodes: ['node-b'] }));
    bench.createGrant(
      bench.manualGrant('wrong-sg', '192.0.2.9/32', 600, {
        awsSecurityGroups: [{ groupId: 'sg-0fedcba9876543210', region: 'eu-west-1' }],
      }),
    );
    bench.createGrant(bench.manualGrant('too-long', '192.0.2.9/32', 7200, { nodes: ['node-a'] }));
    bench.createGrant(
      bench.manualGrant('v6', 'fd00:1::/64', 600, {
        awsSecurityGroups: [{ groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' }],
      }),
    );
    await bench.until(
      () => phase('office') === 'Pending' && phase('v6') === 'Pending',
      'in-bounds manual grants Pending',
    );
    for (const [name, text] of [
      ['too-wide', 'wider than /24'],
      ['wrong-node', 'node "node-b" is not an allowed target'],
      ['wrong-sg', 'security group sg-0fedcba9876543210 is not an allowed target'],
      ['too-long', 'more than 3600 s ahead'],
    ]) {
      await bench.until(() => phase(name) === 'Failed', `${name}: Failed`);
      expect(bench.grant(name)!.status!.message).toContain(text);
      expect(condition(bench.grant(name), 'Refused')).toMatchObject({ reason: 'OutOfBounds' });
    }
    await bench.until(() => bench.hasEvent('Refused', 'too-wide'), 'Refused event');
  });

  it('waits for a policy it has not seen yet, then refuses the grant after the grace period', async () => {
    await leader(bench.manager('ctl-a', bench.config({ policyGraceSeconds: 30 })));
    const ghost = bench.knockGrant(
      {
        apiVersion: 'knockgate.io/v1alpha1',
        kind: 'KnockPolicy',
        metadata: { name: 'ghost', uid: '0000' },
        spec: { grant: { ports: ['22/tcp'], durationSeconds: 60 } },
      },
      '10.3.0.1',
    );
    delete ghost.metadata.ownerReferences;
    const name = bench.createGrant(ghost).metadata.name;
    await bench.until(() => bench.grant(name)?.metadata.finalizers?.length === 1, 'the finalizer');
    await bench.until(() => phase(name) === 'Pending', 'Pending while waiting for the policy');
    expect(condition(bench.grant(name), 'Ready')).toMatchObject({ reason: 'WaitingForPolicy' });
    await bench.advanceUntil(() => phase(name) === 'Failed', 5_000, 10, 'PolicyNotFound');
    expect(condition(bench.grant(name), 'Refused')).toMatchObject({ reason: 'PolicyNotFound' });
  });
});

describe('retention and garbage collection', () => {
  it('deletes expired grants when their retention ends, and the oldest first beyond the count bound', async () => {
    await leader(bench.manager('ctl-a', bench.config({ retention: { seconds: 3600, maxGrants: 2 } })));
    const policy = bench.createPolicy('ssh');
    const names: string[] = [];
    for (let i = 1; i <= 4; i++) {
      names.push(
        bench.createGrant(bench.knockGrant(policy, `10.4.0.${i}`, { seconds: 10 * i })).metadata.name,
      );
    }
    await bench.until(() => names.every((n) => phase(n) === 'Pending'), 'all Pending');
    // The first three expire (10, 20, 30 s): with at most two kept, the oldest goes.
    await bench.advanceUntil(
      () => names.slice(0, 3).every((n) => phase(n) === 'Expired' || !bench.grant(n)),
      5_000,
      10,
      'three expired',
    );
    await bench.until(() => !bench.grant(names[0]), 'the oldest expired grant deleted');
    expect(bench.grantNames()).toEqual(names.slice(1).sort());
    // The fourth expires: again two kept, the oldest of the history deleted.
    await bench.advanceUntil(() => phase(names[3]) === 'Expired', 5_000, 10, 'fourth expired');
    await bench.until(() => !bench.grant(names[1]), 'the next oldest deleted');
    expect(bench.grantNames()).toEqual(names.slice(2).sort());
    // Retention: an hour after the last one expired, nothing is left.
    await bench.advanceUntil(
      () => bench.grantNames().length === 0,
      600_000,
      8,
      'history emptied by retention',
    );
    expect(bench.grant(names[3])).toBeUndefined();
  });

  it("keeps at most HISTORY_PER_NAME expired generations of one name, so a client's next knock finds a free one", async () => {
    await leader(bench.manager('ctl-a', bench.config({ retention: { seconds: 3600, maxGrants: 100 } })));
    const policy = bench.createPolicy('ssh');
    const base = bench.knockGrant(policy, '10.4.1.1', { seconds: 10 }).metadata.name;
    const total = HISTORY_PER_NAME + 2;
    const names: string[] = [];
    for (let g = 0; g < total; g++) {
      const grant = bench.knockGrant(policy, '10.4.1.1', { seconds: 10 + g });
      grant.metadata.name = generationName(base, g);
      names.push(bench.createGrant(grant).metadata.name);
    }
    const other = bench.createGrant(bench.knockGrant(policy, '10.4.1.2', { seconds: 5 })).metadata.name;
    await bench.advanceUntil(
      () => [...names, other].every((n) => phase(n) === 'Expired' || !bench.grant(n)),
      5_000,
      10,
      'all expired',
    );
    // The two that expired first go (generations 0 and 1); the other name's single entry stays.
    await bench.until(() => !bench.grant(names[0]) && !bench.grant(names[1]), 'the oldest two deleted');
    expect(bench.grantNames()).toEqual([...names.slice(2), other].sort());
  });

  it('deletes ReplayClaims after their expiresAt, not before', async () => {
    await leader(bench.manager('ctl-a'));
    bench.createClaim('a'.repeat(64), 60);
    bench.createClaim('b'.repeat(64), 600);
    await new Promise((r) => setTimeout(r, 300));
    expect(bench.claimNames()).toHaveLength(2);
    bench.clock.advance(59_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(bench.claimNames()).toHaveLength(2);
    bench.clock.advance(1_000);
    await bench.until(() => bench.claimNames().length === 1, 'the first claim collected');
    expect(bench.claimNames()).toEqual(['b'.repeat(64)]);
    await bench.advanceUntil(() => bench.claimNames().length === 0, 60_000, 12, 'the second claim collected');
  });
});

describe('the revoke finalizer', () => {
  it('marks a deleted grant Revoked and keeps it until the targeted nodes report Removed', async () => {
    await leader(bench.manager('ctl-a'));
    const policy = bench.createPolicy('ssh', {
      durationSeconds: 600,
      targets: { node: { mode: 'Selector', nodeSelector: { 'knockgate.io/door': 'yes' } } },
    });
    const nodes = bench.cluster.server.api.type('', 'v1', 'nodes')!;
    for (const n of ['node-a', 'node-b'])
      bench.cluster.server.api.create(
        nodes,
        undefined,
        { apiVersion: 'v1', kind: 'Node', metadata: { name: n, labels: { 'knockgate.io/door': 'yes' } } },
        {
          fieldValidation: 'Strict',
          dryRun: false,
        },
      );
    const name = bench.createGrant(
      bench.knockGrant(policy, '10.5.0.1', { seconds: 600, nodes: ['node-a', 'node-b'] }),
    ).metadata.name;
    await bench.until(() => phase(name) === 'Pending', 'Pending');
    bench.report(name, 'node-a', 'Applied');
    bench.report(name, 'node-b', 'Applied');
    await bench.until(() => phase(name) === 'Active', 'Active');

    bench.deleteGrant(name);
    await bench.until(() => phase(name) === 'Revoked', 'Revoked');
    expect(bench.grant(name)!.metadata.deletionTimestamp).toBeDefined();
    expect(condition(bench.grant(name), 'Revoked')).toMatchObject({ status: 'True', reason: 'Deleted' });
    await bench.until(() => bench.hasEvent('Revoked', name), 'the Revoked event');
    // The agents close their doors and say so; the object goes only after the last one.
    bench.report(name, 'node-a', 'Removed');
    await new Promise((r) => setTimeout(r, 300));
    expect(bench.grant(name)).toBeDefined();
    bench.report(name, 'node-b', 'Removed');
    await bench.until(() => !bench.grant(name), 'the grant gone');
  });

  it('lets a deleted grant go after revokeTimeoutSeconds when a node never answers', async () => {
    await leader(bench.manager('ctl-a', bench.config({ revokeTimeoutSeconds: 20 })));
    const policy = bench.createPolicy('ssh', { durationSeconds: 600 });
    const name = bench.createGrant(bench.knockGrant(policy, '10.5.0.2', { seconds: 600 })).metadata.name;
    await bench.until(() => bench.grant(name)?.metadata.finalizers?.includes(FINALIZER), 'the finalizer');
    bench.report(name, 'node-a', 'Applied');
    await bench.until(() => phase(name) === 'Active', 'Active');
    bench.deleteGrant(name);
    await bench.until(() => phase(name) === 'Revoked', 'Revoked');
    bench.clock.advance(19_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(bench.grant(name)).toBeDefined();
    await bench.advanceUntil(() => !bench.grant(name), 1_000, 5, 'let go after the timeout');

    // A node that never reported the grant opened nothing: its deletion is not held for it.
    const quiet = bench.createGrant(bench.knockGrant(policy, '10.5.0.9', { seconds: 600 })).metadata.name;
    await bench.until(() => phase(quiet) === 'Pending', 'Pending');
    bench.deleteGrant(quiet);
    await bench.until(() => !bench.grant(quiet), 'let go at once');
    expect(bench.hasEvent('Revoked', quiet)).toBe(true);
  });

  it('lets an expired grant go at once, and revokes the grants of a deleted policy', async () => {
    await leader(bench.manager('ctl-a'));
    const policy = bench.createPolicy('ssh', { durationSeconds: 600 });
    const old = bench.createGrant(bench.knockGrant(policy, '10.5.0.3', { seconds: 5 })).metadata.name;
    const live = bench.createGrant(bench.knockGrant(policy, '10.5.0.4', { seconds: 600 })).metadata.name;
    await bench.until(() => phase(old) === 'Pending' && phase(live) === 'Pending', 'Pending');
    bench.report(live, 'node-a', 'Applied');
    await bench.advanceUntil(() => phase(old) === 'Expired', 5_000, 3, 'Expired');
    bench.deleteGrant(old);
    await bench.until(() => !bench.grant(old), 'the expired grant gone');
    expect(bench.hasEvent('Revoked', old)).toBe(false);

    // Deleting the policy garbage-collects its grants (ownerReference): the live one is revoked.
    bench.deletePolicy('ssh');
    await bench.until(() => phase(live) === 'Revoked', 'Revoked by the policy deletion');
    bench.report(live, 'node-a', 'Removed');
    await bench.until(() => !bench.grant(live), 'gone');
  });
});
