// The emulator as a program (`npm run emulator:kube -- --port P --kubeconfig FILE`): one ready line,
// a kubeconfig the real kubectl uses (one context per RBAC user), CRDs and RBAC from files, a clear
// one-line error and exit 2 on bad input, exit 0 on SIGTERM. Runs main.ts from source through
// vite-node (the npm script runs the same file compiled to dist/).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const MAIN = 'test/emulators/kube-apiserver/main.ts';
const VITE_NODE = join(ROOT, 'node_modules/.bin/vite-node');

let dir: string;
const children: ChildProcess[] = [];

interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function start(args: string[]): Started {
  const child = spawn(VITE_NODE, [MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor(what: string, cond: () => boolean, ms = 45_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function kubectl(
  kubeconfig: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) =>
    execFile(
      '/usr/bin/kubectl',
      ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args],
      { timeout: 30_000, env: { ...process.env, HOME: dir, KUBECONFIG: '' } },
      (err, stdout, stderr) =>
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    ),
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kg-emucli-'));
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('npm run emulator:kube', () => {
  it('the npm script runs the compiled main.ts', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts['emulator:kube']).toBe(`node dist/${MAIN.replace(/\.ts$/, '.js')}`);
  });

  it('prints one ready line, writes a kubeconfig for every user, serves the CRDs, stops on SIGTERM', async () => {
    const kubeconfig = join(dir, 'kubeconfig');
    const rbac = join(dir, 'rbac.yaml');
    writeFileSync(
      rbac,
      [
        'users:',
        '  - name: admin',
        '    token: admin-token-cli-test',
        '    rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]',
        '  - name: system:serviceaccount:knockgate:agent',
        '    token: agent-token-cli-test',
        '    rules:',
        '      - {apiGroups: [knockgate.io], resources: [accessgrants], verbs: [get, list, watch]}',
        '',
      ].join('\n'),
    );
    const emu = start(['--port', '0', '--kubeconfig', kubeconfig, '--rbac', rbac, '--crds', 'crds']);
    await waitFor('the ready line', () => emu.stdout().includes('\n') || emu.child.exitCode !== null);
    expect(emu.stderr()).toBe('');
    const lines = emu.stdout().split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^kube-apiserver emulator ready on https://127\\.0\\.0\\.1:(\\d+) port=\\d+ kubeconfig=${kubeconfig}$`,
      ),
    );
    expect(statSync(kubeconfig).mode & 0o777).toBe(0o600);

    const crds = await kubectl(kubeconfig, ['get', 'crd', '-o', 'name']);
    expect(crds.stdout.trim().split('\n')).toEqual([
      'customresourcedefinition.apiextensions.k8s.io/accessgrants.knockgate.io',
      'customresourcedefinition.apiextensions.k8s.io/knockpolicies.knockgate.io',
      'customresourcedefinition.apiextensions.k8s.io/replayclaims.knockgate.io',
    ]);
    const agentList = await kubectl(kubeconfig, ['--context', 'agent', 'get', 'ag']);
    expect(agentList).toMatchObject({ code: 0, stderr: 'No resources found\n' });
    const agentPolicies = await kubectl(kubeconfig, ['--context', 'agent', 'get', 'knockpolicies']);
    expect(agentPolicies.stderr.trim()).toBe(
      'Error from server (Forbidden): knockpolicies.knockgate.io is forbidden: User "system:serviceaccount:knockgate:agent" cannot list resource "knockpolicies" in API group "knockgate.io" at the cluster scope',
    );

    emu.child.kill('SIGTERM');
    expect(await emu.exited).toBe(0);
  });

  const bad: [string, () => string[], RegExp][] = [
    ['a port out of range', () => ['--port', '70000'], /--port must be an integer 0-65535/],
    ['an unknown option', () => ['--bogus'], /^kube-apiserver-emulator: error: unknown option '--bogus'$/],
    ['a missing RBAC file', () => ['--rbac', join(dir, 'nope.yaml')], /nope\.yaml/],
    [
      'an RBAC user without a token',
      () => {
        writeFileSync(join(dir, 'notoken.yaml'), 'users:\n  - name: x\n');
        return ['--rbac', join(dir, 'notoken.yaml')];
      },
      /users\[0\]: needs "name" and a "token"/,
    ],
    [
      'a CRD with a non-structural schema',
      () => {
        const crdDir = mkdtempSync(join(dir, 'crds-'));
        writeFileSync(
          join(crdDir, 'bad.yaml'),
          [
            'apiVersion: apiextensions.k8s.io/v1',
            'kind: CustomResourceDefinition',
            'metadata: {name: things.example.io}',
            'spec:',
            '  group: example.io',
            '  scope: Cluster',
            '  names: {kind: Thing, plural: things}',
            '  versions:',
            '    - name: v1',
            '      served: true',
            '      storage: true',
            '      schema:',
            '        openAPIV3Schema:',
            '          type: object',
            '          properties: {spec: {}}',
            '',
          ].join('\n'),
        );
        return ['--crds', crdDir];
      },
      /CustomResourceDefinition\.apiextensions\.k8s\.io "things\.example\.io" is invalid: .*properties\[spec\]\.type: Required value/,
    ],
  ];
  for (const [name, args, message] of bad) {
    it(`refuses ${name} with one line and exit 2`, async () => {
      const emu = start(args());
      expect(await emu.exited).toBe(2);
      expect(emu.stdout()).toBe('');
      const errLines = emu.stderr().split('\n').filter(Boolean);
      expect(errLines, emu.stderr()).toHaveLength(1);
      expect(errLines[0]).toMatch(message);
    });
  }
});
