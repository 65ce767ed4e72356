// The controller's configuration file (FILE:LINE errors, defaults, bounds) and the pure pieces of
// its reconcile: the bounds a grant must fit, the phase a target report leads to, condition
// transition times, retention, MicroTime formatting, and the work queue (dedupe, one reconcile per
// key at a time, backoff on failure, RequeueAfter on the fake clock).

import { describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import { ConfigError } from '../api/config/errors.js';
import type { AccessGrant, KnockPolicy } from '../api/types.js';
import { microTime } from '../controller/leader/microtime.js';
import { checkBounds } from '../controller/reconciler/bounds.js';
import { defaultControllerConfig, parseControllerConfig } from '../controller/reconciler/config.js';
import { WorkQueue } from '../controller/reconciler/queue.js';
import { reportTargets, retainUntil, setCondition, statusFor } from '../controller/reconciler/status.js';

const HEAD = 'apiVersion: knockgate.io/v1alpha1\nkind: ControllerConfig\n';

function configError(text: string): string {
  try {
    parseControllerConfig('ctl.yaml', text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('no error');
}

describe('ControllerConfig file', () => {
  it('fills defaults: single hosts only for manual grants, no security groups, 24 h retention', () => {
    const c = parseControllerConfig('ctl.yaml', HEAD);
    expect(c).toEqual(defaultControllerConfig());
    expect(c.manualGrants.largestPrefix).toEqual({ ipv4: 32, ipv6: 128 });
    expect(c.manualGrants.allowedSecurityGroups).toEqual([]);
    expect(c.retention).toEqual({ seconds: 86_400, maxGrants: 10_000 });
  });

  it('reads every field', () => {
    const c = parseControllerConfig(
      'ctl.yaml',
      `${HEAD}manualGrants:
  largestPrefix: {ipv4: 24, ipv6: 64}
  maxDurationSeconds: 600
  allowedNodes: [node-a]
  allowedSecurityGroups: [{groupId: sg-0123456789abcdef0, region: eu-west-1}]
retention: {seconds: 3600, maxGrants: 5}
revokeTimeoutSeconds: 30
policyGraceSeconds: 5
eventsNamespace: knockgate
leaderElection: {namespace: knockgate, leaseName: ctl, leaseDurationSeconds: 30, renewDeadlineSeconds: 20, retryPeriodSeconds: 5}
`,
    );
    expect(c.manualGrants).toEqual({
      largestPrefix: { ipv4: 24, ipv6: 64 },
      maxDurationSeconds: 600,
      allowedNodes: ['node-a'],
      allowedSecurityGroups: [{ groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' }],
    });
    expect(c.leaderElection).toEqual({
      namespace: 'knockgate',
      leaseName: 'ctl',
      leaseDurationSeconds: 30,
      renewDeadlineSeconds: 20,
      retryPeriodSeconds: 5,
    });
    expect([c.revokeTimeoutSeconds, c.policyGraceSeconds, c.eventsNamespace]).toEqual([30, 5, 'knockgate']);
  });

  it('reports bad input as one FILE:LINE line', () => {
    expect(configError(`${HEAD}manualGrants:\n  largestPrefix:\n    ipv4: 4\n`)).toBe(
      'ctl.yaml:5: manualGrants.largestPrefix.ipv4: must be from 8 to 32, got 4',
    );
    expect(configError(`${HEAD}retention:\n  secs: 10\n`)).toMatch(/^ctl\.yaml:4: retention\.secs: /);
    expect(
      configError(
        `${HEAD}manualGrants:\n  allowedSecurityGroups:\n    - {groupId: sg-1, region: eu-west-1}\n`,
      ),
    ).toMatch(
      /^ctl\.yaml:5: manualGrants\.allowedSecurityGroups\[0\]\.groupId: "sg-1" is not a security group id/,
    );
    expect(
      configError(`${HEAD}leaderElection: {leaseDurationSeconds: 5, renewDeadlineSeconds: 10}\n`),
    ).toMatch(/^ctl\.yaml:3: leaderElection: want leaseDurationSeconds \(5\) > renewDeadlineSeconds \(10\)/);
    expect(configError('kind: ControllerConfig\n')).toMatch(
      /^ctl\.yaml:1: apiVersion: must be knockgate\.io\/v1alpha1/,
    );
    expect(configError(`${HEAD}retention: [\n`)).toMatch(/^ctl\.yaml:\d+: YAML: /);
    expect(configError('')).toBe('ctl.yaml: empty file: want a ControllerConfig');
    expect(configError(`${HEAD}eventsNamespace: "a\\nb"\n`).split('\n')).toHaveLength(1);
  });
});

const NOW = Date.UTC(2026, 0, 1);

function grant(over: Partial<AccessGrant['spec']> = {}): AccessGrant {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'AccessGrant',
    metadata: {
      name: 'g',
      uid: 'u1',
      ownerReferences: [{ apiVersion: 'knockgate.io/v1alpha1', kind: 'KnockPolicy', name: 'ssh', uid: 'p1' }],
    },
    spec: {
      source: '203.0.113.7/32',
      ports: ['22/tcp'],
      expiresAt: new Date(NOW + 60_000).toISOString(),
      policyRef: { name: 'ssh' },
      method: 'knock',
      observedBy: 'node-a',
      targets: { nodes: ['node-a'] },
      ...over,
    },
  };
}

const policy: KnockPolicy = {
  apiVersion: 'knockgate.io/v1alpha1',
  kind: 'KnockPolicy',
  metadata: { name: 'ssh', uid: 'p1' },
  spec: { knock: { sequence: ['1/tcp'] }, grant: { ports: ['22/tcp', '80/tcp'], durationSeconds: 60 } },
};

describe('grant bounds', () => {
  const ctx = { now: NOW, config: defaultControllerConfig(), policy, nodeLabels: () => undefined };
  it('accepts a grant within its policy and names the first excess', () => {
    expect(checkBounds(grant(), ctx)).toBeUndefined();
    expect(checkBounds(grant({ ports: ['22/tcp', '443/tcp'] }), ctx)?.reason).toBe('PolicyMismatch');
    expect(checkBounds(grant({ source: '203.0.113.0/24' }), ctx)?.message).toContain('not a single host');
    // 60 s of duration plus the allowed clock skew, no more.
    expect(checkBounds(grant({ expiresAt: new Date(NOW + 120_000).toISOString() }), ctx)).toBeUndefined();
    expect(checkBounds(grant({ expiresAt: new Date(NOW + 121_000).toISOString() }), ctx)?.message).toContain(
      'more than 60 s ahead',
    );
    expect(
      checkBounds(grant(), { ...ctx, policy: { ...policy, metadata: { name: 'ssh', uid: 'p2' } } })?.reason,
    ).toBe('PolicyReplaced');
    expect(checkBounds(grant(), { ...ctx, policy: undefined })?.reason).toBe('PolicyNotFound');
    const none = {
      ...policy,
      spec: { ...policy.spec, grant: { ...policy.spec.grant, targets: { node: { mode: 'None' as const } } } },
    };
    expect(checkBounds(grant(), { ...ctx, policy: none })?.message).toContain('targets no node');
  });

  it('bounds manual grants by prefix, duration and targets, failing closed by default', () => {
    const manual = grant({ method: 'manual', policyRef: undefined, source: '198.51.100.0/24' });
    expect(checkBounds(manual, ctx)?.message).toContain('wider than /32');
    const config = defaultControllerConfig();
    config.manualGrants.largestPrefix.ipv4 = 24;
    expect(checkBounds(manual, { ...ctx, config })).toBeUndefined();
    const sg = grant({
      method: 'manual',
      policyRef: undefined,
      targets: { awsSecurityGroups: [{ groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' }] },
    });
    expect(checkBounds(sg, { ...ctx, config })?.message).toContain(
      'sg-0123456789abcdef0 is not an allowed target',
    );
  });
});

describe('status rules', () => {
  it('reports targets: Failed first, waiting until all Applied, removal awaited only where applied', () => {
    const g = grant({
      targets: {
        nodes: ['a', 'b'],
        awsSecurityGroups: [{ groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' }],
      },
    });
    expect(reportTargets(g)).toEqual({
      waiting: ['node a', 'node b', 'security group sg-0123456789abcdef0'],
      notRemoved: [], // nobody reported anything open
    });
    g.status = {
      nodes: { a: { state: 'Applied', since: '' }, b: { state: 'Failed', since: '', message: 'boom' } },
      securityGroups: { 'sg-0123456789abcdef0': { state: 'Removed', since: '' } },
    };
    expect(reportTargets(g)).toEqual({
      failed: 'node b: boom',
      waiting: ['node b', 'security group sg-0123456789abcdef0'],
      notRemoved: ['node a'],
    });
  });

  it('keeps a condition transition time while its status holds', () => {
    const first = setCondition(undefined, 'Ready', 'False', 'Waiting', 'w', NOW);
    const same = setCondition(first, 'Ready', 'False', 'Other', 'x', NOW + 5000);
    expect(same[0].lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    const flipped = setCondition(same, 'Ready', 'True', 'Applied', 'y', NOW + 5000);
    expect(flipped[0].lastTransitionTime).toBe('2026-01-01T00:00:05Z');
    const expired = statusFor(grant(), 'Expired', 'Expired', 'expiresAt passed', NOW);
    expect(expired.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['Ready=False', 'Expired=True']);
  });

  it('retains history from the later of expiry and last transition', () => {
    const g = grant();
    expect(retainUntil(g, 1000, NOW)).toBe(NOW + 61_000);
    g.status = { conditions: setCondition(undefined, 'Revoked', 'True', 'Deleted', '', NOW + 100_000) };
    expect(retainUntil(g, 1000, NOW)).toBe(NOW + 101_000);
  });

  it('formats MicroTime with six fractional digits', () => {
    expect(microTime(Date.UTC(2026, 0, 1, 0, 0, 0, 123))).toBe('2026-01-01T00:00:00.123000Z');
    expect(microTime(Date.UTC(2026, 0, 1))).toBe('2026-01-01T00:00:00.000000Z');
  });
});

describe('work queue', () => {
  const tick = () => new Promise((r) => setTimeout(r, 5));

  it('dedupes waiting keys, never runs one key twice at once, and reruns a key changed while running', async () => {
    const clock = new FakeClock();
    const runs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let active = 0;
    let maxActive = 0;
    const q = new WorkQueue({
      name: 't',
      clock,
      reconcile: async (k) => {
        runs.push(k);
        active++;
        maxActive = Math.max(maxActive, active);
        if (runs.length === 1) await gate;
        active--;
      },
    });
    q.add('a');
    q.add('a'); // running: marked dirty
    q.add('a');
    release();
    await q.idle();
    await tick();
    await q.idle();
    expect(runs).toEqual(['a', 'a']);
    expect(maxActive).toBe(1);
  });

  it('retries failures with backoff and honours RequeueAfter, on the clock', async () => {
    const clock = new FakeClock();
    const runs: number[] = [];
    const q = new WorkQueue({
      name: 't',
      clock,
      backoffInitialMs: 1000,
      reconcile: () => {
        runs.push(clock.now());
        if (runs.length === 1) return Promise.reject(new Error('boom'));
        return Promise.resolve(runs.length === 2 ? { requeueAfterMs: 60_000 } : undefined);
      },
    });
    q.add('k');
    await q.idle();
    expect(runs).toHaveLength(1);
    clock.advance(999);
    await q.idle();
    expect(runs).toHaveLength(1);
    clock.advance(300); // 1000 ms backoff plus up to 20 % jitter
    await q.idle();
    expect(runs).toHaveLength(2);
    clock.advance(59_999);
    await q.idle();
    expect(runs).toHaveLength(2);
    clock.advance(1);
    await q.idle();
    expect(runs).toHaveLength(3);
    await q.stop();
    expect(clock.pending()).toBe(0);
  });
});
