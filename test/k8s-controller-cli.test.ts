// `knockgate controller` through the built CLI (dist/, made by `npx tsc -p tsconfig.json`, which
// `make test` runs first), against the API emulator in this process on the real clock: bad input
// is one `knockgate: ...` line and exit status 2; a running controller takes the Lease, drives a
// grant Pending → Active with a simulated agent, and on SIGTERM releases the Lease and exits 0.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINALIZER } from '../controller/reconciler/grant-reconciler.js';
import { ControllerBench } from './helpers/k8s-controller-harness.js';
import { waitFor } from './helpers/wait.js';

const CLI = join(import.meta.dirname, '..', 'dist/cmd/knockgate.js');
const tmp = mkdtempSync(join(tmpdir(), 'kg-controller-cli-'));

beforeAll(() => {
  if (!existsSync(CLI))
    throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" first (make test does)`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A loopback port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function knockgate(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, KUBECONFIG: '', POD_NAMESPACE: '' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('knockgate controller: bad input', () => {
  it('names the config file line, or the kubeconfig, in one line with exit status 2', () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(
      bad,
      'apiVersion: knockgate.io/v1alpha1\nkind: ControllerConfig\nmanualGrants:\n  largestPrefix: {ipv4: 2}\n',
    );
    let r = knockgate('controller', '--config', bad, '--kubeconfig', bad);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `knockgate: ${bad}:4: manualGrants.largestPrefix.ipv4: must be from 8 to 32, got 2\n`,
    );
    r = knockgate('controller', '--kubeconfig', join(tmp, 'nope'));
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^knockgate: kubeconfig .*nope: cannot read/);
    r = knockgate('controller', '--kubeconfig', bad, '--namespace', 'Not_A_Namespace');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('knockgate: --namespace: "Not_A_Namespace" is not a namespace name\n');
  });
});

describe('knockgate controller: running', () => {
  let bench: ControllerBench;
  let child: ChildProcess | undefined;

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await bench?.stop();
  });

  it('leads, reconciles a grant, and releases the Lease on SIGTERM', async () => {
    // The emulator on the real clock (the child process has no fake one).
    bench = new ControllerBench();
    await bench.startRealTime();
    const port = await freePort();
    const kubeconfig = join(tmp, 'kubeconfig');
    writeFileSync(kubeconfig, bench.cluster.server.kubeconfig());
    let stderr = '';
    child = spawn(
      process.execPath,
      [
        CLI,
        'controller',
        '--kubeconfig',
        kubeconfig,
        '--identity',
        'ctl-cli',
        '--namespace',
        'default',
        '--metrics-address',
        `127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));

    await waitFor(() => bench.lease()?.spec.holderIdentity === 'ctl-cli', {
      what: 'the lease',
      timeoutMs: 20_000,
    });
    const policy = bench.createPolicy('ssh');
    const name = bench.createGrant(bench.knockGrant(policy, '10.7.0.1')).metadata.name;
    await waitFor(() => bench.grant(name)?.status?.phase === 'Pending', { what: 'Pending' });
    expect(bench.grant(name)!.metadata.finalizers).toEqual([FINALIZER]);
    bench.report(name, 'node-a', 'Applied');
    await waitFor(() => bench.grant(name)?.status?.phase === 'Active', { what: 'Active' });
    await waitFor(() => bench.hasEvent('Opened', name), { what: 'the Opened event' });
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await health.text()).toBe('ok\n');
    // Ready: informers synced and, as the leader, every cached object reconciled once.
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, {
      what: '/readyz 200',
    });
    expect(await (await fetch(`http://127.0.0.1:${port}/readyz`)).text()).toBe('ok: leader\n');
    const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(scraped).toContain('knockgate_controller_leader 1');
    expect(scraped).toContain('knockgate_controller_grants{phase="Active"} 1');
    expect(scraped).toContain('knockgate_controller_grants_active{target="node"} 1');
    expect(scraped).toContain('knockgate_controller_grants_active{target="securityGroup"} 0');

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(bench.lease()!.spec.holderIdentity).toBe('');
    expect(stderr).toBe('');
  });
});
