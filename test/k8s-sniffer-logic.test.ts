// The sniffer role's pure parts on a fake clock: the token bucket, the caps (live grants per policy,
// writes per second; a slot held while a write is in flight, freed at expiry or on failure), which
// policies run on a node, how targets resolve, and Secret data decoding.

import { describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { KnockPolicy } from '../api/types.js';
import { GrantCaps } from '../controller/sniffer/caps.js';
import {
  clusterNeverGrant,
  labelsMatch,
  resolveTargets,
  secretFingerprint,
  secretStrings,
  selectPolicies,
} from '../controller/sniffer/selection.js';
import { TokenBucket } from '../controller/sniffer/token-bucket.js';

function policy(name: string, extra: Partial<KnockPolicy['spec']> = {}): KnockPolicy {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name, uid: `uid-${name}` },
    spec: {
      knock: { sequence: ['7000/tcp', '8000/tcp'] },
      grant: { ports: ['22/tcp'], durationSeconds: 60 },
      ...extra,
    },
  };
}

const node = (name: string, labels: Record<string, string>) => ({ metadata: { name, labels } });

describe('TokenBucket', () => {
  it('allows a burst, then the rate, on the injected clock', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(clock, 2, 3);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    clock.advance(499);
    expect(bucket.take()).toBe(false);
    clock.advance(1);
    expect(bucket.take()).toBe(true);
    clock.advance(60_000);
    expect(bucket.available()).toBe(3);
  });

  it('gains nothing from a clock that steps back, and refuses a nonsense rate', () => {
    let t = Date.UTC(2026, 0, 1);
    const clock = { now: () => t, setTimeout: () => ({ cancel: () => undefined }) };
    const bucket = new TokenBucket(clock, 1, 1);
    expect(bucket.take()).toBe(true);
    t -= 3_600_000;
    expect(bucket.take()).toBe(false);
    t += 999;
    expect(bucket.take()).toBe(false);
    t += 1;
    expect(bucket.take()).toBe(true);
    expect(() => new TokenBucket(clock, 0, 1)).toThrow(/must be positive/);
  });
});

describe('GrantCaps', () => {
  it('caps live grants per policy; an expired grant frees its slot; extensions are not counted twice', () => {
    const clock = new FakeClock();
    const caps = new GrantCaps({ clock, maxLiveGrantsPerPolicy: 2, grantsPerSecond: 100, grantsBurst: 100 });
    const now = clock.now();
    expect(caps.reserve('p', 'g1')).toBeUndefined();
    caps.commit('p', 'g1', now + 10_000);
    expect(caps.reserve('p', 'g2')).toBeUndefined();
    caps.commit('p', 'g2', now + 20_000);
    expect(caps.reserve('p', 'g3')).toBe('max-grants-per-policy');
    expect(caps.reserve('q', 'g3')).toBeUndefined(); // another policy has its own count
    expect(caps.reserve('p', 'g1')).toBeUndefined(); // g1 extends
    caps.commit('p', 'g1', now + 30_000);
    clock.advance(20_000); // g2 expired
    expect(caps.liveCount('p')).toBe(1);
    expect(caps.reserve('p', 'g3')).toBeUndefined();
  });

  it('holds a slot while a write is in flight and gives it back when the write fails', () => {
    const clock = new FakeClock();
    const caps = new GrantCaps({ clock, maxLiveGrantsPerPolicy: 1, grantsPerSecond: 100, grantsBurst: 100 });
    expect(caps.reserve('p', 'a')).toBeUndefined();
    expect(caps.reserve('p', 'b')).toBe('max-grants-per-policy'); // a is in flight
    caps.release('p', 'a');
    expect(caps.reserve('p', 'b')).toBeUndefined();
    caps.commit('p', 'b', clock.now() + 1000);
    caps.release('p', 'b'); // a committed grant is not released by a later failure
    expect(caps.liveCount('p')).toBe(1);
  });

  it('takes a token per write and refuses over the rate', () => {
    const clock = new FakeClock();
    const caps = new GrantCaps({ clock, maxLiveGrantsPerPolicy: 100, grantsPerSecond: 1, grantsBurst: 2 });
    expect([caps.reserve('p', 'a'), caps.reserve('p', 'b'), caps.reserve('p', 'c')]).toEqual([
      undefined,
      undefined,
      'rate-limited',
    ]);
    expect(caps.liveCount('p')).toBe(2); // the refused one holds no slot
    clock.advance(1000);
    expect(caps.reserve('p', 'c')).toBeUndefined();
  });
});

describe('policy selection and targets', () => {
  it('matches labels like matchLabels; an empty selector matches every node', () => {
    expect(labelsMatch(undefined, {})).toBe(true);
    expect(labelsMatch({}, undefined)).toBe(true);
    expect(labelsMatch({ role: 'edge' }, { role: 'edge', zone: 'a' })).toBe(true);
    expect(labelsMatch({ role: 'edge' }, { role: 'db' })).toBe(false);
    expect(labelsMatch({ role: 'edge' }, undefined)).toBe(false);
  });

  it('runs the valid policies matching the node, reports invalid ones, and none without a Node', () => {
    const all = [
      policy('b-all'),
      policy('a-edge', { nodeSelector: { role: 'edge' } }),
      policy('db', { nodeSelector: { role: 'db' } }),
      { ...policy('broken'), spec: { grant: { ports: ['22/tcp'], durationSeconds: 60 } } } as KnockPolicy,
    ];
    const here = selectPolicies(all, node('n1', { role: 'edge' }));
    expect(here.policies.map((p) => p.metadata.name)).toEqual(['a-edge', 'b-all']);
    expect(here.invalid).toHaveLength(1);
    expect(here.invalid[0]).toMatch(/^KnockPolicy broken: /);
    expect(selectPolicies(all, undefined).policies).toEqual([]);
  });

  it('resolves Local, Selector and None targets and copies the security groups', () => {
    const nodes = [node('n2', { role: 'edge' }), node('n1', { role: 'edge' }), node('n3', { role: 'db' })];
    const sg = { groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' };
    expect(resolveTargets(policy('p'), 'n1', nodes)).toEqual({ nodes: ['n1'] });
    const selector = policy('p', {
      grant: {
        ports: ['22/tcp'],
        durationSeconds: 60,
        targets: { node: { mode: 'Selector', nodeSelector: { role: 'edge' } }, awsSecurityGroups: [sg] },
      },
    });
    const targets = resolveTargets(selector, 'n3', nodes);
    expect(targets).toEqual({ nodes: ['n1', 'n2'], awsSecurityGroups: [sg] });
    expect(targets.awsSecurityGroups![0]).not.toBe(sg);
    const none = policy('p', {
      grant: { ports: ['22/tcp'], durationSeconds: 60, targets: { node: { mode: 'None' } } },
    });
    expect(resolveTargets(none, 'n1', nodes)).toEqual({ nodes: [] });
  });
});

describe('cluster never-grant set', () => {
  it('holds every node address and pod CIDR, and skips what does not parse', () => {
    const set = clusterNeverGrant([
      {
        metadata: { name: 'n1' },
        spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:244::/64'] },
        status: {
          addresses: [
            { type: 'InternalIP', address: '10.1.0.5' },
            { type: 'Hostname', address: 'n1' },
            { type: 'ExternalIP', address: '2001:db8::5' },
          ],
        },
      },
      { metadata: { name: 'n2' }, spec: { podCIDR: 'garbage' } },
    ]);
    for (const a of ['10.1.0.5', '10.244.1.9', 'fd00:244::7', '2001:db8::5']) expect(set.has(a)).toBe(true);
    for (const a of ['10.1.0.6', '10.244.2.1', '2001:db8::6']) expect(set.has(a)).toBe(false);
  });
});

describe('Secret data', () => {
  it('decodes base64 values; a bad one is named by its key, never quoted', () => {
    const secret = { metadata: { name: 's' }, data: { KEY_BASE64: Buffer.from('a2V5').toString('base64') } };
    expect(secretStrings(secret)).toEqual({ KEY_BASE64: 'a2V5' });
    expect(() => secretStrings({ metadata: { name: 's' }, data: { KEY: 'not base64!' } })).toThrow(
      'Secret s: data.KEY is not base64',
    );
  });

  it('fingerprints change with the data and not with its order', () => {
    const a = secretFingerprint({ metadata: { name: 's' }, data: { A: 'eA==', B: 'eQ==' } });
    expect(secretFingerprint({ metadata: { name: 's' }, data: { B: 'eQ==', A: 'eA==' } })).toBe(a);
    expect(secretFingerprint({ metadata: { name: 's' }, data: { A: 'eg==', B: 'eQ==' } })).not.toBe(a);
    expect(secretFingerprint(undefined)).toBe('absent');
  });
});
