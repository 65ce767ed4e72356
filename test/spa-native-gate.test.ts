// The native SPA gate (native/spa_gate.c) against the JavaScript verifier, the reference: on real
// fwknop 2.6.10 client packets (test/fixtures/spa, made with `fwknop --no-rc-file --test`), every
// HMAC type, passphrase and no-HMAC keys, one or many policies on one port, and a fuzz corpus of
// their mutations (each character changed, truncated, HMAC stripped, prefix added, non-base64 bytes,
// random base64 and random bytes) plus the captured seed frames of test/fixtures/frames. For every
// frame: the gate lets it through exactly when some policy's verifier gets past the checks the gate
// makes (length, prefix, alphabet, HMAC), with exactly those policies' bits set; when it refuses, the
// reason is one the verifiers gave. Also: the gate's bounds equal sniffer/spa/limits.ts, and a
// bad key table throws one line that holds no key material.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { KnockPolicy } from '../api/types.js';
import { pcapAddon } from '../sniffer/capture/addon.js';
import { SPA_GATE_REASONS, type SpaGatePort } from '../sniffer/capture/spa-gate.js';
import { createEngine, type Engine } from '../sniffer/engine.js';
import { decodeFrame, toInboundPacket } from '../sniffer/frames/decode.js';
import { DecodedFrame } from '../sniffer/frames/frame.js';
import { LinkType } from '../sniffer/frames/link-type.js';
import { spaKeysFromSecretData } from '../sniffer/spa/keys.js';
import { SPA_GATE_LIMITS, SPA_LIMITS } from '../sniffer/spa/limits.js';
import { createSpaVerifier } from '../sniffer/spa/verifier.js';
import { buildFrame, type Link } from './helpers/capture-frames.js';
import { startCaptureHarness } from './helpers/capture-live.js';
import { readPcap } from './helpers/capture-pcap.js';
import { skipWithoutNetns, Topology } from './helpers/netns.js';
import { corpus, fixtures, policyOf, PORT, prng } from './helpers/spa-corpus.js';

/** The refusals the gate itself can make; any other verdict means the verifier got past it. */
const GATE_REASONS = new Set<string>(SPA_GATE_REASONS);

function engineOf(entries: { policy: KnockPolicy; keys: Record<string, string> }[]): Engine {
  const clock = new FakeClock(Date.parse('2026-12-01T00:00:00Z'));
  const byName = new Map(entries.map((e) => [e.policy.metadata.name, e.keys]));
  const engine = createEngine({
    policies: entries.map((e) => e.policy),
    clock,
    spaVerifierFor: (p) =>
      createSpaVerifier(p, spaKeysFromSecretData(byName.get(p.metadata.name)!), { clock }),
  });
  expect(engine.problems()).toEqual([]);
  return engine;
}

function nativeTable(gate: SpaGatePort[]) {
  return gate.map((g) => ({ port: g.port, keys: g.keys }));
}

const LINKS: Link[] = [{ kind: 'ethernet' }, { kind: 'ethernet', vlanTags: [0x8100] }, { kind: 'sll' }];
const DLT = {
  ethernet: LinkType.Ethernet,
  sll: LinkType.LinuxSll,
  sll2: LinkType.LinuxSll2,
  raw: LinkType.Raw,
};

/** Check the gate against the verifiers on one frame; returns what the gate did. */
function compare(
  engine: Engine,
  frame: Buffer,
  dlt: LinkType,
  what: string,
): 'passed' | 'refused' | 'skipped' {
  const gate = engine.spaGate!();
  const policies = gate.flatMap((g) => g.policies);
  const native = pcapAddon().spaInspect(nativeTable(gate), frame, frame.length, dlt);
  const f = new DecodedFrame();
  const decoded = decodeFrame(frame, frame.length, dlt, f);
  const gated = decoded && f.ipProto === 17 && gate.some((g) => g.port === f.dstPort);
  expect(native.inspected, `${what}: inspected`).toBe(gated);
  if (!gated) return 'skipped';
  const port = gate.find((g) => g.port === f.dstPort)!;
  const verdicts = engine.handle(toInboundPacket(f, Date.now()));
  expect(verdicts.length, what).toBe(port.policies.length);
  const pastGate = verdicts.map((v) => v.kind === 'grant' || !GATE_REASONS.has(v.reason));
  let mask = 0;
  pastGate.forEach((past, i) => (mask |= past ? 1 << port.policies.indexOf(verdicts[i]!.policy!) : 0));
  expect(native.mask, `${what}: policies past the gate (${policies.join(', ')})`).toBe(mask);
  if (mask !== 0) {
    expect(native.reason, what).toBeUndefined();
    return 'passed';
  }
  const reasons = verdicts.map((v) => (v.kind === 'refused' ? v.reason : ''));
  expect(reasons, `${what}: the gate's reason ${native.reason} is one of the verifiers'`).toContain(
    native.reason,
  );
  return 'refused';
}

describe('native SPA gate vs the JavaScript verifier', () => {
  it('has the bounds of sniffer/spa/limits.ts', () => {
    expect(pcapAddon().spaLimits()).toEqual({
      minEncodedMsgSize: SPA_LIMITS.minEncodedMsgSize,
      maxEncodedMsgSize: SPA_LIMITS.maxEncodedMsgSize,
      maxHmacKeyBytes: SPA_LIMITS.maxHmacKeyBytes,
      maxKeyBytes: SPA_LIMITS.maxKeyBytes,
      legacyMinKeyBytes: SPA_LIMITS.legacyMinKeyBytes,
      blockSize: SPA_LIMITS.blockSize,
      saltSize: SPA_LIMITS.saltSize,
      maxKeysPerPort: SPA_GATE_LIMITS.maxKeysPerPort,
      maxPorts: SPA_GATE_LIMITS.maxPorts,
    });
  });

  it('agrees on real fwknop packets and their mutations, one policy per port', () => {
    const rand = prng(1212);
    const payloads = corpus(rand);
    const tally = { passed: 0, refused: 0, skipped: 0 };
    for (const [i, f] of fixtures.entries()) {
      const engine = engineOf([{ policy: policyOf(f, `p${i}`), keys: f.keys }]);
      for (const [j, payload] of payloads.entries()) {
        const link = LINKS[j % LINKS.length]!;
        const v6 = j % 5 === 0;
        const frame = buildFrame({
          proto: 'udp',
          src: v6 ? 'fd00::2' : '10.0.0.2',
          dst: v6 ? 'fd00::1' : '10.0.0.1',
          srcPort: 40000,
          dstPort: PORT,
          payload,
          link,
        });
        tally[compare(engine, frame, DLT[link.kind], `${f.name}, payload ${j}`)]++;
      }
      engine.dispose();
    }
    // Each fixture passes its own policy's gate (and its first mutations do not).
    expect(tally.passed).toBeGreaterThanOrEqual(fixtures.length);
    expect(tally.refused).toBeGreaterThan(payloads.length * fixtures.length * 0.7);
  });

  it('agrees when many policies share the port, and sets the bit of each key that matched', () => {
    // Every fixture's policy on one port, plus a second policy with the first fixture's keys.
    const entries = fixtures.map((f, i) => ({ policy: policyOf(f, `p${i}`), keys: f.keys }));
    entries.push({ policy: policyOf(fixtures[0]!, 'twin'), keys: fixtures[0]!.keys });
    const engine = engineOf(entries);
    const gate = engine.spaGate!();
    expect(gate).toHaveLength(1);
    expect(gate[0]!.policies).toHaveLength(entries.length);
    const payloads = corpus(prng(77));
    let passed = 0;
    for (const [j, payload] of payloads.entries()) {
      const frame = buildFrame({
        proto: 'udp',
        src: '10.0.0.2',
        dst: '10.0.0.1',
        srcPort: 1,
        dstPort: PORT,
        payload,
      });
      if (compare(engine, frame, LinkType.Ethernet, `shared port, payload ${j}`) === 'passed') passed++;
    }
    expect(passed).toBeGreaterThanOrEqual(fixtures.length);
    const first = buildFrame({
      proto: 'udp',
      src: '10.0.0.2',
      dst: '10.0.0.1',
      srcPort: 1,
      dstPort: PORT,
      payload: Buffer.from(fixtures[0]!.packet, 'latin1'),
    });
    const mask = pcapAddon().spaInspect(nativeTable(gate), first, first.length, LinkType.Ethernet).mask!;
    expect(mask & (1 << 0)).not.toBe(0);
    expect(mask & (1 << (entries.length - 1))).not.toBe(0);
    engine.dispose();
  });

  it('agrees on the captured seed frames (real knock, fwknop and knockgate spa traffic)', () => {
    const pcap = readPcap(fileURLToPath(new URL('./fixtures/frames/seeds.pcap', import.meta.url)));
    const main = {
      KEY_BASE64: '7PMV1v+22DPm040/fUFu2A12k5HaNrGQytFUaO3oI3I=',
      HMAC_KEY_BASE64:
        'wwTVJK2LVpGUk2FhYJfgm6MByNiHQf5t6DQMSDSegqUylyUDkaIpJIvKWgJ3ghCbAgP/WgIQ9c3PQ0NXP3zFng==',
    };
    const f = { ...fixtures[2]!, client: { hmacType: '3 (SHA256)' } };
    const engine = engineOf([{ policy: policyOf(f, 'main'), keys: main }]);
    const seen = { passed: 0, refused: 0, skipped: 0 };
    for (const [i, r] of pcap.records.entries())
      seen[compare(engine, r.data, pcap.linkType, `seed frame ${i}`)]++;
    expect(seen.passed).toBeGreaterThan(0);
    engine.dispose();
  });

  it('refuses a bad key table whole, in one line without the key', () => {
    const h = new (pcapAddon().PcapHandle)();
    const secret = Buffer.from('very secret hmac key material');
    const bad = [
      [{ port: 0, keys: [] }],
      [{ port: PORT, keys: [{ hmacType: 9, key: secret, allowMissingHmac: false }] }],
      [{ port: PORT, keys: [{ hmacType: 3, key: Buffer.alloc(129, 1), allowMissingHmac: false }] }],
      [
        {
          port: PORT,
          keys: Array.from({ length: 32 }, () => ({ hmacType: 3, key: secret, allowMissingHmac: false })),
        },
      ],
    ];
    for (const table of bad) {
      let message = '';
      try {
        h.setSpaKeys(table);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^SPA (keys entry|port) \d+/);
      expect(message).not.toContain('secret');
      expect(message).not.toContain('\n');
    }
    h.setSpaKeys([{ port: PORT, keys: [{ hmacType: 3, key: secret, allowMissingHmac: false }] }]);
    h.close();
  });
});

// Live: the capture harness (test/helpers/capture-harness.ts: startSniffer + engine + verifiers) in
// a namespace; real fwknop client packets and tampered ones sent across a veth.
describe.skipIf(skipWithoutNetns('spa-native-gate live'))('native SPA gate on a live capture', () => {
  let net: Topology;
  let dir: string;
  beforeAll(async () => {
    net = await Topology.create(['srv', 'cli']);
    dir = mkdtempSync(join(tmpdir(), 'kg-gate-'));
  });
  afterAll(async () => {
    await net?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const fwknop = (args: string[]) =>
    execFileSync('fwknop', ['--no-rc-file', '--no-save-args', ...args], {
      env: { ...process.env, HOME: dir },
      timeout: 10_000,
    }).toString();
  const keygen = () => {
    const out = fwknop(['--key-gen']);
    return {
      KEY_BASE64: /^KEY_BASE64: (\S+)$/m.exec(out)![1]!,
      HMAC_KEY_BASE64: /^HMAC_KEY_BASE64: (\S+)$/m.exec(out)![1]!,
    };
  };
  const keyArgs = (k: Record<string, string>) => [
    '--key-base64-rijndael',
    k.KEY_BASE64!,
    '--key-base64-hmac',
    k.HMAC_KEY_BASE64!,
  ];

  it('refuses tampered packets in the addon (counted, never delivered) and takes rotated keys without a restart', async () => {
    const srv = net.ns('srv');
    const cli = net.ns('cli');
    const srvIp = srv.addr4['cli']!;
    const cliIp = cli.addr4['srv']!;
    const keysA = keygen();
    const keysB = keygen();
    const policy: KnockPolicy = {
      apiVersion: 'knockgate.io/v1alpha1',
      kind: 'KnockPolicy',
      metadata: { name: 'ssh' },
      spec: {
        spa: { keySecretRef: { name: 'ssh' }, port: `${PORT}/udp` },
        grant: { ports: ['22/tcp'], durationSeconds: 60 },
      },
    };
    const secrets = { ssh: keysA };
    const h = await startCaptureHarness(srv, {
      interfaces: [srv.ifname['cli']!],
      policies: [policy],
      dir,
      secrets,
    });
    const send = (keys: Record<string, string>) =>
      cli.run('fwknop', [
        '--no-rc-file',
        '--no-save-args',
        '-A',
        'tcp/22',
        '-a',
        cliIp,
        '-D',
        srvIp,
        ...keyArgs(keys),
      ]);
    const counts = async (pred: (c: Record<string, number>) => boolean, what: string) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const before = h.events.length;
        h.signal('SIGUSR2');
        const e = await h.waitFor(
          (x, i = h.events.indexOf(x)) => x.event === 'gate' && i >= before,
          'gate counts',
        );
        if (pred(e.counts!)) return e.counts!;
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}: ${JSON.stringify(e.counts)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    // Tampered: real packets with one character changed, sent as UDP datagrams from cli.
    const file = join(dir, 'pkt');
    fwknop(['-A', 'tcp/22', '-a', cliIp, '-D', '127.0.0.1', '--test', '-B', file, ...keyArgs(keysA)]);
    const real = readFileSync(file, 'latin1').trim();
    const tampered = Array.from({ length: 20 }, (_, i) => {
      const at = 5 + i * 7;
      return real.slice(0, at) + (real[at] === 'A' ? 'B' : 'A') + real.slice(at + 1);
    });
    const py = `import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor l in sys.argv[2:]: s.sendto(l.encode('latin1'),(sys.argv[1],${PORT}))`;
    await cli.run('python3', ['-c', py, srvIp, ...tampered]);
    await counts((c) => c['bad-hmac']! >= 20, '20 tampered packets refused by the gate');
    await send(keysA);
    await h.waitFor((e) => e.event === 'verdict' && e.verdict?.kind === 'grant', 'the real packet granted');
    expect(h.verdicts().filter((e) => e.verdict?.reason === 'bad-hmac')).toEqual([]);

    // Rotation: keys B replace keys A on the running capture (no restart, same filter).
    writeFileSync(join(dir, `secrets-${srv.netns}.json`), JSON.stringify({ ssh: keysB }));
    const before = h.events.length;
    h.signal('SIGHUP');
    const reloaded = await h.waitFor(
      (e) => e.event === 'reloaded' && h.events.indexOf(e) >= before,
      'reload',
    );
    expect(reloaded.filters).toEqual(h.ready.filters);
    const refusedBefore = (await counts(() => true, 'counts'))['bad-hmac']!;
    await send(keysA);
    await counts((c) => c['bad-hmac']! > refusedBefore, 'the old key refused by the gate');
    const grants = h.grants().length;
    await send(keysB);
    await h.waitFor(() => h.grants().length > grants, 'the new key granted');
    expect(h.verdicts().filter((e) => e.verdict?.reason === 'bad-hmac')).toEqual([]);
  }, 90_000);
});
