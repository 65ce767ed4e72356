// The agent's own configuration file: defaults, NODE_NAME, and one-line FILE:LINE errors for every
// kind of bad input; and `knockgate agent` through the built CLI refusing a bad file with that line.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../api/config/errors.js';
import { loadAgentConfig, parseAgentConfig } from '../controller/agent/config.js';

const HEAD = 'apiVersion: knockgate.io/v1alpha1\nkind: AgentConfig\n';
const tmp = mkdtempSync(join(tmpdir(), 'kg-agent-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function error(text: string, env: NodeJS.ProcessEnv = { NODE_NAME: 'node-a' }): string {
  try {
    parseAgentConfig('agent.yaml', text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('no error');
}

describe('agent config', () => {
  it('applies the defaults and takes the node name from NODE_NAME', () => {
    const c = parseAgentConfig('agent.yaml', `${HEAD}protectedPorts: ["22/tcp"]\n`, {
      NODE_NAME: 'ip-10-0-0-1.ec2.internal',
    });
    expect(c).toEqual({
      nodeName: 'ip-10-0-0-1.ec2.internal',
      protectedPorts: [{ port: 22, proto: 'tcp' }],
      knockPorts: [],
      alwaysAllow: [],
      neverGrant: [],
      mode: 'Enforce',
      backend: 'nftables',
      conntrackFlush: false,
      resyncIntervalMs: 60_000,
      largestManualPrefix: { ipv4: 32, ipv6: 128 },
      clockSkewMs: 5_000,
    });
  });

  it('reads every field; nodeName in the file wins over NODE_NAME', () => {
    const c = parseAgentConfig(
      'agent.yaml',
      `${HEAD}nodeName: node-b
protectedPorts: ["22/tcp", "3389/tcp"]
knockPorts: ["62201/udp"]
alwaysAllow: ["10.0.0.0/8", "fd00::/8"]
neverGrant: ["192.168.0.0/16"]
mode: Audit
backend: iptables
maxGrants: 500
conntrackFlush: true
resyncIntervalSeconds: 30
largestManualPrefix: {ipv4: 24, ipv6: 120}
clockSkewSeconds: 0
`,
      { NODE_NAME: 'node-a' },
    );
    expect(c).toMatchObject({
      nodeName: 'node-b',
      knockPorts: [{ port: 62201, proto: 'udp' }],
      mode: 'Audit',
      backend: 'iptables',
      maxGrants: 500,
      conntrackFlush: true,
      resyncIntervalMs: 30_000,
      largestManualPrefix: { ipv4: 24, ipv6: 120 },
      clockSkewMs: 0,
    });
  });

  const bad: [string, string, RegExp][] = [
    ['no protected ports', `${HEAD}mode: Enforce\n`, /^agent\.yaml:1: protectedPorts: required/],
    [
      'an empty protected port list',
      `${HEAD}protectedPorts: []\n`,
      /^agent\.yaml:3: protectedPorts: must hold 1 to/,
    ],
    [
      'a bad port',
      `${HEAD}protectedPorts:\n  - 22/tcp\n  - 70000/tcp\n`,
      /^agent\.yaml:5: protectedPorts\[1\]: "70000\/tcp" is not PORT\/PROTO/,
    ],
    [
      'an unknown field (a typo)',
      `${HEAD}protectedPorts: ["22/tcp"]\nneverGrants: []\n`,
      /^agent\.yaml:4: neverGrants: unknown field/,
    ],
    [
      'a bad mode',
      `${HEAD}protectedPorts: ["22/tcp"]\nmode: enforce\n`,
      /^agent\.yaml:4: mode: must be one of Enforce, Audit/,
    ],
    [
      'a bad CIDR',
      `${HEAD}protectedPorts: ["22/tcp"]\nalwaysAllow: ["10.0.0.0/33"]\n`,
      /^agent\.yaml:4: alwaysAllow\[0\]: prefix \/33/,
    ],
    [
      'maxGrants beyond the backend',
      `${HEAD}protectedPorts: ["22/tcp"]\nbackend: iptables\nmaxGrants: 50000\n`,
      /^agent\.yaml:5: maxGrants: must be from 1 to 20000, got 50000 for the iptables backend/,
    ],
    [
      'a manual prefix wider than 256 addresses',
      `${HEAD}protectedPorts: ["22/tcp"]\nlargestManualPrefix:\n  ipv4: 16\n`,
      /^agent\.yaml:5: largestManualPrefix\.ipv4: must be from 24 to 32, got 16/,
    ],
    [
      'a port both protected and a knock port',
      `${HEAD}protectedPorts: ["22/tcp"]\nknockPorts: ["22/tcp"]\n`,
      /^agent\.yaml:3: protectedPorts\[0\]: is also a knock port/,
    ],
    [
      'a wrong kind',
      'apiVersion: knockgate.io/v1alpha1\nkind: StandaloneConfig\n',
      /^agent\.yaml:2: kind: must be AgentConfig/,
    ],
    ['a YAML syntax error', `${HEAD}protectedPorts: ["22/tcp"\n`, /^agent\.yaml:\d+: YAML: /],
    [
      'a duplicate key',
      `${HEAD}mode: Audit\nmode: Enforce\nprotectedPorts: ["22/tcp"]\n`,
      /^agent\.yaml:4: YAML: .*[Uu]nique/,
    ],
    ['not an object', '- 1\n- 2\n', /^agent\.yaml:1: want a kind: AgentConfig object/],
    ['an empty file', '', /^agent\.yaml: empty/],
    [
      'a resync that would spin',
      `${HEAD}protectedPorts: ["22/tcp"]\nresyncIntervalSeconds: 0\n`,
      /^agent\.yaml:4: resyncIntervalSeconds: must be from 5/,
    ],
  ];
  for (const [what, text, want] of bad) it(`refuses ${what}`, () => expect(error(text)).toMatch(want));

  it('refuses a missing node name, and a NODE_NAME that is no node name', () => {
    expect(error(`${HEAD}protectedPorts: ["22/tcp"]\n`, {})).toMatch(
      /^agent\.yaml:1: nodeName: not set, and NODE_NAME is not in the environment/,
    );
    expect(error(`${HEAD}protectedPorts: ["22/tcp"]\n`, { NODE_NAME: 'Node A\n' })).toMatch(
      /^agent\.yaml: NODE_NAME "Node A\\x0a" is not a node name/,
    );
  });

  it('refuses a file it cannot read', () => {
    expect(() => loadAgentConfig(join(tmp, 'missing.yaml'))).toThrow(/missing\.yaml: cannot read: ENOENT/);
  });
});

const CLI = join(import.meta.dirname, '..', 'dist/cmd/knockgate.js');

describe.skipIf(!existsSync(CLI))('knockgate agent (built CLI)', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, 'agent', ...args], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, NODE_NAME: 'node-a' },
    });

  it('a bad config is one line naming FILE:LINE, exit 2', () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(file, `${HEAD}protectedPorts: ["22/tcp", "22/tcp"]\n`);
    const r = run('--config', file, '--kubeconfig', join(tmp, 'none'));
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`knockgate: ${file}:3: protectedPorts[1]: "22/tcp" is listed twice`);
  });

  it('a missing --config and an unreadable kubeconfig are one line each, exit 2', () => {
    expect(run().stderr.trim()).toBe('knockgate: --config FILE is required');
    const file = join(tmp, 'good.yaml');
    writeFileSync(file, `${HEAD}protectedPorts: ["22/tcp"]\n`);
    const r = run('--config', file, '--kubeconfig', join(tmp, 'none'));
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toMatch(/^knockgate: kubeconfig .*none: cannot read: /);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
