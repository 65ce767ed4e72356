// The knock door's capture path (feedFrame / engine.handleFrame: state keyed by the address bytes,
// no InboundPacket per packet) and its bounded ring of attempts: the same grants as the
// InboundPacket path, one state per source whichever path fed it, and the bound held under floods
// that mix new sources, resets and completions.

import { describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { KnockPolicy, KnockSpec } from '../api/types.js';
import type { InboundPacket, Verdict } from '../sniffer/decision.js';
import { createEngine } from '../sniffer/engine.js';
import { decodeFrame, toInboundPacket } from '../sniffer/frames/decode.js';
import { DecodedFrame } from '../sniffer/frames/frame.js';
import { LinkType } from '../sniffer/frames/link-type.js';
import { parseSourceText } from '../sniffer/frames/source-key.js';
import { createKnockDoor } from '../sniffer/knock/index.js';
import { SourceIndex } from '../sniffer/knock/source-index.js';
import { buildFrame } from './helpers/capture-frames.js';

function policy(name: string, knock: KnockSpec): KnockPolicy {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name },
    spec: { knock, grant: { ports: ['22/tcp'], durationSeconds: 60 } },
  };
}

const ssh = policy('ssh', {
  sequence: ['7000/tcp', '8000/udp', '9000/tcp'],
  sequenceTimeoutSeconds: 10,
  tcpFlags: ['syn'],
});

/** Decode a frame from `src` to `spec` ("7000/tcp") into a fresh DecodedFrame. */
function frameOf(spec: string, src: string, flags = 0x02): DecodedFrame {
  const [port, proto = 'tcp'] = spec.split('/') as [string, 'tcp' | 'udp' | undefined];
  const v4 = !src.includes(':');
  const buf = buildFrame({
    proto: proto ?? 'tcp',
    src,
    dst: v4 ? '10.0.0.1' : 'fd00::1',
    srcPort: 40000,
    dstPort: Number(port),
    flags,
  });
  const f = new DecodedFrame();
  expect(decodeFrame(buf, buf.length, LinkType.Ethernet, f)).toBe(true);
  return f;
}

describe('source index', () => {
  const sources = [
    '10.0.0.2',
    '0.0.0.0',
    '255.255.255.255',
    '192.168.1.200',
    'fd00::2',
    '::',
    '::1',
    '::a00:2',
    'fd00:1:2:3:4:5:6:7',
    '2001:db8::ff00:42:8329',
    '::ffff:a00:1',
    'fe80::1:0:0:1',
  ];

  it('finds an address fed from a frame by the text toInboundPacket makes of it, and back', () => {
    const index = new SourceIndex();
    sources.forEach((src, i) => {
      const f = frameOf('7000/tcp', src);
      index.setProbeFromFrame(f);
      expect(index.get()).toBe(-1);
      index.set(i);
      expect(index.setProbeFromText(toInboundPacket(f, 0).src, f.family)).toBe(true);
      expect(index.get()).toBe(i);
    });
    // 10.0.0.2 and ::a00:2 share their last word: the family keeps them apart.
    expect(index.count).toBe(sources.length);
    sources.forEach((src, i) => {
      index.setProbeFromText(src, src.includes(':') ? 6 : 4);
      expect(index.get()).toBe(i);
      index.delete();
      expect(index.get()).toBe(-1);
    });
    expect(index.count).toBe(0);
  });

  it('reads other spellings of an address as the same address, and refuses what is not one', () => {
    expect(parseSourceText('FD00:0:0::2', 6)).toEqual(parseSourceText('fd00::2', 6));
    expect(parseSourceText('::ffff:10.0.0.1', 6)).toEqual(parseSourceText('::ffff:a00:1', 6));
    expect(parseSourceText('10.0.0.1', 4)).toEqual([10, 0, 0, 1]);
    for (const text of ['10.0.0', '10.0.0.256', '1.2.3.04x', 'fe80::1%eth0', '', 'fd00::1::2', 'g::1'])
      for (const family of [4, 6] as const) expect(parseSourceText(text, family)).toBeUndefined();
    expect(parseSourceText('fd00::1', 4)).toBeUndefined();
    expect(parseSourceText('10.0.0.1', 6)).toBeUndefined();
  });

  it('stays exact through growth and many deletions (against a Map)', () => {
    const index = new SourceIndex();
    const model = new Map<string, number>();
    let seed = 12345;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    const key = (n: number) =>
      n & 1 ? `fd00::${(n >>> 1).toString(16)}` : `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
    for (let i = 0; i < 50_000; i++) {
      const text = key(rand() % 6000);
      index.setProbeFromText(text, text.includes(':') ? 6 : 4);
      const op = rand() % 3;
      if (op === 0) {
        index.set(i);
        model.set(text, i);
      } else if (op === 1) {
        index.delete();
        model.delete(text);
      }
      expect(index.get()).toBe(model.get(text) ?? -1);
    }
    expect(index.count).toBe(model.size);
    for (const [text, v] of model) {
      index.setProbeFromText(text, text.includes(':') ? 6 : 4);
      expect(index.get()).toBe(v);
    }
  });
});

describe('knock door, capture path', () => {
  it('grants from frames as from InboundPackets, with the source as a host CIDR', () => {
    for (const src of ['10.0.0.2', 'fd00::2']) {
      const door = createKnockDoor(ssh, { clock: new FakeClock() });
      const at = 1_000;
      expect(door.feedFrame(frameOf('7000/tcp', src), 7000, at)).toBeUndefined();
      expect(door.feedFrame(frameOf('8000/udp', src), 0x10000 + 8000, at)).toBeUndefined();
      const d = door.feedFrame(frameOf('9000/tcp', src), 9000, at);
      expect(d).toMatchObject({
        kind: 'grant',
        policy: 'ssh',
        method: 'knock',
        source: src.includes(':') ? `${src}/128` : `${src}/32`,
        ports: ['22/tcp'],
      });
      expect(door.tracked).toBe(0);
      door.dispose();
    }
  });

  it('ignores a hand-made packet whose source is not an address (nothing to track or grant)', () => {
    const door = createKnockDoor(ssh, { clock: new FakeClock() });
    const p = (src: string, family: 4 | 6): InboundPacket => ({
      src,
      dst: '10.0.0.1',
      family,
      proto: 'tcp',
      srcPort: 1,
      dstPort: 7000,
      tcpFlags: 0x02,
      payload: Buffer.alloc(0),
      at: 0,
    });
    for (const [src, family] of [
      ['not-an-ip', 4],
      ['fd00::1', 4],
      ['10.0.0.1', 6],
      ['fe80::1%eth0', 6],
    ] as const)
      expect(door.feed(p(src, family), 7000)).toBeUndefined();
    expect(door.tracked).toBe(0);
  });

  it('ignores frames whose TCP flags do not match, as the packet path does', () => {
    const door = createKnockDoor(ssh, { clock: new FakeClock() });
    expect(door.feedFrame(frameOf('7000/tcp', '10.0.0.2', 0x10), 7000, 0)).toBeUndefined();
    expect(door.tracked).toBe(0);
  });

  it('keeps one attempt per source whichever path fed it (engine.handle and handleFrame)', () => {
    const clock = new FakeClock();
    const engine = createEngine({ policies: [ssh], clock });
    const viaFrame = (spec: string, src: string) => {
      const out: Verdict[] = [];
      engine.handleFrame(frameOf(spec, src), clock.now(), (v, p) => {
        expect(p.src).toBe(src);
        out.push(v);
      });
      return out;
    };
    const viaPacket = (spec: string, src: string) =>
      engine.handle(toInboundPacket(frameOf(spec, src), clock.now()));
    for (const src of ['10.9.8.7', 'fd00:9::8:7']) {
      expect(viaFrame('7000/tcp', src)).toEqual([]);
      expect(viaPacket('8000/udp', src)).toEqual([]);
      expect(viaFrame('9000/tcp', src)).toMatchObject([{ kind: 'grant', policy: 'ssh' }]);
      expect(viaPacket('7000/tcp', src)).toEqual([]);
      expect(viaFrame('8000/udp', src)).toEqual([]);
      expect(viaPacket('9000/tcp', src)).toMatchObject([{ kind: 'grant', policy: 'ssh' }]);
    }
    engine.dispose();
  });

  it('holds its bound under a flood mixing new sources, resets and completions, and expires it all', () => {
    const clock = new FakeClock();
    const max = 1000;
    const door = createKnockDoor(ssh, { clock, maxTrackedSources: max });
    const pkt = (src: string, dstPort: number, proto: 'tcp' | 'udp' = 'tcp'): InboundPacket => ({
      src,
      dst: '10.0.0.1',
      family: 4,
      proto,
      srcPort: 1,
      dstPort,
      tcpFlags: proto === 'tcp' ? 0x02 : 0,
      payload: Buffer.alloc(0),
      at: clock.now(),
    });
    const k7000 = 7000;
    const k8000 = 0x10000 + 8000;
    const k9000 = 9000;
    let grants = 0;
    for (let i = 0; i < 20_000; i++) {
      const src = `10.2.${(i >> 8) & 255}.${i & 255}`;
      door.feed(pkt(src, k7000), k7000);
      if (i % 3 === 0) {
        door.feed(pkt(src, 8000, 'udp'), k8000);
        // A first knock out of turn: the attempt ends and a new one starts (a dead slot behind).
        if (i % 2 === 0) door.feed(pkt(src, k7000), k7000);
      } else if (i % 5 === 0) {
        // A wrong knock that starts nothing: the attempt ends.
        door.feed(pkt(src, k9000), k9000);
      }
      if (i % 7 === 0) {
        door.feed(pkt(src, k7000), k7000);
        door.feed(pkt(src, 8000, 'udp'), k8000);
        if (door.feed(pkt(src, k9000), k9000)) grants++;
      }
      expect(door.tracked).toBeLessThanOrEqual(max);
    }
    expect(grants).toBe(Math.ceil(20_000 / 7));
    // Full, but for the very last source, whose sequence completed (19,999 is a multiple of 7).
    expect(door.tracked).toBe(max - 1);
    // The newest sources are the ones kept: the last one can still finish, the first cannot.
    const last = `10.2.${(19_998 >> 8) & 255}.${19_998 & 255}`; // restarted: one knock made
    door.feed(pkt(last, 8000, 'udp'), k8000);
    expect(door.feed(pkt(last, 9000), k9000)).toBeDefined();
    const first = '10.2.0.1';
    door.feed(pkt(first, 8000, 'udp'), k8000);
    expect(door.feed(pkt(first, 9000), k9000)).toBeUndefined();
    clock.advance(10_000);
    expect(door.tracked).toBe(0);
    expect(clock.pending()).toBe(0);
    door.dispose();
  });

  it('completes a real sequence whose knocks arrive among a flood of spoofed first knocks', () => {
    const clock = new FakeClock();
    const engine = createEngine({ policies: [ssh], clock });
    const real = ['10.5.0.1', 'fd00:5::1'];
    const granted = new Set<string>();
    const flood = frameOf('7000/tcp', '10.0.0.0');
    const src = flood.buf.subarray(flood.srcOffset, flood.srcOffset + 4);
    for (let i = 0; i < 60_000; i++) {
      src.writeUInt32BE((0x0b000000 + i) >>> 0);
      engine.handleFrame(flood, clock.now(), () => expect.fail('a spoofed first knock granted'));
      if (i % 1000 === 0) {
        const stage = (i / 1000) % 3;
        for (const r of real)
          engine.handleFrame(frameOf(['7000/tcp', '8000/udp', '9000/tcp'][stage]!, r), clock.now(), (v) => {
            if (v.kind === 'grant') granted.add(v.source);
          });
      }
    }
    expect([...granted].sort()).toEqual(['10.5.0.1/32', 'fd00:5::1/128']);
    engine.dispose();
  });
});
