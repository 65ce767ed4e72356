// The emulator treats a Secret's stringData as the real API server does: write-only, merged into
// data (base64 of the text, overriding a data key of the same name) on create, update and every kind
// of patch, never stored, returned or sent in a watch event. The real kubectl 1.32: both
// `kubectl create secret generic --from-literal` and `kubectl apply` of a manifest with stringData
// end up in data.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiServer } from './emulators/kube-apiserver/server.js';

const TOKEN = 'admin-token-stringdata-test';
const NS = 'knockgate';
const SECRETS = `/api/v1/namespaces/${NS}/secrets`;
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
interface Reply {
  status: number;
  body: Json;
}

let server: KubeApiServer;
let dir: string;
let kubeconfig: string;

function call(
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<Reply> {
  return new Promise((done, fail) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        method,
        path,
        ca: server.caCert,
        headers: {
          Authorization: `Bearer ${TOKEN}`,
          Accept: 'application/json',
          ...(text === undefined
            ? {}
            : { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) }),
        },
        timeout: 10_000,
      },
      (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString()));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: data ? JSON.parse(data) : undefined }));
      },
    );
    req.on('error', fail);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.end(text);
  });
}

function kubectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const full = ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args];
  return new Promise((done) => {
    execFile(
      '/usr/bin/kubectl',
      full,
      { timeout: 30_000, env: { ...process.env, HOME: dir, KUBECONFIG: '' } },
      (err, stdout, stderr) =>
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function kubectlOk(args: string[]): Promise<string> {
  const r = await kubectl(args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kg-stringdata-'));
  server = new KubeApiServer({
    namespaces: [NS],
    users: [{ name: 'admin', token: TOKEN, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] }],
  });
  await server.start();
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, server.kubeconfig(), { mode: 0o600 });
});

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Secret stringData (emulator)', () => {
  it('create: stringData is merged into data, wins over a data key of the same name, never returned', async () => {
    const created = await call('POST', SECRETS, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'create' },
      data: { KEY_BASE64: b64('old'), OTHER: b64('kept') },
      stringData: { KEY_BASE64: 'new', HMAC_KEY_BASE64: 'h m\u00e4c' },
    });
    expect(created.status).toBe(201);
    expect(created.body.stringData).toBeUndefined();
    expect(created.body.data).toEqual({
      KEY_BASE64: b64('new'),
      OTHER: b64('kept'),
      HMAC_KEY_BASE64: b64('h m\u00e4c'),
    });
    const got = await call('GET', `${SECRETS}/create`);
    expect(got.body.stringData).toBeUndefined();
    expect(got.body.data).toEqual(created.body.data);
    const list = await call('GET', SECRETS);
    const item = list.body.items.find((s: Json) => s.metadata.name === 'create');
    expect(item.stringData).toBeUndefined();
    expect(item.data.KEY_BASE64).toBe(b64('new'));
  });

  it('a Secret with only stringData gets data; an empty stringData adds nothing', async () => {
    const only = await call('POST', SECRETS, { metadata: { name: 'only' }, stringData: { K: 'v' } });
    expect(only.status).toBe(201);
    expect(only.body).not.toHaveProperty('stringData');
    expect(only.body.data).toEqual({ K: b64('v') });
    const empty = await call('POST', SECRETS, { metadata: { name: 'empty' }, stringData: {} });
    expect(empty.status).toBe(201);
    expect(empty.body).not.toHaveProperty('stringData');
    expect(empty.body).not.toHaveProperty('data');
  });

  it('update (PUT) and merge, strategic and JSON patches merge stringData the same way', async () => {
    const created = await call('POST', SECRETS, { metadata: { name: 'writes' }, data: { A: b64('a') } });
    const put = await call('PUT', `${SECRETS}/writes`, {
      metadata: { name: 'writes', resourceVersion: created.body.metadata.resourceVersion },
      data: { A: b64('a') },
      stringData: { B: 'b' },
    });
    expect(put.status).toBe(200);
    expect(put.body).not.toHaveProperty('stringData');
    expect(put.body.data).toEqual({ A: b64('a'), B: b64('b') });

    const merge = await call(
      'PATCH',
      `${SECRETS}/writes`,
      { stringData: { A: 'A2' } },
      'application/merge-patch+json',
    );
    expect(merge.status).toBe(200);
    expect(merge.body).not.toHaveProperty('stringData');
    expect(merge.body.data).toEqual({ A: b64('A2'), B: b64('b') });

    const strategic = await call(
      'PATCH',
      `${SECRETS}/writes`,
      { stringData: { C: 'c' } },
      'application/strategic-merge-patch+json',
    );
    expect(strategic.status).toBe(200);
    expect(strategic.body.data).toEqual({ A: b64('A2'), B: b64('b'), C: b64('c') });

    const json = await call(
      'PATCH',
      `${SECRETS}/writes`,
      [{ op: 'add', path: '/stringData', value: { B: 'B2' } }],
      'application/json-patch+json',
    );
    expect(json.status).toBe(200);
    expect(json.body).not.toHaveProperty('stringData');
    expect(json.body.data).toEqual({ A: b64('A2'), B: b64('B2'), C: b64('c') });

    // The same stringData again changes nothing: a no-op write keeps the resourceVersion.
    const again = await call(
      'PATCH',
      `${SECRETS}/writes`,
      { stringData: { B: 'B2' } },
      'application/merge-patch+json',
    );
    expect(again.body.metadata.resourceVersion).toBe(json.body.metadata.resourceVersion);
  });

  it('watch events carry data, never stringData', async () => {
    const list = await call('GET', SECRETS);
    const from = list.body.metadata.resourceVersion as string;
    await call('POST', SECRETS, { metadata: { name: 'watched' }, stringData: { W: 'w' } });
    const events = await new Promise<Json[]>((done, fail) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: `${SECRETS}?watch=true&resourceVersion=${from}&timeoutSeconds=1`,
          ca: server.caCert,
          headers: { Authorization: `Bearer ${TOKEN}` },
          timeout: 10_000,
        },
        (res) => {
          let data = '';
          res.on('data', (d: Buffer) => (data += d.toString()));
          res.on('end', () =>
            done(
              data
                .split('\n')
                .filter(Boolean)
                .map((l) => JSON.parse(l)),
            ),
          );
        },
      );
      req.on('error', fail);
      req.end();
    });
    const added = events.find((e) => e.object?.metadata?.name === 'watched');
    expect(added?.type).toBe('ADDED');
    expect(added.object).not.toHaveProperty('stringData');
    expect(added.object.data).toEqual({ W: b64('w') });
  });

  it('keys of data and stringData must be config keys (422 with the field path)', async () => {
    const bad = await call('POST', SECRETS, { metadata: { name: 'bad' }, stringData: { 'no spaces': 'x' } });
    expect(bad.status).toBe(422);
    expect(bad.body.message).toContain('data[no spaces]: Invalid value: "no spaces": a valid config key');
    const wrongType = await call('POST', SECRETS, { metadata: { name: 'bad2' }, stringData: { K: 1 } });
    expect(wrongType.status).toBe(400);
  });

  it('kubectl create secret --from-literal and kubectl apply with stringData both end up in data', async () => {
    // kubectl sends the Secret it creates as protobuf (decoded by the emulator like the real server).
    await kubectlOk([
      'create',
      'secret',
      'generic',
      'literal',
      '-n',
      NS,
      '--from-literal=KEY_BASE64=s3cret',
      '--from-literal=HMAC_KEY_BASE64=h m\u00e4c',
      '--type=Opaque',
    ]);
    const literal = JSON.parse(await kubectlOk(['get', 'secret', 'literal', '-n', NS, '-o', 'json'])) as Json;
    expect(literal.data).toEqual({ KEY_BASE64: b64('s3cret'), HMAC_KEY_BASE64: b64('h m\u00e4c') });
    expect(literal.type).toBe('Opaque');
    expect(literal.metadata.namespace).toBe(NS);
    // The built object through apply (JSON) lands the same way.
    const built = await kubectlOk([
      'create',
      'secret',
      'generic',
      'literal-applied',
      '-n',
      NS,
      '--from-literal=KEY_BASE64=s3cret',
      '--dry-run=client',
      '-o',
      'yaml',
    ]);
    writeFileSync(join(dir, 'literal.yaml'), built);
    await kubectlOk(['apply', '-f', join(dir, 'literal.yaml')]);
    const viaApply = JSON.parse(
      await kubectlOk(['get', 'secret', 'literal-applied', '-n', NS, '-o', 'json']),
    ) as Json;
    expect(viaApply.data).toEqual({ KEY_BASE64: b64('s3cret') });
    expect(literal.stringData).toBeUndefined();

    const manifest = join(dir, 'secret.yaml');
    const yaml = (value: string) =>
      `apiVersion: v1\nkind: Secret\nmetadata:\n  name: applied\n  namespace: ${NS}\ntype: Opaque\nstringData:\n  KEY_BASE64: ${value}\n`;
    writeFileSync(manifest, yaml('first'));
    await kubectlOk(['apply', '-f', manifest]);
    let applied = JSON.parse(await kubectlOk(['get', 'secret', 'applied', '-n', NS, '-o', 'json'])) as Json;
    expect(applied.data).toEqual({ KEY_BASE64: b64('first') });
    expect(applied.stringData).toBeUndefined();
    // A second apply (a patch computed by kubectl) with a rotated value.
    writeFileSync(manifest, yaml('second'));
    await kubectlOk(['apply', '-f', manifest]);
    applied = JSON.parse(await kubectlOk(['get', 'secret', 'applied', '-n', NS, '-o', 'json'])) as Json;
    expect(applied.data).toEqual({ KEY_BASE64: b64('second') });
    expect(applied.stringData).toBeUndefined();
  });
});
