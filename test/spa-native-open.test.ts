// The native SPA opener (native/spa_open.c: the checks, HMAC and decryption of an SPA packet in C)
// against decode.ts openSpa, the JavaScript reference, on real fwknop 2.6.10 client packets of every
// HMAC type, passphrase, base64, legacy and no-HMAC keys, and the fuzz corpus of their mutations
// (test/helpers/spa-corpus.ts) plus mutations that carry a valid HMAC over a damaged ciphertext (so
// the decryption's own refusals are reached: non-canonical base64, partial blocks, no "Salted__",
// bad padding). For every packet both give the same plaintext or the same refusal, and verifiers
// built on either give the same verdict. Also: tampered packets are refused by the native path,
// rotated keys apply to it (a verifier is built per key set), and bad keys throw one line without
// key material.

import { describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { InboundPacket } from '../sniffer/decision.js';
import { openSpa, type SpaDecodeOptions } from '../sniffer/spa/decode.js';
import { encodeSpa } from '../sniffer/spa/encode.js';
import { SpaHmac } from '../sniffer/spa/hmac.js';
import { spaKeysFromSecretData } from '../sniffer/spa/keys.js';
import { nativeSpaOpener } from '../sniffer/spa/native-open.js';
import { DIGEST_CODES, type HmacDigestType } from '../sniffer/spa/types.js';
import { createSpaVerifier } from '../sniffer/spa/verifier.js';
import { B64, corpus, fixtures, policyOf, PORT, prng, type Fixture } from './helpers/spa-corpus.js';

function setupOf(f: Fixture, refuseMissingHmac = false) {
  const policy = policyOf(f, 'p');
  const spa = policy.spec.spa!;
  if (refuseMissingHmac) spa.allowMissingHmac = false;
  const keys = spaKeysFromSecretData(f.keys);
  const hmacType = spa.hmacDigestType as HmacDigestType | undefined;
  const js: SpaDecodeOptions = {
    key: keys.key,
    encryptionMode: f.encryptionMode,
    allowMissingHmac: spa.allowMissingHmac === true,
  };
  if (keys.hmacKey && hmacType) js.hmac = new SpaHmac(hmacType, keys.hmacKey);
  const opener = nativeSpaOpener({
    key: keys.key,
    encryptionMode: f.encryptionMode,
    hmacType: keys.hmacKey && hmacType ? DIGEST_CODES[hmacType] : 0,
    ...(keys.hmacKey ? { hmacKey: keys.hmacKey } : {}),
    allowMissingHmac: js.allowMissingHmac,
  });
  expect(opener, 'the capture addon loads').toBeDefined();
  const clock = new FakeClock(((f.client as { timestamp?: number }).timestamp ?? 0) * 1000);
  const verifiers = {
    native: createSpaVerifier(policy, keys, { clock, crypto: 'native' }),
    javascript: createSpaVerifier(policy, keys, { clock, crypto: 'javascript' }),
  };
  return { js, opener: opener!, verifiers };
}

/** Damaged ciphertexts that still carry a valid HMAC (the key's), so decryption is what refuses. */
function reSigned(f: Fixture, hmac: SpaHmac | undefined, rand: () => number): Buffer[] {
  const body = hmac ? f.packet.slice(0, -hmac.b64Length) : f.packet;
  const texts: string[] = [];
  for (let i = 0; i < body.length; i += 5)
    texts.push(
      body.slice(0, i) + B64[(B64.indexOf(body[i]!) + 1 + Math.floor(rand() * 62)) % 64] + body.slice(i + 1),
    );
  for (const cut of [1, 2, 3, 4, 16, 22, 43]) texts.push(body.slice(0, -cut));
  texts.push(`${body}A`, `${body}AA`, body.slice(4), `AAAA${body}`);
  return texts
    .filter((t) => t.length >= 36)
    .map((t) => Buffer.from(hmac ? t + hmac.compute(t) : t, 'latin1'));
}

function packetOf(payload: Buffer): InboundPacket {
  return { proto: 'udp', src: '10.0.0.2', dstPort: PORT, payload } as InboundPacket;
}

describe('native SPA opener vs the JavaScript reference', () => {
  it('gives the same plaintext or refusal, and the same verdict, on every fixture and mutation', () => {
    const rand = prng(4711);
    const payloads = corpus(rand);
    const tally = { opened: 0, refused: new Map<string, number>() };
    // The no-HMAC fixtures also under a policy that requires an HMAC (missing-hmac).
    const cases = [
      ...fixtures.map((f) => ({ f, ...setupOf(f) })),
      ...fixtures.filter((f) => f.client.hmacType.startsWith('0')).map((f) => ({ f, ...setupOf(f, true) })),
    ];
    for (const { f, js, opener, verifiers } of cases) {
      for (const [j, payload] of [...payloads, ...reSigned(f, js.hmac, rand)].entries()) {
        const what = `${f.name}, payload ${j}`;
        const reference = openSpa(payload, js);
        expect(opener.open(payload), what).toEqual(reference);
        expect(verifiers.native.verify(packetOf(payload)), what).toEqual(
          verifiers.javascript.verify(packetOf(payload)),
        );
        if (typeof reference === 'string') tally.opened++;
        else tally.refused.set(reference.reason, (tally.refused.get(reference.reason) ?? 0) + 1);
      }
    }
    // Every refusal the opener can give was reached, and every fixture opened with its own keys.
    for (const reason of ['not-spa', 'salted-prefix', 'missing-hmac', 'bad-hmac', 'decrypt-failed'])
      expect(tally.refused.get(reason) ?? 0, reason).toBeGreaterThan(0);
    expect(tally.opened).toBeGreaterThanOrEqual(fixtures.length);
  });

  it('opens a real fwknop packet to the same grant, and refuses it tampered', () => {
    for (const f of fixtures) {
      const { verifiers } = setupOf(f);
      const packet = Buffer.from(f.packet, 'latin1');
      const native = verifiers.native.verify(packetOf(packet));
      expect(native, f.name).toEqual(verifiers.javascript.verify(packetOf(packet)));
      if (f.client.hmacType.startsWith('0')) continue; // no HMAC: nothing authenticates a change
      const i = Math.floor(f.packet.length / 3);
      const tampered = Buffer.from(f.packet, 'latin1');
      tampered[i] = tampered[i] === 0x41 ? 0x42 : 0x41;
      expect(verifiers.native.verify(packetOf(tampered)), f.name).toMatchObject({
        kind: 'refused',
        reason: 'bad-hmac',
      });
    }
  });

  it('takes rotated keys: a verifier for the new keys opens new packets and refuses the old ones', () => {
    const f = fixtures.find((x) => x.name === 'base64 keys, sha256')!;
    const old = Buffer.from(f.packet, 'latin1');
    const rotated = { key: Buffer.alloc(32, 7), hmacKey: Buffer.alloc(64, 9) };
    const clock = new FakeClock(Date.parse('2026-12-07T00:00:00Z'));
    const v = createSpaVerifier(policyOf(f, 'p'), rotated, { clock, crypto: 'native' });
    const fresh = encodeSpa(
      { allowIp: '10.0.0.2', access: ['tcp/22'], username: 'u', timestamp: clock.now() / 1000 },
      { key: rotated.key, hmacKey: rotated.hmacKey },
    );
    expect(v.verify(packetOf(Buffer.from(fresh, 'latin1')))).toMatchObject({
      kind: 'grant',
      ports: ['22/tcp'],
    });
    expect(v.verify(packetOf(old))).toMatchObject({ kind: 'refused', reason: 'bad-hmac' });
  });

  it('refuses keys it cannot use in one line without the key', () => {
    const secret = Buffer.from('very secret key material, far too long for AES-256');
    const bad = [
      { key: secret, encryptionMode: 'cbc' as const, hmacType: 0, allowMissingHmac: true },
      { key: Buffer.alloc(0), encryptionMode: 'cbc' as const, hmacType: 0, allowMissingHmac: true },
      {
        key: Buffer.alloc(16),
        encryptionMode: 'cbc' as const,
        hmacType: 9,
        hmacKey: secret,
        allowMissingHmac: false,
      },
      {
        key: Buffer.alloc(16),
        encryptionMode: 'cbc' as const,
        hmacType: 3,
        hmacKey: Buffer.alloc(129, 1),
        allowMissingHmac: false,
      },
    ];
    for (const keys of bad) {
      let message = '';
      try {
        nativeSpaOpener(keys);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/must be|unknown/);
      expect(message).not.toContain('secret');
      expect(message).not.toContain('\n');
    }
  });
});
