// The SPA codec and verifier on their own: round trips for every digest and HMAC type, both key
// forms, legacy mode, the message types, the refusals, and the verifier's policy checks on a
// FakeClock. Packets made by the real fwknop client (test/fixtures/spa) pin the wire format even
// where fwknop is not installed; test/spa-fwknop-client.test.ts drives the client itself.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { KnockPolicy, SpaSpec, GrantTemplate } from '../api/types.js';
import type { AccessDecision, InboundPacket, Refusal, Verdict } from '../sniffer/decision.js';
import { MemoryReplayStore, ReplayStoreFullError } from '../sniffer/replay-memory.js';
import { b64DecodeBytes, b64DecodeStrict, b64EncodeNoPad } from '../sniffer/spa/base64.js';
import { decodeSpa, type SpaDecodeOptions } from '../sniffer/spa/decode.js';
import { digestB64 } from '../sniffer/spa/digest.js';
import { encodeSpa, SpaEncodeError, type SpaEncodeOptions, type SpaRequest } from '../sniffer/spa/encode.js';
import { decryptSpa, deriveKeyIv, encryptSpa } from '../sniffer/spa/encryption.js';
import { SpaHmac } from '../sniffer/spa/hmac.js';
import { spaKeysFromSecretData, SpaKeyError, type SpaKeys } from '../sniffer/spa/keys.js';
import { B64_SALTED_PREFIX } from '../sniffer/spa/limits.js';
import { DIGEST_TYPES, type DigestType, type EncryptionMode } from '../sniffer/spa/types.js';
import { parseIpv4, SourceMatcher } from '../sniffer/spa/source-match.js';
import { createSpaVerifier, SpaPolicyError } from '../sniffer/spa/verifier.js';
import { CidrSet } from '../api/addresses.js';

const KEY = Buffer.from('yc4kOxn0Vu5ouLQG3ahkJL6dQbkCUFfM+dgIrzdE1P0=', 'base64');
const HMAC_KEY = Buffer.from(
  'Tp3QpLzXAydJZDAtSz2BRuJjBNQKdp/+wbCC8xxn3PQ7zVybs9eQzaBgWmzV0UQ5WDHWu5hhdpyW2oc5YZb+zg==',
  'base64',
);
const T0 = Date.UTC(2026, 0, 1);
const NOW_S = T0 / 1000;

interface FixturePacket {
  name: string;
  keys: Record<string, string>;
  encryptionMode: EncryptionMode;
  packet: string;
  client: {
    randValue: string;
    username: string;
    timestamp: number;
    message: string;
    natAccess: string;
    clientTimeout: number;
    digestType: string;
    hmacType: string;
    digest: string;
  };
}
const fixtures = (
  JSON.parse(readFileSync(new URL('./fixtures/spa/fwknop-client-packets.json', import.meta.url), 'utf8')) as {
    packets: FixturePacket[];
  }
).packets;
const fixture = (name: string): FixturePacket => fixtures.find((f) => f.name === name)!;

function request(over: Partial<SpaRequest> = {}): SpaRequest {
  return { allowIp: '10.1.2.3', access: ['tcp/22'], username: 'alice', timestamp: NOW_S, ...over };
}

function decodeOpts(over: Partial<SpaDecodeOptions> = {}): SpaDecodeOptions {
  return {
    key: KEY,
    hmac: new SpaHmac('sha256', HMAC_KEY),
    encryptionMode: 'cbc',
    allowMissingHmac: false,
    ...over,
  };
}

function encode(req: Partial<SpaRequest> = {}, opts: Partial<SpaEncodeOptions> = {}): Buffer {
  return Buffer.from(encodeSpa(request(req), { key: KEY, hmacKey: HMAC_KEY, ...opts }), 'latin1');
}

function policy(spa: Partial<SpaSpec> = {}, grant: Partial<GrantTemplate> = {}): KnockPolicy {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name: 'ssh' },
    spec: {
      spa: { keySecretRef: { name: 'ssh-spa' }, port: '62201/udp', ...spa },
      grant: { ports: ['22/tcp', '53/udp'], durationSeconds: 60, maxDurationSeconds: 600, ...grant },
    },
  };
}

function inbound(payload: Buffer, over: Partial<InboundPacket> = {}): InboundPacket {
  return {
    src: '10.1.2.3',
    dst: '10.0.0.1',
    family: 4,
    proto: 'udp',
    srcPort: 40000,
    dstPort: 62201,
    tcpFlags: 0,
    payload,
    at: T0,
    ...over,
  };
}

const keys: SpaKeys = { key: KEY, hmacKey: HMAC_KEY };

function refusedFor(v: Verdict): string {
  expect(v.kind).toBe('refused');
  return (v as Refusal).reason;
}

function granted(v: Verdict): AccessDecision {
  if (v.kind !== 'grant') throw new Error(`expected a grant, got ${(v as Refusal).reason}`);
  return v;
}

/** A plaintext of any message type, sealed as the client would (for what encodeSpa will not build). */
function seal(fields: string[], digest: DigestType = 'sha256', withHmac = true): Buffer {
  const encoded = fields.join(':');
  const body = encryptSpa(`${encoded}:${digestB64(digest, encoded)}`, KEY, 'cbc');
  const text = withHmac ? body + new SpaHmac('sha256', HMAC_KEY).compute(body) : body;
  return Buffer.from(text, 'latin1');
}

const b64 = (s: string) => b64EncodeNoPad(s);

describe('SPA codec round trips', () => {
  for (const digestType of DIGEST_TYPES) {
    for (const hmacType of DIGEST_TYPES) {
      it(`digest ${digestType}, HMAC ${hmacType}`, () => {
        const packet = encode({ clientTimeout: 90 }, { digestType, hmacType });
        const r = decodeSpa(packet, decodeOpts({ hmac: new SpaHmac(hmacType, HMAC_KEY) }));
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect(r.packet).toMatchObject({
          username: 'alice',
          timestamp: NOW_S,
          version: '3.0.0',
          messageType: 'client-timeout-access',
          accessMessage: '10.1.2.3,tcp/22',
          clientTimeout: 90,
          digestType,
          hmacType,
          encryptionMode: 'cbc',
        });
        // The same packet under any other HMAC type is refused before anything is decrypted.
        for (const other of DIGEST_TYPES.filter((t) => t !== hmacType)) {
          const wrong = decodeSpa(packet, decodeOpts({ hmac: new SpaHmac(other, HMAC_KEY) }));
          expect(wrong.ok).toBe(false);
        }
      });
    }
  }

  it('passphrase keys (KEY / HMAC_KEY) round trip', () => {
    const k = spaKeysFromSecretData({ KEY: 'correct horse', HMAC_KEY: 'battery staple' });
    const packet = Buffer.from(
      encodeSpa(request({ access: ['tcp/22', 'udp/53'] }), { key: k.key, hmacKey: k.hmacKey }),
    );
    const r = decodeSpa(packet, decodeOpts({ key: k.key, hmac: new SpaHmac('sha256', k.hmacKey!) }));
    expect(r.ok && r.packet.accessMessage).toBe('10.1.2.3,tcp/22,udp/53');
    expect(decodeSpa(packet, decodeOpts()).ok).toBe(false);
  });

  it('access message without -f, client-timeout message with it', () => {
    const plain = decodeSpa(encode(), decodeOpts());
    expect(plain.ok && [plain.packet.messageType, plain.packet.clientTimeout]).toEqual(['access', 0]);
    const timed = decodeSpa(encode({ clientTimeout: 3600 }), decodeOpts());
    expect(timed.ok && [timed.packet.messageType, timed.packet.clientTimeout]).toEqual([
      'client-timeout-access',
      3600,
    ]);
  });

  it('server auth and IPv6 allow IPs decode', () => {
    const r = decodeSpa(encode({ allowIp: 'fd00::7', serverAuth: 'crypt,pw' }), decodeOpts());
    expect(r.ok && [r.packet.accessMessage, r.packet.serverAuth]).toEqual(['fd00::7,tcp/22', 'crypt,pw']);
  });

  it('NAT access messages decode', () => {
    for (const clientTimeout of [0, 45]) {
      const r = decodeSpa(encode({ natAccess: '192.168.1.5,22', clientTimeout }), decodeOpts());
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      expect(r.packet.natAccess).toBe('192.168.1.5,22');
      expect(r.packet.messageType).toBe(clientTimeout ? 'client-timeout-nat-access' : 'nat-access');
      expect(r.packet.clientTimeout).toBe(clientTimeout);
    }
  });

  it('refuses to build what the fwknop client refuses', () => {
    expect(() => encodeSpa(request(), { key: Buffer.alloc(33, 1) })).toThrow(SpaEncodeError);
    expect(() => encodeSpa(request(), { key: KEY, hmacKey: HMAC_KEY, encryptionMode: 'legacy' })).toThrow(
      SpaEncodeError,
    );
    expect(() => encodeSpa(request({ username: 'a:b' }), { key: KEY })).toThrow(SpaEncodeError);
    expect(() => encodeSpa(request({ access: ['tcp/x'] }), { key: KEY })).toThrow(SpaEncodeError);
    expect(() => encodeSpa(request({ allowIp: 'nope' }), { key: KEY })).toThrow(SpaEncodeError);
  });
});

describe('SPA key derivation', () => {
  it('derives key and IV as OpenSSL EVP_BytesToKey(MD5, 1 round) with the salt', () => {
    const salt = Buffer.from('0102030405060708', 'hex');
    const { key, iv } = deriveKeyIv(Buffer.from('secret'), salt, 'cbc');
    // openssl enc -aes-256-cbc -md md5 -S 0102030405060708 -pass pass:secret -P
    expect(key.toString('hex').toUpperCase()).toBe(
      'C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144BCCEC4A1AA2879AB',
    );
    expect(iv.toString('hex').toUpperCase()).toBe('E24B32BBBC4EF02ECBCB6576523AD893');
  });

  it('legacy mode pads a short passphrase with "0" to 16 bytes; CBC mode does not', () => {
    const salt = Buffer.alloc(8, 7);
    const legacy = deriveKeyIv(Buffer.from('short'), salt, 'legacy');
    const padded = deriveKeyIv(Buffer.from('short00000000000'), salt, 'cbc');
    const cbc = deriveKeyIv(Buffer.from('short'), salt, 'cbc');
    expect(legacy.key.equals(padded.key) && legacy.iv.equals(padded.iv)).toBe(true);
    expect(cbc.key.equals(legacy.key)).toBe(false);
    // 16 bytes or more: the two modes agree.
    const long = Buffer.from('sixteen-bytes-ok');
    expect(deriveKeyIv(long, salt, 'legacy').key.equals(deriveKeyIv(long, salt, 'cbc').key)).toBe(true);
  });

  it('legacy short-passphrase packets round trip only in legacy mode', () => {
    const key = Buffer.from('short');
    const packet = Buffer.from(encodeSpa(request(), { key, encryptionMode: 'legacy' }));
    const legacy = decodeSpa(packet, { key, encryptionMode: 'legacy', allowMissingHmac: true });
    expect(legacy.ok && legacy.packet.encryptionMode).toBe('legacy');
    expect(decodeSpa(packet, { key, encryptionMode: 'cbc', allowMissingHmac: true }).ok).toBe(false);
  });

  it('keys from Secret data: base64 (padded, as fwknop --key-gen prints) and passphrases', () => {
    const k = spaKeysFromSecretData({
      KEY_BASE64: KEY.toString('base64'),
      HMAC_KEY_BASE64: HMAC_KEY.toString('base64'),
    });
    expect(k.key.equals(KEY) && k.hmacKey!.equals(HMAC_KEY)).toBe(true);
    expect(spaKeysFromSecretData({ KEY: 'pw' }).hmacKey).toBeUndefined();
    expect(() => spaKeysFromSecretData({ KEY: 'a', KEY_BASE64: 'YQ==' })).toThrow(SpaKeyError);
    expect(() => spaKeysFromSecretData({ KEY_BASE64: 'not base64!' })).toThrow(SpaKeyError);
    expect(() => spaKeysFromSecretData({ KEY: 'x'.repeat(33) })).toThrow(/1-32 bytes/);
    expect(() => spaKeysFromSecretData({ HMAC_KEY: 'x' })).toThrow(/no SPA key/);
    // The message names the field, never the value.
    try {
      spaKeysFromSecretData({ KEY_BASE64: 'sekrit!!' });
    } catch (err) {
      expect((err as Error).message).not.toContain('sekrit');
    }
  });
});

describe('SPA packets made by the real fwknop 2.6.10 client (fixtures)', () => {
  for (const f of fixtures) {
    it(`${f.name}: decodes to the fields the client printed`, () => {
      const k = spaKeysFromSecretData(f.keys);
      const hmacType = f.client.hmacType.match(/\((\w+)\)/)![1]!.toLowerCase();
      const opts: SpaDecodeOptions = {
        key: k.key,
        encryptionMode: f.encryptionMode,
        allowMissingHmac: !k.hmacKey,
      };
      if (k.hmacKey) opts.hmac = new SpaHmac(hmacType as DigestType, k.hmacKey);
      const r = decodeSpa(Buffer.from(f.packet, 'latin1'), opts);
      if (!r.ok) throw new Error(`refused: ${r.reason}`);
      const p = r.packet;
      expect({
        randValue: p.randValue,
        username: p.username,
        timestamp: p.timestamp,
        message: p.accessMessage,
        natAccess: p.natAccess ?? '<NULL>',
        clientTimeout: p.clientTimeout,
        digestType: p.digestType,
        hmacType: p.hmacType === 'none' ? 'none' : p.hmacType,
        digest: p.digest,
      }).toEqual({
        randValue: f.client.randValue,
        username: f.client.username,
        timestamp: f.client.timestamp,
        message: f.client.message,
        natAccess: f.client.natAccess,
        clientTimeout: f.client.clientTimeout,
        digestType: f.client.digestType.match(/\((\w+)\)/)![1]!.toLowerCase(),
        hmacType,
        digest: f.client.digest,
      });
    });
  }
});

describe('SPA decode refusals', () => {
  it('packets starting with the base64 "Salted__" prefix are refused before anything else', () => {
    const body = encodeSpa(request(), { key: KEY });
    const prefixed = Buffer.from(B64_SALTED_PREFIX + body, 'latin1');
    const r = decodeSpa(prefixed, decodeOpts({ hmac: undefined, allowMissingHmac: true }));
    expect(r).toEqual({ ok: false, reason: 'salted-prefix' });
    // fwknopd's reason: with the prefix put back the text would still decrypt.
    expect(decryptSpa(body, KEY, 'cbc')).toBeDefined();
  });

  it('a missing HMAC is refused unless explicitly allowed', () => {
    const packet = Buffer.from(encodeSpa(request(), { key: KEY }), 'latin1');
    expect(decodeSpa(packet, decodeOpts({ hmac: undefined })).ok).toBe(false);
    expect(decodeSpa(packet, decodeOpts({ hmac: undefined }))).toMatchObject({ reason: 'missing-hmac' });
    expect(decodeSpa(packet, decodeOpts({ hmac: undefined, allowMissingHmac: true })).ok).toBe(true);
    // With an HMAC key configured, a packet without HMAC fails the HMAC check.
    expect(decodeSpa(packet, decodeOpts())).toMatchObject({ reason: 'bad-hmac' });
  });

  it('wrong HMAC key, wrong encryption key', () => {
    const packet = encode();
    expect(decodeSpa(packet, decodeOpts({ hmac: new SpaHmac('sha256', Buffer.from('x')) }))).toMatchObject({
      reason: 'bad-hmac',
    });
    expect(decodeSpa(packet, decodeOpts({ key: Buffer.alloc(32, 9) }))).toMatchObject({
      reason: 'decrypt-failed',
    });
  });

  it('command messages decode as such (and the verifier refuses them)', () => {
    const packet = seal(['1234567890123456', b64('alice'), String(NOW_S), '3.0.0', '0', b64('10.1.2.3,id')]);
    const r = decodeSpa(packet, decodeOpts());
    expect(r.ok && [r.packet.messageType, r.packet.accessMessage]).toEqual(['command', '10.1.2.3,id']);
    const v = createSpaVerifier(policy(), keys, { clock: new FakeClock(T0) });
    expect(refusedFor(v.verify(inbound(packet)))).toBe('command-refused');
  });

  it('malformed plaintexts and bad digests are refused', () => {
    const good = ['1234567890123456', b64('alice'), String(NOW_S), '3.0.0', '1', b64('10.1.2.3,tcp/22')];
    expect(decodeSpa(seal(good), decodeOpts()).ok).toBe(true);
    const cases: [string[], string][] = [
      [good.slice(0, 5), 'malformed'],
      // As fwknopd: a plaintext that does not start with 16 digits and ":" did not decrypt.
      [['123', ...good.slice(1)], 'decrypt-failed'],
      [[good[0]!, b64('a:b'), ...good.slice(2)], 'malformed'],
      [[...good.slice(0, 2), '12x', ...good.slice(3)], 'malformed'],
      [[...good.slice(0, 4), '9', good[5]!], 'malformed'],
      [[...good.slice(0, 5), b64('10.1.2.3')], 'malformed'],
      [[...good.slice(0, 5), b64('nope,tcp/22')], 'malformed'],
      [[...good.slice(0, 4), '3', good[5]!, 'abc'], 'malformed'],
      [[...good.slice(0, 4), '3', good[5]!], 'malformed'],
    ];
    for (const [fields, reason] of cases) {
      expect(decodeSpa(seal(fields), decodeOpts()), fields.join(':')).toMatchObject({ reason });
    }
    // A digest of the right length that does not match.
    const encoded = good.join(':');
    const body = encryptSpa(`${encoded}:${digestB64('sha256', encoded + 'x')}`, KEY, 'cbc');
    const packet = Buffer.from(body + new SpaHmac('sha256', HMAC_KEY).compute(body), 'latin1');
    expect(decodeSpa(packet, decodeOpts())).toMatchObject({ reason: 'bad-digest' });
  });

  it('junk never throws and is refused', () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    for (let i = 0; i < 2000; i++) {
      const len = rand() % 400;
      const buf = Buffer.alloc(len);
      const b64only = i % 2 === 0;
      for (let j = 0; j < len; j++) buf[j] = b64only ? alphabet.charCodeAt(rand() % 64) : rand() & 0xff;
      const withHmac = decodeSpa(buf, decodeOpts());
      const without = decodeSpa(buf, decodeOpts({ hmac: undefined, allowMissingHmac: true }));
      expect(withHmac.ok || without.ok).toBe(false);
    }
  });

  it('base64 is decoded strictly: one text per byte string', () => {
    expect(b64DecodeStrict('QQ')!.toString()).toBe('A');
    expect(b64DecodeStrict('QR')).toBeUndefined(); // spare bits set
    expect(b64DecodeStrict('Q')).toBeUndefined();
    expect(b64DecodeStrict('Q*==')).toBeUndefined();
  });

  it('decoding base64 held as bytes agrees with decoding it as a string', () => {
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=*- \u00ff';
    for (let i = 0; i < 5000; i++) {
      const text =
        i % 2 === 0
          ? b64EncodeNoPad(randomBytes(rand(60)))
          : Array.from({ length: rand(40) }, () => chars[rand(chars.length)]).join('');
      if (i % 3 === 0 && text.length > 0) {
        // Flip one character to exercise the spare-bit and alphabet checks.
        const pos = rand(text.length);
        const bytes = Buffer.from(text, 'latin1');
        bytes[pos] = chars.charCodeAt(rand(chars.length));
        const mutated = bytes.toString('latin1');
        const padded = Buffer.from(`xx${mutated}yy`, 'latin1');
        expect(b64DecodeBytes(padded, 2, padded.length - 2), mutated).toEqual(
          mutated.includes('=') ? undefined : b64DecodeStrict(mutated),
        );
        continue;
      }
      const bytes = Buffer.from(text, 'latin1');
      expect(b64DecodeBytes(bytes, 0, bytes.length), text).toEqual(
        text.includes('=') ? undefined : b64DecodeStrict(text),
      );
    }
  });
});

describe('SPA verifier', () => {
  function verifier(spa: Partial<SpaSpec> = {}, grant: Partial<GrantTemplate> = {}, k: SpaKeys = keys) {
    const clock = new FakeClock(T0);
    return { clock, v: createSpaVerifier(policy(spa, grant), k, { clock }) };
  }

  it('grants a valid packet: source, ports, duration, user and a replay claim', () => {
    const { v } = verifier();
    const packet = encode({ access: ['tcp/22', 'udp/53'] });
    const g = granted(v.verify(inbound(packet)));
    expect(g).toMatchObject({
      policy: 'ssh',
      method: 'spa',
      source: '10.1.2.3/32',
      ports: ['22/tcp', '53/udp'],
      durationSeconds: 60,
      user: 'alice',
    });
    expect(g.claim!.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(g.claim!.expiresAt.getTime()).toBe((NOW_S + 120 + 60) * 1000);
  });

  it('the client timeout (-f) is honoured up to maxDurationSeconds', () => {
    const { v } = verifier();
    expect(granted(v.verify(inbound(encode({ clientTimeout: 300 })))).durationSeconds).toBe(300);
    expect(granted(v.verify(inbound(encode({ clientTimeout: 9000 })))).durationSeconds).toBe(600);
  });

  it('refuses NAT access and command messages', () => {
    const { v } = verifier();
    expect(refusedFor(v.verify(inbound(encode({ natAccess: '192.168.1.5,22' }))))).toBe('nat-refused');
    expect(refusedFor(v.verify(inbound(encode({ natAccess: '192.168.1.5,22', clientTimeout: 30 }))))).toBe(
      'nat-refused',
    );
  });

  it('missing HMAC: refused unless the policy sets allowMissingHmac', () => {
    const noHmacKeys: SpaKeys = { key: KEY };
    const packet = Buffer.from(encodeSpa(request(), { key: KEY }), 'latin1');
    expect(refusedFor(verifier({}, {}, noHmacKeys).v.verify(inbound(packet)))).toBe('missing-hmac');
    granted(verifier({ allowMissingHmac: true }, {}, noHmacKeys).v.verify(inbound(packet)));
    expect(refusedFor(verifier({ allowMissingHmac: true }).v.verify(inbound(packet)))).toBe('bad-hmac');
  });

  it('refuses the "Salted__" prefix', () => {
    const { v } = verifier({ allowMissingHmac: true }, {}, { key: KEY });
    const body = encodeSpa(request(), { key: KEY });
    expect(refusedFor(v.verify(inbound(Buffer.from(B64_SALTED_PREFIX + body))))).toBe('salted-prefix');
  });

  it('freshness window, both ways, on the injected clock', () => {
    const { v, clock } = verifier();
    const packet = encode();
    clock.advance(120_000);
    granted(v.verify(inbound(packet)));
    clock.advance(1_000);
    expect(refusedFor(v.verify(inbound(packet)))).toBe('stale');
    const fresh = verifier();
    expect(refusedFor(fresh.v.verify(inbound(encode({ timestamp: NOW_S + 121 }))))).toBe('stale');
    granted(fresh.v.verify(inbound(encode({ timestamp: NOW_S + 119 }))));
    const short = verifier({ maxPacketAgeSeconds: 10 });
    short.clock.advance(11_000);
    expect(refusedFor(short.v.verify(inbound(encode())))).toBe('stale');
  });

  it('replay: the same packet claims once in the in-memory store, a new packet claims anew', async () => {
    const { v, clock } = verifier();
    const store = new MemoryReplayStore(clock);
    const packet = encode();
    const first = granted(v.verify(inbound(packet)));
    const again = granted(v.verify(inbound(Buffer.from(packet))));
    expect(again.claim!.digest).toBe(first.claim!.digest);
    expect(await store.claim(first.claim!.digest, first.claim!.expiresAt)).toBe('claimed');
    expect(await store.claim(again.claim!.digest, again.claim!.expiresAt)).toBe('replay');
    const other = granted(v.verify(inbound(encode())));
    expect(other.claim!.digest).not.toBe(first.claim!.digest);
    expect(await store.claim(other.claim!.digest, other.claim!.expiresAt)).toBe('claimed');
    // The claim outlives the packet's freshness: by the time it expires, the packet is stale.
    clock.advance(first.claim!.expiresAt.getTime() - clock.now() - 1);
    expect(await store.claim(first.claim!.digest, first.claim!.expiresAt)).toBe('replay');
    expect(refusedFor(v.verify(inbound(packet)))).toBe('stale');
  });

  it('the in-memory replay store is bounded and fails closed when full of live claims', () => {
    const clock = new FakeClock(T0);
    const store = new MemoryReplayStore(clock, 3);
    const until = new Date(T0 + 10_000);
    for (const d of ['a', 'b', 'c']) expect(store.claimSync(d, until)).toBe('claimed');
    expect(() => store.claimSync('d', until)).toThrow(ReplayStoreFullError);
    expect(store.claimSync('a', until)).toBe('replay');
    clock.advance(10_000);
    expect(store.claimSync('d', new Date(T0 + 20_000))).toBe('claimed');
    expect(store.size).toBe(1);
  });

  it('allowedSources', () => {
    const { v } = verifier({ allowedSources: ['10.0.0.0/8'] });
    granted(v.verify(inbound(encode())));
    const from = inbound(encode({ allowIp: '192.0.2.9' }), { src: '192.0.2.9' });
    expect(refusedFor(v.verify(from))).toBe('source-not-allowed');
  });

  it('requireSourceAddress: the allow IP must be the source, and 0.0.0.0 (-s) is refused', () => {
    const { v } = verifier({ requireSourceAddress: true });
    granted(v.verify(inbound(encode())));
    expect(refusedFor(v.verify(inbound(encode({ allowIp: '10.9.9.9' }))))).toBe('source-mismatch');
    expect(refusedFor(v.verify(inbound(encode({ allowIp: '0.0.0.0' }))))).toBe('source-mismatch');
    const v6 = v.verify(
      inbound(encode({ allowIp: 'fd00:0::7' }), { src: 'fd00::7', family: 6, dst: 'fd00::1' }),
    );
    expect(granted(v6).source).toBe('fd00::7/128');
  });

  it('without requireSourceAddress, 0.0.0.0 means the packet source and another allow IP is used as is', () => {
    const { v } = verifier();
    expect(granted(v.verify(inbound(encode({ allowIp: '0.0.0.0' }), { src: '10.7.7.7' }))).source).toBe(
      '10.7.7.7/32',
    );
    expect(granted(v.verify(inbound(encode({ allowIp: '10.9.9.9' })))).source).toBe('10.9.9.9/32');
  });

  it('never grants loopback, link-local or multicast hosts', () => {
    const { v } = verifier();
    for (const allowIp of ['127.0.0.1', '169.254.1.1', '224.0.0.1', '::1', 'fe80::1'])
      expect(refusedFor(v.verify(inbound(encode({ allowIp }))))).toBe('never-grant');
  });

  it('requireUsername', () => {
    const { v } = verifier({ requireUsername: 'alice' });
    granted(v.verify(inbound(encode())));
    expect(refusedFor(v.verify(inbound(encode({ username: 'bob' }))))).toBe('username');
  });

  it('requested ports must be a subset of the grant ports', () => {
    const { v } = verifier();
    expect(refusedFor(v.verify(inbound(encode({ access: ['tcp/23'] }))))).toBe('ports-not-allowed');
    expect(refusedFor(v.verify(inbound(encode({ access: ['tcp/22', 'tcp/80'] }))))).toBe('ports-not-allowed');
  });

  it('wrong port or protocol, and the HMAC type of the policy', () => {
    const { v } = verifier();
    expect(refusedFor(v.verify(inbound(encode(), { dstPort: 62202 })))).toBe('wrong-port');
    expect(refusedFor(v.verify(inbound(encode(), { proto: 'tcp' })))).toBe('wrong-port');
    const sha512 = verifier({ hmacDigestType: 'sha512' }).v;
    expect(refusedFor(sha512.verify(inbound(encode())))).toBe('bad-hmac');
    granted(sha512.verify(inbound(encode({}, { hmacType: 'sha512' }))));
  });

  it('refusal messages name the policy and hold no key material or packet text', () => {
    const { v } = verifier();
    const packet = encode({ access: ['tcp/23'] });
    const r = v.verify(inbound(packet)) as Refusal;
    expect(r.message).toContain('KnockPolicy ssh');
    expect(r.message).not.toContain(packet.toString('latin1').slice(0, 20));
    expect(r.message).not.toContain(KEY.toString('base64'));
  });

  it('policies that can never verify are rejected up front', () => {
    const clock = new FakeClock(T0);
    expect(() => createSpaVerifier(policy({ port: 'nope' }), keys, { clock })).toThrow(SpaPolicyError);
    expect(() => createSpaVerifier(policy({ encryptionMode: 'legacy' }), keys, { clock })).toThrow(/legacy/);
    expect(() => createSpaVerifier(policy(), { key: Buffer.alloc(40) }, { clock })).toThrow(SpaPolicyError);
  });

  it('real-client fixtures through the verifier (clock at the packet time)', () => {
    const clock = new FakeClock(fixture('base64 keys, sha256').client.timestamp * 1000);
    const v = createSpaVerifier(policy(), spaKeysFromSecretData(fixture('base64 keys, sha256').keys), {
      clock,
    });
    const g = granted(v.verify(inbound(Buffer.from(fixture('base64 keys, sha256').packet))));
    expect([g.source, g.ports, g.durationSeconds, g.user]).toEqual(['10.1.2.3/32', ['22/tcp'], 77, 'alice']);
    expect(refusedFor(v.verify(inbound(Buffer.from(fixture('command message').packet))))).toBe(
      'command-refused',
    );
    expect(refusedFor(v.verify(inbound(Buffer.from(fixture('NAT access').packet))))).toBe('nat-refused');
    const pp = fixture('passphrase keys, -s');
    const vp = createSpaVerifier(policy({ requireSourceAddress: true }), spaKeysFromSecretData(pp.keys), {
      clock,
    });
    expect(refusedFor(vp.verify(inbound(Buffer.from(pp.packet))))).toBe('source-mismatch');
    const legacy = fixture('legacy short passphrase, no HMAC');
    const vl = createSpaVerifier(
      policy({ encryptionMode: 'legacy', allowMissingHmac: true }),
      spaKeysFromSecretData(legacy.keys),
      { clock },
    );
    expect(granted(vl.verify(inbound(Buffer.from(legacy.packet)))).source).toBe('10.9.9.9/32');
  });
});

describe('SPA source matching (the fast path agrees with node:net BlockList)', () => {
  it('parses dotted quads exactly as isIPv4 accepts them', () => {
    expect(parseIpv4('10.1.2.3')).toBe(0x0a010203);
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIpv4('0.0.0.0')).toBe(0);
    for (const bad of [
      '010.1.2.3',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1..2.3',
      '1.2.3.4 ',
      'a.b.c.d',
      '',
      '::1',
    ])
      expect(parseIpv4(bad), bad).toBe(-1);
  });

  it('answers like CidrSet for random addresses and CIDR lists, both families', () => {
    let seed = 99;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const v4 = () => [rand(256), rand(256), rand(256), rand(256)].join('.');
    for (let round = 0; round < 200; round++) {
      const cidrs = Array.from({ length: 1 + rand(4) }, () => `${v4()}/${rand(33)}`);
      if (round % 5 === 0) cidrs.push(`fd00:${rand(65536).toString(16)}::/${rand(129)}`);
      const fast = new SourceMatcher(cidrs);
      const reference = new CidrSet(cidrs);
      const probes = [v4(), v4(), cidrs[0]!.split('/')[0]!, `fd00:${rand(65536).toString(16)}::${rand(9)}`];
      probes.push('::ffff:' + v4(), '010.1.2.3', 'junk', '');
      for (const a of probes) expect(fast.has(a), `${a} in ${cidrs.join(',')}`).toBe(reference.has(a));
    }
  });
});
