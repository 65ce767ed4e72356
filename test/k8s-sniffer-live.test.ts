// `knockgate sniffer` as a program, live: in a network namespace acting as node-a, the Kubernetes
// API emulator (its own program, reachable only inside that namespace) set up with the real kubectl,
// and the sniffer capturing on its veth with the sniffer's RBAC. The real `knock` and `fwknop`
// clients in a client namespace knock and send an SPA packet across the veth; the grants appear in
// the API (kubectl get accessgrants). Also: the command's one-line errors.

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressHex } from '../controller/grants/build.js';
import type { AccessGrant } from '../api/types.js';
import { knockgateCli } from './helpers/capture-live.js';
import { skipWithoutNetns, Topology, waitFor, type Host } from './helpers/netns.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const VITE_NODE = `${ROOT}node_modules/.bin/vite-node`;
const NS = 'knockgate';
const METRICS = '127.0.0.1:9465';
// Test keys (nothing else uses them).
const KEY = Buffer.alloc(32, 7).toString('base64');
const HMAC = Buffer.alloc(64, 9).toString('base64');

// Secret values are base64 of the fwknop --key-gen lines' base64 text (data, as the API returns it).
const b64 = (text: string) => Buffer.from(text).toString('base64');

const RBAC = `users:
  - name: admin
    token: admin-token-0123456789
    rules:
      - {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
  - name: system:serviceaccount:knockgate:sniffer
    token: sniffer-token-0123456789
    rules:
      - {apiGroups: [knockgate.io], resources: [knockpolicies], verbs: [get, list, watch]}
      - {apiGroups: [knockgate.io], resources: [replayclaims], verbs: [create, get, delete]}
      - {apiGroups: [knockgate.io], resources: [accessgrants], verbs: [create, get, patch, delete]}
      - {apiGroups: [""], resources: [nodes], verbs: [get, list, watch]}
      - {apiGroups: [""], resources: [secrets], verbs: [get, list, watch], namespaces: [knockgate]}
`;

const MANIFESTS = `apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {role: edge}}
---
apiVersion: v1
kind: Secret
metadata: {name: ssh-spa, namespace: ${NS}}
data: {KEY_BASE64: "${b64(KEY)}", HMAC_KEY_BASE64: "${b64(HMAC)}"}
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: knock-ssh}
spec:
  knock: {sequence: ["7000/tcp", "8000/tcp", "9000/tcp"], tcpFlags: [syn]}
  grant: {ports: ["22/tcp"], durationSeconds: 60}
  nodeSelector: {role: edge}
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: spa-ssh}
spec:
  spa: {keySecretRef: {name: ssh-spa}, port: "62201/udp"}
  grant: {ports: ["22/tcp"], durationSeconds: 60}
  nodeSelector: {role: edge}
`;

/** Spawn a TypeScript entry point in `host` and collect its output. */
function spawnTs(host: Host, path: string, args: string[]): { child: ChildProcess; out: () => string } {
  const child = host.spawn(process.execPath, [VITE_NODE, `${ROOT}${path}`, '--', ...args], { cwd: ROOT });
  let out = '';
  const take = (chunk: Buffer) => {
    if (out.length < 200_000) out += chunk.toString('utf8');
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  return { child, out: () => out };
}

describe.skipIf(skipWithoutNetns('k8s-sniffer-live'))('knockgate sniffer, live in a namespace', () => {
  let net: Topology;
  let node: Host;
  let client: Host;
  let dir: string;
  let kubeconfig: string;
  let sniffer: ReturnType<typeof spawnTs>;

  const kubectl = (args: string[]) =>
    node.run('kubectl', ['--kubeconfig', kubeconfig, '--context', 'admin', ...args], { timeoutMs: 30_000 });

  async function grants(): Promise<AccessGrant[]> {
    const { stdout } = await kubectl(['get', 'accessgrants', '-o', 'json']);
    return (JSON.parse(stdout) as { items: AccessGrant[] }).items;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kg-k8s-sniffer-'));
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(join(dir, 'rbac.yaml'), RBAC);
    writeFileSync(join(dir, 'manifests.yaml'), MANIFESTS);
    net = await Topology.create(['node', 'client']);
    node = net.ns('node');
    client = net.ns('client');
    const api = spawnTs(node, 'test/emulators/kube-apiserver/main.ts', [
      '--port',
      '0',
      '--kubeconfig',
      kubeconfig,
      '--rbac',
      join(dir, 'rbac.yaml'),
      '--crds',
      `${ROOT}crds`,
      '--namespace',
      NS,
    ]);
    await waitFor(() => api.out().includes('ready on'), { timeoutMs: 45_000, what: 'the API emulator' });
    await kubectl(['apply', '-f', join(dir, 'manifests.yaml')]);
    sniffer = spawnTs(node, 'cmd/knockgate.ts', [
      'sniffer',
      '--kubeconfig',
      kubeconfig,
      '--context',
      'sniffer',
      '--namespace',
      NS,
      '--node',
      'node-a',
      '--interface',
      node.ifname['client']!,
      '--metrics-address',
      METRICS,
    ]);
    await waitFor(() => sniffer.out().includes('"event":"started"'), {
      timeoutMs: 45_000,
      what: 'the sniffer to start capturing',
    }).catch((err: Error) => {
      throw new Error(`${err.message}: ${sniffer.out()}`);
    });
  });

  afterAll(async () => {
    await net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('started with both policies on the veth', () => {
    const started = sniffer
      .out()
      .split('\n')
      .find((l) => l.includes('"event":"started"'))!;
    const line = JSON.parse(started) as { policies: string[]; interfaces: string[] };
    expect(line.policies.sort()).toEqual(['knock-ssh', 'spa-ssh']);
    expect(line.interfaces).toEqual([node.ifname['client']]);
  });

  it('a real knock sequence becomes an AccessGrant for this node', async () => {
    const src = client.addr4['node']!;
    await client.run('knock', [node.addr4['client']!, '7000', '8000', '9000']);
    const name = `knock-ssh-${addressHex(src)}-node-a`;
    const grant = await waitFor(async () => (await grants()).find((g) => g.metadata.name === name), {
      timeoutMs: 20_000,
      what: `grant ${name}`,
    });
    expect(grant.spec).toMatchObject({
      source: `${src}/32`,
      method: 'knock',
      observedBy: 'node-a',
      targets: { nodes: ['node-a'] },
    });
    expect(grant.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'KnockPolicy', name: 'knock-ssh' });
  });

  it('a real fwknop SPA packet becomes an AccessGrant and a ReplayClaim', async () => {
    const src = client.addr4['node']!;
    await client.run('env', [
      `HOME=${dir}`,
      'fwknop',
      '--no-rc-file',
      '--no-save-args',
      '-A',
      'tcp/22',
      '-a',
      src,
      '-D',
      node.addr4['client']!,
      '-p',
      '62201',
      '--key-base64-rijndael',
      KEY,
      '--key-base64-hmac',
      HMAC,
    ]);
    const grant = await waitFor(
      async () => (await grants()).find((g) => g.spec.method === 'spa' && g.spec.source === `${src}/32`),
      { timeoutMs: 20_000, what: 'the SPA grant' },
    );
    expect(grant.spec.policyRef).toEqual({ name: 'spa-ssh' });
    const { stdout } = await kubectl(['get', 'replayclaims', '-o', 'json']);
    const claims = (JSON.parse(stdout) as { items: { spec: { claimedBy?: string } }[] }).items;
    expect(claims.map((c) => c.spec.claimedBy)).toEqual(['node-a']);
    // Keys never reach the sniffer's log.
    expect(sniffer.out()).not.toContain(KEY);
    expect(sniffer.out()).not.toContain(HMAC);
  });

  it('its /metrics moved with the traffic above; /readyz and /healthz answer 200', async () => {
    // Scraped inside the node namespace (the metrics listen on its loopback only).
    const get = async (path: string) => {
      const { stdout } = await node.run(process.execPath, [
        '-e',
        `fetch('http://${METRICS}${path}').then(async (r) => process.stdout.write(r.status + '\\n' + (await r.text())))`,
      ]);
      const [status, ...body] = stdout.split('\n');
      return { status: Number(status), body: body.join('\n') };
    };
    // Ready: policies, nodes and secrets listed and the capture open on the veth.
    expect(await get('/readyz')).toEqual({ status: 200, body: 'ok\n' });
    expect((await get('/healthz')).status).toBe(200);
    const { body } = await get('/metrics');
    const value = (re: RegExp) => Number(re.exec(body)?.[1] ?? NaN);
    expect(
      value(/^knockgate_sniffer_grants_total\{[^}]*method="knock"[^}]*\} (\d+)/m),
    ).toBeGreaterThanOrEqual(1);
    expect(value(/^knockgate_sniffer_grants_total\{[^}]*method="spa"[^}]*\} (\d+)/m)).toBeGreaterThanOrEqual(
      1,
    );
    expect(value(/^knockgate_sniffer_active_policies (\d+)/m)).toBe(2);
    // Packets by result, from the live capture: the knock's first two ports are steps, the third
    // completes it; fwknop's packet passed the native gate and was accepted.
    const packets = (result: string) =>
      value(new RegExp(`^knockgate_sniffer_packets_total\\{result="${result}"\\} (\\d+)`, 'm'));
    expect(packets('knock-step')).toBeGreaterThanOrEqual(2);
    expect(packets('knock-complete')).toBe(1);
    expect(packets('spa-accepted')).toBe(1);
    expect(packets('spa-refused')).toBe(0);
    expect(packets('spa-gate-refused')).toBe(0);
    // The capture's drop counter, per interface, under the name standalone uses.
    expect(
      value(
        new RegExp(
          `^knockgate_capture_dropped_packets\\{interface="${node.ifname['client']}"\\} (\\d+)`,
          'm',
        ),
      ),
    ).toBe(0);
  });

  it('stops on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) =>
      sniffer.child.once('exit', (code) => resolve(code)),
    );
    // The spawned process is `ip netns exec node vite-node ...`; vite-node forwards the signal.
    sniffer.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('says what is missing in one line and exits 2', async () => {
    const noNode = await knockgateCli(node, ['sniffer', '--kubeconfig', kubeconfig, '--namespace', NS]);
    expect(noNode.code).toBe(2);
    expect(noNode.stderr.trim()).toBe(
      'knockgate: --node NAME is required (or set NODE_NAME, from spec.nodeName)',
    );
    const badFile = await knockgateCli(node, [
      'sniffer',
      '--kubeconfig',
      join(dir, 'missing'),
      '--namespace',
      NS,
      '--node',
      'node-a',
    ]);
    expect(badFile.code).toBe(2);
    expect(badFile.stderr).toMatch(/^knockgate: kubeconfig .*missing: cannot read/);
  });
});
