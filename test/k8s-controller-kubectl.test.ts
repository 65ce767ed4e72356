// The revoke finalizer as a person meets it: the real kubectl 1.32 against the API emulator, with
// the controller leading on a FakeClock and a simulated agent. `kubectl delete accessgrant NAME`
// marks the grant Revoked at once and returns only once the node has reported Removed (the
// finalizer is gone); `kubectl get accessgrants` shows the phases; `kubectl get events` shows
// what happened to the grant.

import { execFile, type ExecFileException } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControllerBench } from './helpers/k8s-controller-harness.js';

const KUBECTL = '/usr/bin/kubectl';
let bench: ControllerBench;
let dir: string;

beforeEach(async () => {
  bench = new ControllerBench();
  await bench.start();
  dir = mkdtempSync(join(tmpdir(), 'kg-controller-kubectl-'));
  writeFileSync(join(dir, 'kubeconfig'), bench.cluster.server.kubeconfig('admin'));
});

afterEach(async () => {
  await bench.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(
      KUBECTL,
      ['--kubeconfig', join(dir, 'kubeconfig'), '--cache-dir', join(dir, 'cache'), ...args],
      { timeout: 40_000, env: { ...process.env, HOME: dir, KUBECONFIG: '' } },
      (err: ExecFileException | null, stdout, stderr) =>
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('kubectl delete accessgrant with the controller running', () => {
  it('marks the grant Revoked and returns once the node reports Removed', async () => {
    const m = bench.manager('ctl-a');
    await bench.until(() => m.isLeader(), 'leading');
    const policy = bench.createPolicy('ssh', { durationSeconds: 600 });
    const name = bench.createGrant(bench.knockGrant(policy, '10.8.0.1', { seconds: 600 })).metadata.name;
    await bench.until(() => bench.grant(name)?.status?.phase === 'Pending', 'Pending');
    bench.report(name, 'node-a', 'Applied');
    await bench.until(() => bench.grant(name)?.status?.phase === 'Active', 'Active');
    const get = await kubectl('get', 'accessgrants');
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(
      new RegExp(`^${name}\\s+10\\.8\\.0\\.1/32\\s+\\["22/tcp"\\]\\s+knock\\s+ssh\\s+Active\\s`, 'm'),
    );

    let finished = false;
    const deleting = kubectl('delete', 'accessgrant', name, '--timeout=30s').then((r) => {
      finished = true;
      return r;
    });
    await bench.until(() => bench.grant(name)?.status?.phase === 'Revoked', 'Revoked');
    // kubectl waits: the object stays while the node has not closed the door.
    await new Promise((r) => setTimeout(r, 1000));
    expect(finished).toBe(false);
    expect(bench.grant(name)!.metadata.deletionTimestamp).toBeDefined();
    const during = await kubectl('get', 'accessgrant', name, '--no-headers');
    expect(during.stdout).toMatch(/\sRevoked\s/);

    bench.report(name, 'node-a', 'Removed');
    const r = await deleting;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`accessgrant.knockgate.io "${name}" deleted`);
    expect(bench.grant(name)).toBeUndefined();

    const events = await kubectl('get', 'events', '-n', 'default', '-o', 'json');
    expect(events.code, events.stderr).toBe(0);
    const items = (
      JSON.parse(events.stdout) as {
        items: { reason: string; involvedObject: { kind: string; name: string } }[];
      }
    ).items;
    expect(
      items
        .filter((e) => e.involvedObject.name === name)
        .map((e) => `${e.involvedObject.kind} ${e.reason}`)
        .sort(),
    ).toEqual(['AccessGrant Opened', 'AccessGrant Revoked']);
  });
});
