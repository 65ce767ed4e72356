// The SPA reference corpus shared by the native-vs-JavaScript tests (test/spa-native-gate.test.ts,
// test/spa-native-open.test.ts): real fwknop 2.6.10 client packets (test/fixtures/spa, made with
// `fwknop --no-rc-file --test`), a policy for each, and a fuzz corpus of their mutations.

import { readFileSync } from 'node:fs';
import type { HmacDigestType, KnockPolicy } from '../../api/types.js';
import { DIGEST_CODES } from '../../sniffer/spa/types.js';

export interface Fixture {
  name: string;
  keys: Record<string, string>;
  encryptionMode: 'cbc' | 'legacy';
  packet: string;
  client: { hmacType: string };
}
export const fixtures = (
  JSON.parse(
    readFileSync(new URL('../fixtures/spa/fwknop-client-packets.json', import.meta.url), 'utf8'),
  ) as {
    packets: Fixture[];
  }
).packets;

const CODE_TO_TYPE = new Map(Object.entries(DIGEST_CODES).map(([t, c]) => [c, t as HmacDigestType]));
export const PORT = 62201;

export function policyOf(f: Fixture, name: string, port = PORT): KnockPolicy {
  const code = Number(/^(\d+)/.exec(f.client.hmacType)?.[1] ?? 0);
  const hmac = CODE_TO_TYPE.get(code);
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name },
    spec: {
      spa: {
        keySecretRef: { name },
        port: `${port}/udp`,
        encryptionMode: f.encryptionMode,
        ...(hmac ? { hmacDigestType: hmac } : { allowMissingHmac: true }),
      },
      grant: { ports: ['22/tcp', '53/udp'], durationSeconds: 60, maxDurationSeconds: 3600 },
    },
  };
}

/** A small deterministic PRNG, so a failure names a reproducible case. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Fixture packets and their mutations, as UDP payloads. */
export function corpus(rand: () => number): Buffer[] {
  const out: Buffer[] = [];
  const b64 = (n: number) => Array.from({ length: n }, () => B64[Math.floor(rand() * 64)]).join('');
  for (const f of fixtures) {
    const p = f.packet;
    out.push(Buffer.from(p, 'latin1'));
    for (let i = 0; i < p.length; i += 3) {
      const c = B64[(B64.indexOf(p[i]!) + 1 + Math.floor(rand() * 62)) % 64]!;
      out.push(Buffer.from(p.slice(0, i) + c + p.slice(i + 1), 'latin1'));
    }
    out.push(Buffer.from(p.slice(0, -1), 'latin1'), Buffer.from(`${p}A`, 'latin1'));
    for (const strip of [22, 27, 43, 64, 86]) out.push(Buffer.from(p.slice(0, -strip), 'latin1'));
    out.push(
      Buffer.from(`U2FsdGVkX1${p}`, 'latin1'),
      Buffer.from(`${p.slice(0, 40)}=${p.slice(41)}`, 'latin1'),
    );
    out.push(Buffer.from(`${p.slice(0, 30)}\u00ff${p.slice(31)}`, 'latin1'));
  }
  for (const n of [35, 36, 37, 58, 79, 100, 200, 1500, 1501]) out.push(Buffer.from(b64(n), 'latin1'));
  for (let i = 0; i < 100; i++) out.push(Buffer.from(b64(36 + Math.floor(rand() * 300)), 'latin1'));
  for (let i = 0; i < 30; i++)
    out.push(
      Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 400) }, () => Math.floor(rand() * 256))),
    );
  return out;
}
