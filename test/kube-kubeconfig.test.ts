// The sniffer's own kubeconfig loader and transport (controller/kube/kubeconfig.ts, connection.ts)
// against the Kubernetes API emulator: a kubeconfig with CA data and a token, a token file re-read
// when the ServiceAccount token rotates (and at once after a 401), the in-cluster service account,
// client certificates, and what it refuses (exec and auth-provider plugins, insecure TLS, plain
// http, ...) in one line naming the kubeconfig and the user. Re-reads run on an injected clock.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { FakeClock } from '../api/clock.js';
import type { AccessGrant } from '../api/types.js';
import { buildGrant } from '../controller/grants/build.js';
import { KubeConnection, TOKEN_REREAD_MS } from '../controller/kube/connection.js';
import { KubeApiError } from '../controller/kube/errors.js';
import { KubeGrantStore } from '../controller/kube/grant-store.js';
import { KubeConfigError, loadKubeConnection } from '../controller/kube/kubeconfig.js';
import { KubeReplayStore } from '../controller/kube/replay-store.js';
import { KUBE_STORE_DEFAULTS } from '../controller/kube/limits.js';
import { requestTimeoutOf } from '../controller/kube/request.js';
import { startEmulatedCluster, type EmulatedCluster } from './helpers/kube-store-emulator.js';

const ADMIN = 'admin';
const NOBODY = 'system:serviceaccount:knockgate:nobody';

let cluster: EmulatedCluster;
let clock: FakeClock;
let dir: string;
const connections: KubeConnection[] = [];

beforeAll(async () => {
  cluster = await startEmulatedCluster({
    users: [
      {
        name: ADMIN,
        token: 'admin-token-0123456789',
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
      },
      { name: NOBODY, token: 'nobody-token-0123456789', rules: [] },
    ],
  });
});
afterAll(async () => {
  await cluster?.stop();
});
beforeEach(async () => {
  clock = new FakeClock(Date.now());
  dir = await mkdtemp(join(tmpdir(), 'knockgate-kubeconnection-'));
});
afterEach(async () => {
  for (const c of connections.splice(0)) c.close();
  await rm(dir, { recursive: true, force: true });
});

async function load(opts: Parameters<typeof loadKubeConnection>[0]): Promise<KubeConnection> {
  const c = await loadKubeConnection({ now: () => clock.now(), ...opts });
  connections.push(c);
  return c;
}

/** A kubeconfig for the emulator (CA as data) whose one user is `user`. */
function kubeconfig(user: Record<string, unknown>, cluster_: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'emu',
        cluster: {
          server: cluster.server.url,
          'certificate-authority-data': Buffer.from(cluster.server.caCert).toString('base64'),
          ...cluster_,
        },
      },
    ],
    users: [{ name: 'me', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'emu', user: 'me' } }],
    'current-context': 'ctx',
  });
}

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

function claim(kubeConfig: KubeConnection, digest: string): Promise<string> {
  return new KubeReplayStore({ kubeConfig, clock }).claim(
    digest.repeat(32).slice(0, 32),
    new Date(clock.now() + 60_000),
  );
}

describe('loadKubeConnection: a kubeconfig file', () => {
  it("the emulator's own kubeconfig (CA data, token): requests, a request deadline, and a grant store with its watch", async () => {
    const path = await file('kubeconfig', cluster.server.kubeconfig(ADMIN));
    const kc = await load({ kubeconfig: path });
    expect(kc.server).toBe(cluster.server.url);
    expect(requestTimeoutOf(kc)).toBe(KUBE_STORE_DEFAULTS.requestTimeoutMs);
    expect(requestTimeoutOf(await load({ kubeconfig: path, requestTimeoutMs: 2_500 }))).toBe(2_500);
    expect((await load({ env: { KUBECONFIG: `${path}:/nonexistent` } })).server).toBe(cluster.server.url);
    expect(await claim(kc, 'a1')).toBe('claimed');
    expect(await claim(kc, 'a1')).toBe('replay');

    const store = new KubeGrantStore({ kubeConfig: kc, clock });
    try {
      const seen: string[] = [];
      const off = store.watch((e) => seen.push(JSON.stringify(e)));
      const grant: AccessGrant = buildGrant(
        {
          kind: 'grant',
          policy: 'ssh',
          method: 'knock',
          source: '10.0.0.2',
          ports: ['22/tcp'],
          durationSeconds: 60,
        },
        { clock, node: 'node-a' },
      );
      await store.create(grant);
      expect((await store.list()).map((g) => g.metadata.name)).toEqual([grant.metadata.name]);
      await until(() => seen.some((e) => e.includes(grant.metadata.name)));
      off();
    } finally {
      await store.close();
    }
  });

  it('a token of a user without rights: one-line 403 naming the request', async () => {
    const kc = await load({ kubeconfig: await file('kc', kubeconfig({ token: 'nobody-token-0123456789' })) });
    const err = (await claim(kc, 'b2').catch((e: unknown) => e)) as KubeApiError;
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err.status).toBe(403);
    expect(err.message).toMatch(
      /^create replayclaim .*: .*cannot create resource "replayclaims".* \(HTTP 403\)$/,
    );
  });

  it('a token file is re-read when the token rotates (every minute), and at once after a 401', async () => {
    const tokenPath = await file('token', 'admin-token-0123456789\n');
    const kc = await load({ kubeconfig: await file('kc', kubeconfig({ tokenFile: 'token' })) });
    expect(await claim(kc, 'c3')).toBe('claimed');
    // Rotated to a token of a user without rights: the old token is used until the re-read is due.
    await writeFile(tokenPath, 'nobody-token-0123456789');
    expect(await claim(kc, 'c4')).toBe('claimed');
    clock.advance(TOKEN_REREAD_MS);
    await expect(claim(kc, 'c5')).rejects.toMatchObject({ status: 403 });
    // A token the server does not know (401) makes the next request read the file again, no wait.
    await writeFile(tokenPath, 'not-a-token');
    clock.advance(TOKEN_REREAD_MS);
    await expect(claim(kc, 'c6')).rejects.toMatchObject({ status: 401 });
    await writeFile(tokenPath, 'admin-token-0123456789');
    expect(await claim(kc, 'c7')).toBe('claimed');
    // A file that vanished keeps the token read before.
    await rm(tokenPath);
    clock.advance(TOKEN_REREAD_MS);
    expect(await claim(kc, 'c8')).toBe('claimed');
  });

  it('certificate-authority as a file relative to the kubeconfig; a wrong CA fails the TLS handshake', async () => {
    await file('ca.crt', cluster.server.caCert);
    const good = kubeconfig(
      { token: 'admin-token-0123456789' },
      {
        'certificate-authority-data': undefined,
        'certificate-authority': 'ca.crt',
      },
    );
    const kc = await load({ kubeconfig: await file('kc', good) });
    expect(await claim(kc, 'd4')).toBe('claimed');
    // The system CAs do not know the emulator's self-signed certificate.
    const none = kubeconfig({ token: 'admin-token-0123456789' }, { 'certificate-authority-data': undefined });
    const untrusted = await load({ kubeconfig: await file('kc2', none) });
    const err = (await claim(untrusted, 'd5').catch((e: unknown) => e)) as KubeApiError;
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err.status).toBe(0);
    expect(err.message).toMatch(/^create replayclaim .*: API server unreachable: .*certificate/i);
  });

  it('client-certificate / client-key, as files or data, go to the TLS agent', async () => {
    await file('c.pem', 'CERT');
    await file('k.pem', 'KEY');
    const fromFiles = await load({
      kubeconfig: await file('kc', kubeconfig({ 'client-certificate': 'c.pem', 'client-key': 'k.pem' })),
    });
    const opts = (a: KubeConnection) => (a.agent as unknown as { options: Record<string, unknown> }).options;
    expect(String(opts(fromFiles).cert)).toBe('CERT');
    expect(String(opts(fromFiles).key)).toBe('KEY');
    expect(fromFiles.headers()).toEqual({});
    const fromData = await load({
      kubeconfig: await file(
        'kc2',
        kubeconfig({
          'client-certificate-data': Buffer.from('CERT2').toString('base64'),
          'client-key-data': Buffer.from('KEY2').toString('base64'),
        }),
      ),
    });
    expect(String(opts(fromData).cert)).toBe('CERT2');
    expect(opts(fromData).rejectUnauthorized).toBe(true);
  });
});

describe('loadKubeConnection: in a pod', () => {
  it('the service account token (re-read on rotation) and CA, the API address from the environment', async () => {
    const sa = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
    const env = {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: String(cluster.server.port),
    };
    await expect(load({ env, serviceAccountRoot: dir })).rejects.toThrow(
      `in-cluster config: ${join(sa, 'token')} is missing (no service account token mounted?)`,
    );
    await mkdir(sa, { recursive: true });
    await writeFile(join(sa, 'token'), 'admin-token-0123456789');
    await writeFile(join(sa, 'ca.crt'), cluster.server.caCert);
    const kc = await load({ env, serviceAccountRoot: dir });
    expect(kc.server).toBe(`https://127.0.0.1:${cluster.server.port}`);
    expect(kc.source).toBe('in-cluster config');
    expect(await claim(kc, 'e5')).toBe('claimed');
    await writeFile(join(sa, 'token'), 'nobody-token-0123456789');
    clock.advance(TOKEN_REREAD_MS);
    await expect(claim(kc, 'e6')).rejects.toMatchObject({ status: 403 });
    await expect(load({ env: {} })).rejects.toThrow(/^no Kubernetes API: pass --kubeconfig/);
    await expect(
      load({ env: { ...env, KUBERNETES_SERVICE_PORT: 'x' }, serviceAccountRoot: dir }),
    ).rejects.toThrow('in-cluster config: KUBERNETES_SERVICE_PORT "x" is not a port');
  });
});

describe('loadKubeConnection: refusals, one line naming the kubeconfig', () => {
  it('exec and auth-provider plugins, username/password, impersonation: named with the user', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        {
          exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws', args: ['eks', 'get-token'] },
        },
        'an exec credential plugin',
      ],
      [{ 'auth-provider': { name: 'gcp' } }, 'an auth-provider plugin'],
      [{ username: 'u', password: 'p' }, 'username/password'],
      [{ token: 't', as: 'root' }, 'impersonation (as)'],
    ];
    for (const [user, what] of cases) {
      const path = await file('kc', kubeconfig(user));
      const err = (await load({ kubeconfig: path }).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(KubeConfigError);
      expect(err.message).toBe(
        `kubeconfig ${path}: user "me": ${what} is not supported by knockgate's kubeconfig loader (use a token, a tokenFile or a client certificate)`,
      );
    }
  });

  it('insecure TLS, plain http, a proxy, half a client certificate, bad data, a missing file or context', async () => {
    const cases: [string, string][] = [
      [
        kubeconfig({ token: 't' }, { 'insecure-skip-tls-verify': true }),
        'cluster "emu": insecure-skip-tls-verify true is not supported (give its CA)',
      ],
      [
        kubeconfig({ token: 't' }, { server: 'http://127.0.0.1:8080' }),
        'cluster "emu": server http://127.0.0.1:8080: only https is supported (credentials would travel in clear)',
      ],
      [
        kubeconfig({ token: 't' }, { 'proxy-url': 'http://proxy:3128' }),
        'cluster "emu": proxy-url is not supported',
      ],
      [
        kubeconfig({ 'client-certificate-data': 'Q0VSVA==' }),
        'user "me": client-certificate and client-key go together: one of them is missing',
      ],
      [
        kubeconfig({ token: 't' }, { 'certificate-authority-data': '%%%' }),
        'cluster "emu": certificate-authority-data is not base64',
      ],
      [
        kubeconfig({ tokenFile: 'missing-token' }),
        `user "me": token file ${join(dir, 'missing-token')}: ENOENT: no such file or directory, open '${join(dir, 'missing-token')}'`,
      ],
      ['clusters: [\n', ''],
      ['just a string', 'not a kubeconfig (want a YAML mapping with clusters, users, contexts)'],
    ];
    for (const [text, why] of cases) {
      const path = await file('kc', text);
      const err = (await load({ kubeconfig: path }).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(KubeConfigError);
      expect(err.message).not.toContain('\n');
      if (why) expect(err.message).toBe(`kubeconfig ${path}: ${why}`);
      else expect(err.message).toMatch(new RegExp(`^kubeconfig ${path}: `));
    }
    const good = await file('good', kubeconfig({ token: 't' }));
    await expect(load({ kubeconfig: good, context: 'other' })).rejects.toThrow(
      `kubeconfig ${good}: no context "other"`,
    );
    const missing = join(dir, 'nope');
    await expect(load({ kubeconfig: missing })).rejects.toThrow(
      new RegExp(`^kubeconfig ${missing}: cannot read: ENOENT`),
    );
  });
});

/** Wait (real time, bounded) for a condition a watch makes true. */
async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
