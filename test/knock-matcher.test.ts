import { describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { KnockPolicy, KnockSpec } from '../api/types.js';
import type { InboundPacket } from '../sniffer/decision.js';
import { createKnockMatcher, KnockSpecError, oneTimeSequenceDigest } from '../sniffer/knock/index.js';
import { createHash } from 'node:crypto';

function policy(name: string, knock: KnockSpec, ports = ['22/tcp'], durationSeconds = 60): KnockPolicy {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name },
    spec: { knock, grant: { ports, durationSeconds } },
  };
}

const SYN = 0x02;
const ACK = 0x10;

function setup(policies: KnockPolicy[], maxTrackedSources?: number) {
  const clock = new FakeClock();
  const m = createKnockMatcher(policies, { clock, maxTrackedSources });
  const knock = (spec: string, src = '10.0.0.2', tcpFlags = SYN) => {
    const [port, proto = 'tcp'] = spec.split('/');
    const p: InboundPacket = {
      src,
      dst: '10.0.0.1',
      family: src.includes(':') ? 6 : 4,
      proto: proto as 'tcp' | 'udp',
      srcPort: 40000,
      dstPort: Number(port),
      tcpFlags: proto === 'tcp' ? tcpFlags : 0,
      payload: Buffer.alloc(0),
      at: clock.now(),
    };
    return m.match(p);
  };
  const seq = (specs: string[], src?: string) => specs.map((s) => knock(s, src)).flat();
  return { clock, m, knock, seq };
}

const ssh = policy('ssh', { sequence: ['7000/tcp', '8000/udp', '9000/tcp'], sequenceTimeoutSeconds: 10 });

describe('knock matcher', () => {
  it('opens on the exact sequence with the grant template, source as a host CIDR', () => {
    const { seq } = setup([ssh]);
    expect(seq(['7000/tcp', '8000/udp'])).toEqual([]);
    expect(seq(['9000/tcp'])).toEqual([
      {
        kind: 'grant',
        policy: 'ssh',
        method: 'knock',
        source: '10.0.0.2/32',
        ports: ['22/tcp'],
        durationSeconds: 60,
      },
    ]);
    expect(seq(['7000/tcp', '8000/udp', '9000/tcp'], 'fd00::2')[0]?.source).toBe('fd00::2/128');
  });

  it('needs the right protocol: 8000/tcp is not 8000/udp', () => {
    const { seq } = setup([ssh]);
    expect(seq(['7000/tcp', '8000/tcp', '9000/tcp'])).toEqual([]);
  });

  it('times out counted from the first knock, on the packet time', () => {
    const { clock, knock } = setup([ssh]);
    knock('7000/tcp');
    clock.advance(4000);
    knock('8000/udp');
    clock.advance(5999);
    expect(knock('9000/tcp')).toHaveLength(1); // 9.999 s after the first knock
    knock('7000/tcp');
    clock.advance(4000);
    knock('8000/udp');
    clock.advance(6000);
    expect(knock('9000/tcp')).toEqual([]); // exactly 10 s: too late
  });

  it('drops expired attempts on the clock, without a packet, and leaves no timer behind', () => {
    const { clock, knock, m } = setup([ssh]);
    knock('7000/tcp', '10.0.0.2');
    clock.advance(3000);
    knock('7000/tcp', '10.0.0.3');
    expect(m.tracked()).toBe(2);
    clock.advance(7000);
    expect(m.tracked()).toBe(1);
    clock.advance(3000);
    expect(m.tracked()).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it('a wrong knock on one of the policy ports resets the source', () => {
    const { seq } = setup([ssh]);
    expect(seq(['7000/tcp', '9000/tcp', '8000/udp', '9000/tcp'])).toEqual([]);
    expect(seq(['7000/tcp', '8000/udp', '8000/udp', '9000/tcp'])).toHaveLength(1); // repeat: ignored
  });

  it('a wrong knock that is the first port starts a new attempt (unlike knockd)', () => {
    const { seq } = setup([ssh]);
    expect(seq(['7000/tcp', '8000/udp', '7000/tcp', '8000/udp', '9000/tcp'])).toHaveLength(1);
  });

  it('knocks on ports outside the policy neither advance nor reset it', () => {
    const { seq } = setup([ssh]);
    expect(seq(['7000/tcp', '22/tcp', '8000/udp', '7001/tcp', '9000/udp', '9000/tcp'])).toHaveLength(1);
  });

  it('ignores an immediate repeat of the knock just made (retransmitted SYN)', () => {
    const { seq } = setup([ssh]);
    expect(seq(['7000/tcp', '7000/tcp', '7000/tcp', '8000/udp', '8000/udp', '9000/tcp'])).toHaveLength(1);
  });

  it('still honours sequences with the same port twice in a row: 7000,7000,8000', () => {
    const { seq } = setup([policy('twice', { sequence: ['7000', '7000', '8000'] })]);
    expect(seq(['7000/tcp', '8000/tcp'])).toEqual([]);
    expect(seq(['7000/tcp', '7000/tcp', '8000/tcp'])).toHaveLength(1);
    // A third 7000 at the last stage is the repeat of the knock just made: ignored.
    expect(seq(['7000/tcp', '7000/tcp', '7000/tcp', '8000/tcp'])).toHaveLength(1);
  });

  it('tracks sources separately', () => {
    const { knock } = setup([ssh]);
    knock('7000/tcp', '10.0.0.2');
    knock('7000/tcp', '10.0.0.3');
    knock('8000/udp', '10.0.0.3');
    knock('8000/udp', '10.0.0.2');
    expect(knock('9000/tcp', '10.0.0.2')[0]?.source).toBe('10.0.0.2/32');
    expect(knock('9000/tcp', '10.0.0.3')[0]?.source).toBe('10.0.0.3/32');
  });

  it('tcpFlags: packets with other flags are ignored, they neither count nor reset', () => {
    const { knock } = setup([policy('flags', { sequence: ['7000', '8000'], tcpFlags: ['syn', '!ack'] })]);
    knock('7000/tcp', '10.0.0.2', SYN);
    expect(knock('8000/tcp', '10.0.0.2', SYN | ACK)).toEqual([]); // ignored, not a reset
    expect(knock('7000/tcp', '10.0.0.2', ACK)).toEqual([]); // ignored
    expect(knock('8000/tcp', '10.0.0.2', SYN)).toHaveLength(1);
    expect(knock('7000/tcp', '10.0.0.3', SYN | ACK)).toEqual([]);
    expect(knock('8000/tcp', '10.0.0.3', SYN)).toEqual([]); // never started
  });

  it('tcpFlags: a rule the client cannot meet (syn,ack while knock sends SYN) never opens', () => {
    const { seq } = setup([policy('synack', { sequence: ['7000', '8000'], tcpFlags: ['syn', 'ack'] })]);
    expect(seq(['7000/tcp', '8000/tcp'])).toEqual([]);
  });

  it('tcpFlags apply to TCP knocks only', () => {
    const { seq } = setup([policy('mixed', { sequence: ['7000/udp', '8000/tcp'], tcpFlags: ['syn'] })]);
    expect(seq(['7000/udp', '8000/tcp'])).toHaveLength(1);
  });

  it('one-time sequences: each opens with a claim whose digest names the policy and sequence', () => {
    const { seq, clock } = setup([
      policy('once', {
        oneTimeSequences: [['1000', '2000', '3000'], ['1000', '2000', '4000/udp'], ['5000']],
      }),
    ]);
    const a = seq(['1000/tcp', '2000/tcp', '4000/udp']);
    expect(a).toHaveLength(1);
    const expected = createHash('sha256').update('once\n1000/tcp,2000/tcp,4000/udp').digest('hex');
    expect(a[0]?.claim?.digest).toBe(expected);
    expect(a[0]?.claim?.digest).toBe(oneTimeSequenceDigest('once', ['1000/tcp', '2000/tcp', '4000/udp']));
    expect(a[0]!.claim!.expiresAt.getTime()).toBeGreaterThan(clock.now() + 50 * 365 * 86400_000);
    const b = seq(['1000/tcp', '2000/tcp', '3000/tcp']);
    expect(b[0]?.claim?.digest).toBe(oneTimeSequenceDigest('once', ['1000/tcp', '2000/tcp', '3000/tcp']));
    expect(seq(['5000/tcp'])[0]?.claim?.digest).toBe(oneTimeSequenceDigest('once', ['5000/tcp']));
    // The same sequence again gives the same digest: the ReplayStore is what refuses it.
    expect(seq(['5000/tcp'])[0]?.claim?.digest).toBe(oneTimeSequenceDigest('once', ['5000/tcp']));
  });

  it('many policies at once: one packet advances (and completes) several', () => {
    const a = policy('a', { sequence: ['7000', '8000'] }, ['22/tcp']);
    const b = policy('b', { sequence: ['9000', '8000'] }, ['443/tcp']);
    const c = policy('c', { sequence: ['7000', '6000', '8000'] }, ['80/tcp']);
    const { knock } = setup([a, b, c]);
    knock('9000/tcp');
    knock('7000/tcp');
    const done = knock('8000/tcp');
    // 7000 is not one of b's ports, so it neither advanced nor reset b.
    expect(done.map((d) => d.policy).sort()).toEqual(['a', 'b']);
    // c was reset by 8000 (its port, not expected).
    expect(knock('6000/tcp')).toEqual([]);
  });

  it('keeps at most maxTrackedSources, evicting the oldest first', () => {
    const { knock, m } = setup([ssh], 100);
    for (let i = 0; i < 1000; i++) knock('7000/tcp', `10.1.${i >> 8}.${i & 255}`);
    expect(m.tracked()).toBe(100);
    // The oldest were evicted: 10.1.0.0 must start again; the newest can carry on.
    knock('8000/udp', '10.1.0.0');
    expect(knock('9000/tcp', '10.1.0.0')).toEqual([]);
    knock('8000/udp', '10.1.3.231');
    expect(knock('9000/tcp', '10.1.3.231')).toHaveLength(1);
  });

  it('stays bounded under a flood with the default bound', () => {
    const { knock, m, clock } = setup([ssh]);
    for (let i = 0; i < 70_000; i++) knock('7000/tcp', `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    expect(m.tracked()).toBe(65_536);
    clock.advance(10_000);
    expect(m.tracked()).toBe(0);
  });

  it('refuses unusable policies with one line naming the policy', () => {
    const clock = new FakeClock();
    const bad: [KnockSpec, RegExp][] = [
      [{}, /exactly one of sequence or oneTimeSequences/],
      [{ sequence: ['1', '2'], oneTimeSequences: [['3']] }, /exactly one/],
      [{ sequence: [] }, /non-empty/],
      [{ sequence: ['70000'] }, /1-65535/],
      [{ sequence: ['7000/icmp'] }, /invalid port/],
      [{ sequence: Array(65).fill('1') }, /more than 64/],
      [{ sequence: ['1'], sequenceTimeoutSeconds: 0 }, /sequenceTimeoutSeconds/],
      [{ sequence: ['1'], tcpFlags: ['syn', '!syn'] }, /both require and forbid/],
      [{ sequence: ['1'], tcpFlags: ['sin'] }, /unknown TCP flag "sin"/],
      [{ oneTimeSequences: [] }, /oneTimeSequences/],
    ];
    for (const [knock, message] of bad) {
      expect(() => createKnockMatcher([policy('p1', knock)], { clock })).toThrow(KnockSpecError);
      expect(() => createKnockMatcher([policy('p1', knock)], { clock })).toThrow(message);
    }
    expect(() => createKnockMatcher([policy('p1', { sequence: ['1'] }, [])], { clock })).toThrow(
      /grant.ports/,
    );
    expect(() => createKnockMatcher([policy('p1', { sequence: ['1'] }, ['22/tcp'], 0)], { clock })).toThrow(
      /durationSeconds/,
    );
  });

  it('dispose cancels the expiry timer', () => {
    const { knock, m, clock } = setup([ssh]);
    knock('7000/tcp');
    expect(clock.pending()).toBe(1);
    m.dispose();
    expect(clock.pending()).toBe(0);
    expect(m.tracked()).toBe(0);
  });
});
