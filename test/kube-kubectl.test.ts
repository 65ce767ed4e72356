// The real kubectl 1.32 against the Kubernetes API emulator (issue 4, acceptance items on kubectl):
// `kubectl apply -f crds/` registers the CRDs; get/ag/knockgate print the printer columns; -o yaml,
// describe, patch --type merge, get -w and delete work; a manual AccessGrant applies; invalid objects
// are refused with a field path; a token without the RBAC rule gets 403 in the real server's shape.
// When a kubectl call fails unexpectedly, the test reruns it with -v=8 and shows what kubectl sent.

import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { KubeApiServer } from './emulators/kube-apiserver/server.js';

const KUBECTL = '/usr/bin/kubectl';
const CRDS = resolve(import.meta.dirname, '..', 'crds');
const COLUMNS = ['NAME', 'SOURCE', 'PORTS', 'METHOD', 'POLICY', 'PHASE', 'EXPIRES', 'AGE'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let server: KubeApiServer;
let dir: string;
let kubeconfig: string;

function kubectl(args: string[], opts: { context?: string; timeoutMs?: number } = {}): Promise<Run> {
  const full = ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args];
  if (opts.context) full.unshift('--context', opts.context);
  return new Promise((done) => {
    execFile(
      KUBECTL,
      full,
      { timeout: opts.timeoutMs ?? 30_000, env: { ...process.env, HOME: dir, KUBECONFIG: '' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** kubectl that must succeed; on failure the error carries kubectl's -v=8 request log. */
async function kubectlOk(args: string[], opts: { context?: string } = {}): Promise<string> {
  const r = await kubectl(args, opts);
  if (r.code === 0) return r.stdout;
  const verbose = await kubectl(['-v=8', ...args], opts);
  const log = verbose.stderr.split('\n').slice(-60).join('\n');
  throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}\n--- kubectl -v=8 ---\n${log}`);
}

function writeManifest(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const grantYaml = (name: string, spec: string) =>
  `apiVersion: knockgate.io/v1alpha1\nkind: AccessGrant\nmetadata:\n  name: ${name}\nspec:\n${spec}`;

const policyYaml = (name: string, spec: string) =>
  `apiVersion: knockgate.io/v1alpha1\nkind: KnockPolicy\nmetadata:\n  name: ${name}\nspec:\n${spec}`;

function header(table: string): string[] {
  return table
    .split('\n')[0]
    .trim()
    .split(/\s{2,}/);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kg-kubectl-'));
  server = new KubeApiServer({
    bookmarkIntervalMs: 1000,
    users: [
      {
        name: 'admin',
        token: 'admin-token-kubectl-test',
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
      },
      {
        name: 'reader',
        token: 'reader-token-kubectl-test',
        rules: [
          { apiGroups: ['knockgate.io'], resources: ['accessgrants'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['secrets'], verbs: ['get'], namespaces: ['knockgate'] },
          {
            apiGroups: ['knockgate.io'],
            resources: ['knockpolicies/status'],
            verbs: ['patch'],
            resourceNames: ['ssh'],
          },
        ],
      },
    ],
  });
  await server.start();
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, server.kubeconfig(), { mode: 0o600 });
});

afterAll(async () => {
  // KG_KUBECTL_RECORD=file.json keeps what kubectl sent (method, URL, Accept, Content-Type, status).
  if (process.env.KG_KUBECTL_RECORD)
    writeFileSync(process.env.KG_KUBECTL_RECORD, JSON.stringify(server.requests, null, 1));
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('kubectl 1.32 against the emulator', () => {
  it('talks to the emulator as a 1.32 server', async () => {
    const out = await kubectlOk(['version', '-o', 'json']);
    const v = JSON.parse(out) as { serverVersion: { major: string; minor: string } };
    expect(v.serverVersion).toMatchObject({ major: '1', minor: '32' });
  });

  it('kubectl apply -f crds/ registers the CRDs and they are Established', async () => {
    const out = await kubectlOk(['apply', '-f', CRDS]);
    expect(out).toContain('customresourcedefinition.apiextensions.k8s.io/accessgrants.knockgate.io created');
    expect(out).toContain('customresourcedefinition.apiextensions.k8s.io/knockpolicies.knockgate.io created');
    expect(out).toContain('customresourcedefinition.apiextensions.k8s.io/replayclaims.knockgate.io created');
    await kubectlOk([
      'wait',
      '--for=condition=Established',
      '--timeout=20s',
      'crd/accessgrants.knockgate.io',
      'crd/knockpolicies.knockgate.io',
      'crd/replayclaims.knockgate.io',
    ]);
    // A second apply is a no-op.
    const again = await kubectlOk(['apply', '-f', CRDS]);
    expect(again).toContain('accessgrants.knockgate.io unchanged');
    expect(await kubectlOk(['api-resources', '--api-group=knockgate.io', '--no-headers'])).toMatch(
      /accessgrants\s+ag\s+knockgate.io\/v1alpha1\s+false\s+AccessGrant/,
    );
  });

  it('kubectl apply -f crds/ again with a changed CRD updates it (an upgrade)', async () => {
    const upgraded = join(dir, 'crds-upgraded');
    mkdirSync(upgraded);
    for (const f of readdirSync(CRDS)) {
      let text = readFileSync(join(CRDS, f), 'utf8');
      if (f === 'knockgate.io_replayclaims.yaml')
        text = text.replace(
          '        - name: AGE\n',
          '        - name: NODE\n          type: string\n          priority: 1\n          jsonPath: .spec.claimedBy\n        - name: AGE\n',
        );
      writeFileSync(join(upgraded, f), text);
    }
    const out = await kubectlOk(['apply', '-f', upgraded]);
    expect(out).toContain(
      'customresourcedefinition.apiextensions.k8s.io/replayclaims.knockgate.io configured',
    );
    expect(out).toContain(
      'customresourcedefinition.apiextensions.k8s.io/accessgrants.knockgate.io unchanged',
    );
    const cols = await kubectlOk([
      'get',
      'crd',
      'replayclaims.knockgate.io',
      '-o',
      'jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}',
    ]);
    expect(cols).toBe('POLICY CLAIMED-BY EXPIRES NODE AGE');
    // And back to the committed CRDs.
    expect(await kubectlOk(['apply', '-f', CRDS])).toContain('replayclaims.knockgate.io configured');
  });

  it('a manual AccessGrant applies and a policy-made one is listed with its policy', async () => {
    const manual = writeManifest(
      'manual.yaml',
      grantYaml(
        'manual-alice',
        '  source: 203.0.113.0/24\n  ports: ["22/tcp", "443/tcp"]\n  expiresAt: "2030-01-01T00:00:00Z"\n  method: manual\n',
      ),
    );
    expect(await kubectlOk(['apply', '-f', manual])).toContain(
      'accessgrant.knockgate.io/manual-alice created',
    );
    // Applied again with a change: kubectl sends a JSON merge patch (no strategic merge for CRs).
    const extended = writeManifest(
      'manual-extended.yaml',
      grantYaml(
        'manual-alice',
        '  source: 203.0.113.0/24\n  ports: ["22/tcp", "443/tcp"]\n  expiresAt: "2030-06-01T00:00:00Z"\n  method: manual\n',
      ),
    );
    expect(await kubectlOk(['apply', '-f', extended])).toContain(
      'accessgrant.knockgate.io/manual-alice configured',
    );
    expect(await kubectlOk(['apply', '-f', manual])).toContain(
      'accessgrant.knockgate.io/manual-alice configured',
    );
    expect(await kubectlOk(['apply', '-f', manual])).toContain(
      'accessgrant.knockgate.io/manual-alice unchanged',
    );
    const policy = writeManifest(
      'policy.yaml',
      policyYaml(
        'ssh',
        '  knock:\n    sequence: ["26515/tcp", "8924/tcp", "58666/tcp"]\n  grant:\n    ports: ["22/tcp"]\n    durationSeconds: 60\n',
      ),
    );
    expect(await kubectlOk(['apply', '-f', policy])).toContain('knockpolicy.knockgate.io/ssh created');
    const knock = writeManifest(
      'knock.yaml',
      grantYaml(
        'ssh-cb007107',
        '  source: 203.0.113.7/32\n  ports: ["22/tcp"]\n  expiresAt: "2030-01-01T00:01:00Z"\n  method: knock\n  policyRef: {name: ssh}\n  observedBy: node-a\n',
      ),
    );
    expect(await kubectlOk(['create', '-f', knock])).toContain(
      'accessgrant.knockgate.io/ssh-cb007107 created',
    );
    // The status subresource: phase set through /status shows in the PHASE column.
    await kubectlOk([
      'patch',
      'accessgrant',
      'ssh-cb007107',
      '--subresource=status',
      '--type',
      'merge',
      '-p',
      '{"status":{"phase":"Active"}}',
    ]);
  });

  it('kubectl get accessgrants, ag and knockgate print the printer columns', async () => {
    for (const resource of ['accessgrants', 'ag']) {
      const out = await kubectlOk(['get', resource]);
      expect(header(out)).toEqual(COLUMNS);
      const rows = out.trim().split('\n').slice(1);
      expect(rows).toHaveLength(2);
      expect(rows[0]).toMatch(
        /^manual-alice\s+203\.0\.113\.0\/24\s+\["22\/tcp","443\/tcp"\]\s+manual\s+2030-01-01T00:00:00Z\s+\d+s$/,
      );
      expect(rows[1]).toMatch(
        /^ssh-cb007107\s+203\.0\.113\.7\/32\s+\["22\/tcp"\]\s+knock\s+ssh\s+Active\s+2030-01-01T00:01:00Z\s+\d+s$/,
      );
    }
    const all = await kubectlOk(['get', 'knockgate']);
    const sections = all.trim().split(/\n\s*\n/);
    const grants = sections.find((s) => s.includes('accessgrant.knockgate.io/'))!;
    expect(header(grants)).toEqual(COLUMNS);
    expect(grants).toContain('accessgrant.knockgate.io/manual-alice');
    expect(all).toContain('knockpolicy.knockgate.io/ssh');
  });

  it('kubectl get accessgrant NAME -o yaml and describe show the object', async () => {
    const obj = parse(await kubectlOk(['get', 'accessgrant', 'manual-alice', '-o', 'yaml'])) as {
      apiVersion: string;
      kind: string;
      metadata: Record<string, unknown>;
      spec: Record<string, unknown>;
    };
    expect(obj.apiVersion).toBe('knockgate.io/v1alpha1');
    expect(obj.kind).toBe('AccessGrant');
    expect(obj.metadata).toMatchObject({ name: 'manual-alice', generation: 3 }); // two spec changes by apply
    expect(obj.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(obj.spec).toEqual({
      source: '203.0.113.0/24',
      ports: ['22/tcp', '443/tcp'],
      expiresAt: '2030-01-01T00:00:00Z',
      method: 'manual',
    });
    const described = await kubectlOk(['describe', 'accessgrant', 'ssh-cb007107']);
    expect(described).toMatch(/^Name:\s+ssh-cb007107$/m);
    expect(described).toMatch(/^Kind:\s+AccessGrant$/m);
    expect(described).toMatch(/^\s+Source:\s+203\.0\.113\.7\/32$/m);
    expect(described).toMatch(/^\s+Phase:\s+Active$/m);
  });

  it('kubectl explain shows the CRD descriptions', async () => {
    const out = await kubectlOk(['explain', 'accessgrants.spec.source']);
    expect(out).toMatch(/^KIND:\s+AccessGrant$/m);
    expect(out).toMatch(/^FIELD: source <string>$/m);
    expect(out.replace(/\s+/g, ' ')).toContain('A knock or spa grant names one host (/32 or /128).');
    const age = await kubectlOk(['explain', 'knockpolicy.spec.spa.maxPacketAgeSeconds']);
    expect(age.replace(/\s+/g, ' ')).toContain('(fwknopd MAX_SPA_PACKET_AGE)');
  });

  it('kubectl patch --type merge changes the spec and bumps the generation', async () => {
    const out = await kubectlOk([
      'patch',
      'ag',
      'manual-alice',
      '--type',
      'merge',
      '-p',
      '{"spec":{"ports":["2222/tcp"]}}',
    ]);
    expect(out).toContain('accessgrant.knockgate.io/manual-alice patched');
    const got = await kubectlOk([
      'get',
      'ag',
      'manual-alice',
      '-o',
      'jsonpath={.metadata.generation} {.spec.ports}',
    ]);
    expect(got).toBe('4 ["2222/tcp"]');
    // Nothing changed: kubectl says so and the generation stays.
    const same = await kubectlOk([
      'patch',
      'ag',
      'manual-alice',
      '--type',
      'merge',
      '-p',
      '{"spec":{"ports":["2222/tcp"]}}',
    ]);
    expect(same).toContain('patched (no change)');
  });

  it('kubectl get -w prints the list, then each change', async () => {
    const child = spawn(
      KUBECTL,
      [
        '--kubeconfig',
        kubeconfig,
        '--cache-dir',
        join(dir, 'cache'),
        'get',
        'ag',
        '-w',
        '--output-watch-events',
      ],
      { env: { ...process.env, HOME: dir, KUBECONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const lines = () => out.split('\n').filter(Boolean);
    const waitLines = async (n: number) => {
      const deadline = Date.now() + 20_000;
      while (lines().length < n && Date.now() < deadline && child.exitCode === null)
        await new Promise((r) => setTimeout(r, 100));
      if (lines().length < n)
        throw new Error(`kubectl get -w printed ${lines().length} lines: ${out} ${err}`);
    };
    try {
      await waitLines(3); // header + the two grants
      expect(
        lines()[0]
          .trim()
          .split(/\s{2,}/),
      ).toEqual(['EVENT', ...COLUMNS]);
      await kubectlOk([
        'patch',
        'ag',
        'manual-alice',
        '--type',
        'merge',
        '-p',
        '{"spec":{"ports":["22/tcp"]}}',
      ]);
      await waitLines(4);
      expect(lines()[3]).toMatch(/^MODIFIED\s+manual-alice\s+203\.0\.113\.0\/24\s+\["22\/tcp"\]/);
      const tmp = writeManifest(
        'tmp.yaml',
        grantYaml(
          'manual-tmp',
          '  source: 2001:db8::1/128\n  ports: ["22/tcp"]\n  expiresAt: "2030-01-01T00:00:00Z"\n  method: manual\n',
        ),
      );
      await kubectlOk(['create', '-f', tmp]);
      await waitLines(5);
      expect(lines()[4]).toMatch(/^ADDED\s+manual-tmp\s+2001:db8::1\/128/);
      await kubectlOk(['delete', 'ag', 'manual-tmp']);
      await waitLines(6);
      expect(lines()[5]).toMatch(/^DELETED\s+manual-tmp\s/);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('kubectl delete removes a grant', async () => {
    expect(await kubectlOk(['delete', 'accessgrant', 'manual-alice'])).toContain(
      'accessgrant.knockgate.io "manual-alice" deleted',
    );
    const r = await kubectl(['get', 'ag', 'manual-alice']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'Error from server (NotFound): accessgrants.knockgate.io "manual-alice" not found',
    );
  });

  describe('invalid objects are refused with a field path', () => {
    const cases: { name: string; file: string; path: RegExp }[] = [
      {
        name: 'a bad CIDR',
        file: grantYaml(
          'bad-cidr',
          '  source: 10.0.0.300/32\n  ports: ["22/tcp"]\n  expiresAt: "2030-01-01T00:00:00Z"\n  method: manual\n',
        ),
        path: /spec\.source: Invalid value: "10\.0\.0\.300\/32": spec\.source in body must be of type cidr/,
      },
      {
        name: 'a /8 source on a policy grant',
        file: grantYaml(
          'wide',
          '  source: 10.0.0.0/8\n  ports: ["22/tcp"]\n  expiresAt: "2030-01-01T00:00:00Z"\n  method: knock\n  policyRef: {name: ssh}\n',
        ),
        path: /spec\.source: Invalid value: "object": a knock or spa grant's source must be a single host/,
      },
      {
        name: 'port 0',
        file: grantYaml(
          'port-zero',
          '  source: 10.1.2.3/32\n  ports: ["0/tcp"]\n  expiresAt: "2030-01-01T00:00:00Z"\n  method: manual\n',
        ),
        path: /spec\.ports\[0\]: Invalid value: "string": port must be between 1 and 65535/,
      },
      {
        name: 'port 70000',
        file: policyYaml(
          'port-big',
          '  knock:\n    sequence: ["1000/tcp"]\n  grant:\n    ports: ["22/tcp", "70000/tcp"]\n    durationSeconds: 60\n',
        ),
        path: /spec\.grant\.ports\[1\]: Invalid value: "string": port must be between 1 and 65535/,
      },
      {
        name: 'both knock and spa',
        file: policyYaml(
          'both',
          '  knock:\n    sequence: ["1000/tcp"]\n  spa:\n    keySecretRef: {name: k}\n    port: 62201/udp\n  grant:\n    ports: ["22/tcp"]\n    durationSeconds: 60\n',
        ),
        path: /spec: Invalid value: "object": exactly one of knock or spa must be set/,
      },
      {
        name: 'a duration over the maximum',
        file: policyYaml(
          'too-long',
          '  knock:\n    sequence: ["1000/tcp"]\n  grant:\n    ports: ["22/tcp"]\n    durationSeconds: 600\n    maxDurationSeconds: 60\n',
        ),
        path: /spec\.grant\.maxDurationSeconds: Invalid value: "object": maxDurationSeconds must not be less than durationSeconds/,
      },
      {
        name: 'a duration over the hard bound',
        file: policyYaml(
          'over-week',
          '  knock:\n    sequence: ["1000/tcp"]\n  grant:\n    ports: ["22/tcp"]\n    durationSeconds: 604801\n',
        ),
        path: /spec\.grant\.durationSeconds: Invalid value: 604801: spec\.grant\.durationSeconds in body should be less than or equal to 604800/,
      },
    ];
    for (const c of cases) {
      it(`refuses ${c.name}`, async () => {
        const file = writeManifest(`invalid-${c.name.replace(/\W+/g, '-')}.yaml`, c.file);
        const r = await kubectl(['apply', '-f', file]);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/is invalid/);
        expect(r.stderr).toMatch(c.path);
      });
    }
  });

  it('a token without the rule for a verb gets 403 in the real server shape', async () => {
    // The reader may list grants...
    expect(header(await kubectlOk(['get', 'ag'], { context: 'reader' }))).toEqual(COLUMNS);
    // ...but not create them, nor touch policies.
    const file = writeManifest(
      'reader-grant.yaml',
      grantYaml(
        'reader-grant',
        '  source: 10.1.2.3/32\n  ports: ["22/tcp"]\n  expiresAt: "2030-01-01T00:00:00Z"\n  method: manual\n',
      ),
    );
    const create = await kubectl(['create', '-f', file], { context: 'reader' });
    expect(create.code).toBe(1);
    expect(create.stderr.trim()).toBe(
      'Error from server (Forbidden): error when creating "' +
        file +
        '": accessgrants.knockgate.io is forbidden: User "reader" cannot create resource "accessgrants" in API group "knockgate.io" at the cluster scope',
    );
    const del = await kubectl(['delete', 'ag', 'ssh-cb007107'], { context: 'reader' });
    expect(del.stderr.trim()).toBe(
      'Error from server (Forbidden): accessgrants.knockgate.io "ssh-cb007107" is forbidden: User "reader" cannot delete resource "accessgrants" in API group "knockgate.io" at the cluster scope',
    );
    const policies = await kubectl(['get', 'knockpolicies'], { context: 'reader' });
    expect(policies.stderr.trim()).toBe(
      'Error from server (Forbidden): knockpolicies.knockgate.io is forbidden: User "reader" cannot list resource "knockpolicies" in API group "knockgate.io" at the cluster scope',
    );
  });
  it('kubectl auth can-i answers from the same RBAC rules (SelfSubjectAccessReview, sent as protobuf)', async () => {
    const canI = async (...args: string[]) => {
      const r = await kubectl(['auth', 'can-i', ...args], { context: 'reader' });
      return `${r.stdout.trim()} ${r.code}`;
    };
    expect(await canI('list', 'accessgrants')).toBe('yes 0');
    expect(await canI('watch', 'accessgrants.knockgate.io')).toBe('yes 0');
    expect(await canI('create', 'accessgrants')).toBe('no 1');
    expect(await canI('patch', 'accessgrants', '--subresource=status')).toBe('no 1');
    expect(await canI('get', 'secrets', '-n', 'knockgate')).toBe('yes 0');
    expect(await canI('get', 'secrets', '-n', 'default')).toBe('no 1');
    expect(await canI('patch', 'knockpolicies/ssh', '--subresource=status')).toBe('yes 0');
    expect(await canI('patch', 'knockpolicies/other', '--subresource=status')).toBe('no 1');
    expect(await canI('get', '/version')).toBe('yes 0');
    expect(await canI('get', '/metrics')).toBe('no 1');
    expect(await kubectl(['auth', 'can-i', 'delete', 'accessgrants'])).toMatchObject({
      code: 0,
      stdout: 'yes\n',
    });
  });

  it('understood every request kubectl sent (recorded by the emulator)', () => {
    const byKubectl = server.requests.filter((r) => r.userAgent?.startsWith('kubectl/v1.32'));
    expect(byKubectl.length).toBeGreaterThan(50);
    const unexpected = byKubectl.filter((r) => {
      if (r.status === undefined || r.status < 400) return false;
      if (r.status === 403 && r.user === 'reader') return false; // the RBAC test
      if (r.status === 422) return false; // the invalid objects
      // apply/create look an object up before creating it; get/delete of a deleted grant.
      if (
        r.status === 404 &&
        r.method === 'GET' &&
        /\/(accessgrants|knockpolicies|customresourcedefinitions)\/[^/?]+(\?|$)/.test(r.url)
      )
        return false;
      // kubectl's fallback to OpenAPI v2 (protobuf only) when a v3 document has no patch strategy:
      // the emulator serves v3 only, and kubectl then uses a JSON merge patch, as it does for CRDs.
      if (r.status === 404 && r.url.startsWith('/openapi/v2')) return false;
      return true;
    });
    expect(unexpected).toEqual([]);
  });
});
