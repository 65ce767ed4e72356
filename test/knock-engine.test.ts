import { describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { KnockPolicy, KnockPolicySpec } from '../api/types.js';
import type { InboundPacket, Verdict } from '../sniffer/decision.js';
import { createEngine, type SpaVerifier } from '../sniffer/engine.js';
import { portKey } from '../sniffer/frames/port-key.js';

function policy(name: string, spec: Partial<KnockPolicySpec>): KnockPolicy {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name },
    spec: { grant: { ports: ['22/tcp'], durationSeconds: 30 }, ...spec },
  };
}

const knockA = policy('a', { knock: { sequence: ['7000/tcp', '8000/udp'] } });
const knockB = policy('b', { knock: { sequence: ['8000/udp', '9000/tcp'] } });
const spa = policy('s', {
  spa: { keySecretRef: { name: 'k' }, port: '62201' },
});

function packet(clock: FakeClock, proto: 'tcp' | 'udp', dstPort: number, payload = ''): InboundPacket {
  return {
    src: '10.0.0.2',
    dst: '10.0.0.1',
    family: 4,
    proto,
    srcPort: 40000,
    dstPort,
    tcpFlags: proto === 'tcp' ? 2 : 0,
    payload: Buffer.from(payload),
    at: clock.now(),
  };
}

/** A stand-in verifier: accepts the payload "good", refuses anything else, throws on "boom". */
function fakeVerifier(policy: KnockPolicy): SpaVerifier {
  return {
    verify(p): Verdict {
      if (p.payload.toString() === 'boom') throw new TypeError('secret detail');
      if (p.payload.toString() === 'good') {
        return {
          kind: 'grant',
          policy: policy.metadata.name,
          method: 'spa',
          source: `${p.src}/32`,
          ports: ['22/tcp'],
          durationSeconds: 30,
        };
      }
      return { kind: 'refused', policy: policy.metadata.name, reason: 'bad-hmac', message: 'bad HMAC' };
    },
  };
}

describe('engine', () => {
  it('routes packets by port to knock doors and SPA verifiers; others cost nothing', () => {
    const clock = new FakeClock();
    const engine = createEngine({ policies: [knockA, knockB, spa], spaVerifierFor: fakeVerifier, clock });
    expect(engine.problems()).toEqual([]);
    expect(engine.ports()).toEqual([
      { proto: 'tcp', port: 7000 },
      { proto: 'tcp', port: 9000 },
      { proto: 'udp', port: 8000 },
      { proto: 'udp', port: 62201 },
    ]);
    expect(engine.wants(portKey('tcp', 7000))).toBe(true);
    expect(engine.wants(portKey('udp', 7000))).toBe(false);
    expect(engine.wants(portKey('tcp', 22))).toBe(false);
    expect(engine.handle(packet(clock, 'tcp', 22))).toEqual([]);

    expect(engine.handle(packet(clock, 'tcp', 7000))).toEqual([]);
    // 8000/udp completes a and starts b.
    expect(engine.handle(packet(clock, 'udp', 8000)).map((v) => v.policy)).toEqual(['a']);
    expect(engine.handle(packet(clock, 'tcp', 9000)).map((v) => v.policy)).toEqual(['b']);

    expect(engine.handle(packet(clock, 'udp', 62201, 'good'))).toMatchObject([
      { kind: 'grant', method: 'spa' },
    ]);
    expect(engine.handle(packet(clock, 'udp', 62201, 'junk'))).toMatchObject([
      { kind: 'refused', reason: 'bad-hmac' },
    ]);
  });

  it('turns a throwing verifier into a refusal that does not quote the error', () => {
    const engine = createEngine({ policies: [spa], spaVerifierFor: fakeVerifier, clock: new FakeClock() });
    const [v] = engine.handle(packet(new FakeClock(), 'udp', 62201, 'boom'));
    expect(v).toMatchObject({ kind: 'refused', policy: 's', reason: 'internal-error' });
    expect(v?.kind === 'refused' && v.message).not.toContain('secret detail');
  });

  it('leaves out unusable policies with one line each, and runs the rest', () => {
    const engine = createEngine({
      policies: [
        knockA,
        spa, // no verifier factory
        policy('both', { knock: { sequence: ['1'] }, spa: { keySecretRef: { name: 'k' }, port: '1/udp' } }),
        policy('neither', {}),
        policy('badknock', { knock: { sequence: ['99999'] } }),
        knockA,
      ],
      clock: new FakeClock(),
    });
    expect(engine.problems().map((p) => p.message)).toEqual([
      'policy "s" left out: no SPA verifier is configured',
      'policy "both" left out: exactly one of spec.knock or spec.spa is required',
      'policy "neither" left out: exactly one of spec.knock or spec.spa is required',
      'policy "badknock" left out: knock policy "badknock": sequence: invalid port "99999": must be 1-65535',
      'policy "a" appears twice; the first one is used',
    ]);
    expect(engine.ports()).toEqual([
      { proto: 'tcp', port: 7000 },
      { proto: 'udp', port: 8000 },
    ]);
  });

  it('a verifier factory that throws leaves that policy out', () => {
    const engine = createEngine({
      policies: [spa],
      spaVerifierFor: () => {
        throw new Error('secret "k" has no KEY_BASE64');
      },
      clock: new FakeClock(),
    });
    expect(engine.problems()[0]?.message).toBe('policy "s" left out: secret "k" has no KEY_BASE64');
    expect(engine.wants(portKey('udp', 62201))).toBe(false);
  });

  it('reload keeps attempts of unchanged policies, restarts changed ones, drops removed ones', () => {
    const clock = new FakeClock();
    let built = 0;
    const engine = createEngine({
      policies: [knockA, knockB, spa],
      spaVerifierFor: (p) => (built++, fakeVerifier(p)),
      clock,
    });
    engine.handle(packet(clock, 'tcp', 7000)); // a at stage 1
    engine.handle(packet(clock, 'udp', 8000)); // a completes, b at stage 1
    engine.handle(packet(clock, 'tcp', 7000)); // a at stage 1 again
    const changedB = policy('b', {
      knock: { sequence: ['8000/udp', '9000/tcp'], sequenceTimeoutSeconds: 5 },
    });
    engine.setPolicies([knockA, changedB, spa]);
    expect(built).toBe(1); // the unchanged SPA policy kept its verifier
    expect(engine.handle(packet(clock, 'tcp', 9000))).toEqual([]); // b restarted: no attempt
    expect(engine.handle(packet(clock, 'udp', 8000)).map((v) => v.policy)).toEqual(['a']); // a kept its attempt

    engine.setPolicies([spa]);
    expect(clock.pending()).toBe(0); // the removed doors' timers are gone
    expect(engine.wants(portKey('tcp', 7000))).toBe(false);
    engine.dispose();
    expect(engine.wants(portKey('udp', 62201))).toBe(false);
  });
});
