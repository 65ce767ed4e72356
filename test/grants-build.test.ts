// Building AccessGrants from sniffer decisions: DESIGN.md's names, expiry on the clock, bounds, the
// Kubernetes ownerReference seam, and the one-line audit trail.

import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import { createLogger } from '../api/log.js';
import type { AccessDecision } from '../sniffer/decision.js';
import { addressHex, buildGrant, GrantBuildError, grantName } from '../controller/grants/build.js';
import { auditGrant, auditRefusal } from '../controller/grants/audit.js';
import { checkGrant } from '../controller/grants/validate.js';

const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 0));

function decision(over: Partial<AccessDecision> = {}): AccessDecision {
  return {
    kind: 'grant',
    policy: 'ssh',
    method: 'spa',
    source: '10.0.0.2/32',
    ports: ['22/tcp'],
    durationSeconds: 60,
    ...over,
  };
}

describe('grant names', () => {
  it('spells addresses in hex: 8 characters for IPv4, 32 for IPv6 in any textual form', () => {
    expect(addressHex('10.0.0.2')).toBe('0a000002');
    expect(addressHex('203.0.113.7')).toBe('cb007107');
    expect(addressHex('fd00::2')).toBe('fd000000000000000000000000000002');
    expect(addressHex('FD00:0:0::2')).toBe('fd000000000000000000000000000002');
    expect(addressHex('::')).toBe('0'.repeat(32));
    expect(addressHex('::ffff:10.0.0.2')).toBe('00000000000000000000ffff0a000002');
    expect(() => addressHex('10.0.0')).toThrow(GrantBuildError);
  });

  it('names knock grants <policy>-<hex of source> and SPA grants spa-<16 hex of sha256>', () => {
    expect(grantName('knock', 'ssh', '10.0.0.2/32')).toBe('ssh-0a000002');
    expect(grantName('knock', 'ssh', 'fd00::2/128')).toBe('ssh-fd000000000000000000000000000002');
    // Local-mode grants on Kubernetes carry the node: one grant per node that saw the request.
    expect(grantName('knock', 'ssh', '10.0.0.2/32', 'node-a')).toBe('ssh-0a000002-node-a');
    expect(grantName('spa', 'ssh', '10.0.0.2', 'node-a')).toMatch(/^spa-[0-9a-f]{16}$/);
    expect(grantName('spa', 'ssh', '10.0.0.2', 'node-a')).not.toBe(grantName('spa', 'ssh', '10.0.0.2'));
    expect(grantName('spa', 'ssh', '10.0.0.2', 'node-a')).not.toBe(
      grantName('spa', 'ssh', '10.0.0.2', 'node-b'),
    );
    const longNode = `n${'x'.repeat(240)}.example`;
    expect(grantName('knock', 'ssh', '10.0.0.2', longNode)).toMatch(/^ssh-0a000002-[0-9a-f]{16}$/);
    const spa = grantName('spa', 'ssh', '10.0.0.2/32');
    expect(spa).toBe(`spa-${createHash('sha256').update('ssh\n0a000002').digest('hex').slice(0, 16)}`);
    expect(spa).toMatch(/^spa-[0-9a-f]{16}$/);
    // Same source and policy → same name (a repeat extends); another policy or source → another name.
    expect(grantName('spa', 'ssh', '10.0.0.2')).toBe(spa);
    expect(grantName('spa', 'rdp', '10.0.0.2')).not.toBe(spa);
    expect(grantName('spa', 'ssh', '10.0.0.3')).not.toBe(spa);
  });

  it('refuses a name that would not be DNS-1123', () => {
    expect(() => grantName('knock', 'SSH', '10.0.0.2')).toThrow(
      'policy "SSH": metadata.name "SSH-0a000002" is not a lowercase DNS-1123 name',
    );
    expect(() => grantName('knock', 'x'.repeat(250), '10.0.0.2')).toThrow(GrantBuildError);
  });
});

describe('buildGrant', () => {
  it('fills every field from the decision, the clock and the context', () => {
    const grant = buildGrant(decision({ user: 'alice', ports: ['22:TCP', '22/tcp', '80'] }), {
      clock,
      node: 'node-a',
    });
    expect(grant).toEqual({
      apiVersion: 'knockgate.io/v1alpha1',
      kind: 'AccessGrant',
      metadata: { name: grantName('spa', 'ssh', '10.0.0.2') },
      spec: {
        source: '10.0.0.2/32',
        ports: ['22/tcp', '80/tcp'],
        expiresAt: '2026-01-01T12:01:00.000Z',
        policyRef: { name: 'ssh' },
        method: 'spa',
        observedBy: 'node-a',
        user: 'alice',
        targets: { nodes: ['node-a'] },
      },
    });
    expect(checkGrant(grant)).toBe(grant);
  });

  it('takes resolved targets and, on Kubernetes, an ownerReference to the policy', () => {
    const targets = {
      nodes: ['a', 'b'],
      awsSecurityGroups: [{ groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' }],
    };
    const grant = buildGrant(decision({ method: 'knock', source: 'fd00::7' }), {
      clock,
      node: 'a',
      targets,
      policyUid: 'u-1',
    });
    expect(grant.metadata.name).toBe('ssh-fd000000000000000000000000000007');
    expect(grant.spec.source).toBe('fd00::7/128');
    expect(grant.spec.targets).toEqual(targets);
    expect(grant.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'knockgate.io/v1alpha1',
        kind: 'KnockPolicy',
        name: 'ssh',
        uid: 'u-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  it('refuses out-of-bounds decisions with one line naming the policy (fail closed)', () => {
    const ctx = { clock, node: 'a' };
    expect(() => buildGrant(decision({ source: '10.0.0.0/24' }), ctx)).toThrow(
      'policy "ssh": source: "10.0.0.0/24" is not a single host',
    );
    expect(() => buildGrant(decision({ durationSeconds: 0 }), ctx)).toThrow(
      'policy "ssh": duration 0s is not 1-604800 seconds',
    );
    expect(() => buildGrant(decision({ durationSeconds: 1e9 }), ctx)).toThrow(GrantBuildError);
    expect(() => buildGrant(decision({ ports: [] }), ctx)).toThrow('a grant opens 1-64 ports, not 0');
    expect(() => buildGrant(decision({ ports: ['70000/tcp'] }), ctx)).toThrow(
      'policy "ssh": invalid port "70000/tcp": must be 1-65535',
    );
  });
});

describe('audit lines', () => {
  function capture(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    return { logger: createLogger({ destination }), lines };
  }

  it('writes one structured line per open, extend, expire and revoke', () => {
    const { logger, lines } = capture();
    const grant = buildGrant(decision({ method: 'knock' }), { clock, node: 'a' });
    for (const event of ['open', 'extend', 'expire'] as const) auditGrant(logger, event, grant);
    auditGrant(logger, 'revoke', grant, 'knockgate revoke');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({
      event: 'open',
      grant: 'ssh-0a000002',
      source: '10.0.0.2/32',
      ports: ['22/tcp'],
      policy: 'ssh',
      method: 'knock',
      expiresAt: '2026-01-01T12:01:00.000Z',
      msg: 'open ssh-0a000002: 10.0.0.2/32 22/tcp until 2026-01-01T12:01:00.000Z',
    });
    expect(lines.map((l) => l.event)).toEqual(['open', 'extend', 'expire', 'revoke']);
    expect(lines[3]).toMatchObject({ reason: 'knockgate revoke' });
  });

  it('writes one line per refusal with its reason', () => {
    const { logger, lines } = capture();
    auditRefusal(
      logger,
      { kind: 'refused', policy: 'ssh', reason: 'replay', message: 'SPA packet already used' },
      '10.0.0.2',
    );
    expect(lines).toEqual([
      expect.objectContaining({
        event: 'refuse',
        policy: 'ssh',
        reason: 'replay',
        source: '10.0.0.2',
        msg: 'refuse: SPA packet already used',
      }),
    ]);
  });
});
