// `knockgate agent` through the built CLI (dist/, made by `npx tsc -p tsconfig.json`, which `make test`
// runs first): its metrics and request-timeout flags are checked before anything starts, each bad
// value one `knockgate: ...` line with exit status 2, and --help shows the defaults (metrics on
// 127.0.0.1:9467, a 10 s request deadline). The running agent needs a firewall and so a network
// namespace: its metrics and health are tested in process (k8s-agent-metrics.test.ts).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = join(import.meta.dirname, '..', 'dist/cmd/knockgate.js');
const tmp = mkdtempSync(join(tmpdir(), 'kg-agent-cli-'));

beforeAll(() => {
  if (!existsSync(CLI))
    throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" first (make test does)`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function knockgate(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, KUBECONFIG: '', NODE_NAME: '' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('knockgate agent: flags', () => {
  it('--help shows the metrics address and the request deadline with their defaults', () => {
    const r = knockgate('agent', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--metrics-address <host:port>[\s\S]*\(default: "127\.0\.0\.1:9467"\)/);
    expect(r.stdout).toMatch(/--request-timeout <seconds>[\s\S]*\(default: 10\)/);
    expect(r.stdout).toContain('/readyz');
  });

  it('a bad --request-timeout or --metrics-address is one line, exit status 2, before anything starts', () => {
    let r = knockgate('agent', '--request-timeout', '0');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('knockgate: --request-timeout: want a whole number 1-600, got "0"\n');
    const config = join(tmp, 'agent.yaml');
    writeFileSync(
      config,
      'apiVersion: knockgate.io/v1alpha1\nkind: AgentConfig\nnodeName: node-a\nprotectedPorts: ["22/tcp"]\n',
    );
    const kubeconfig = join(tmp, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]',
        'users: [{name: u, user: {token: t0000000}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
        '',
      ].join('\n'),
    );
    r = knockgate('agent', '--config', config, '--kubeconfig', kubeconfig, '--metrics-address', 'nowhere');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      'knockgate: invalid metrics address "nowhere": want HOST:PORT, e.g. 127.0.0.1:9464\n',
    );
  });
});
