// `knockgate doctor` end to end: in a namespace without knockgate's rules (FAIL: the config's port
// is open to everyone), with `knockgate standalone` running (its nftables table read back and
// matched to the config), with kube-proxy's nftables table and a bpf classifier at tc ingress (both
// recognised), the capture counting probes sent from another namespace, and the security-group
// check against the EC2 emulator. The real CLI, the real tools; read-only.

import {
  EC2Client,
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
} from '@aws-sdk/client-ec2';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutNetns } from './helpers/netns.js';
import {
  keygen,
  knockgate,
  Lab,
  requireBuilt,
  runCommand,
  yamlConfig,
} from './helpers/standalone-harness.js';
import { DEFAULT_CREDENTIAL, Ec2Emulator } from './emulators/ec2/server.js';

const PORT = 2222;
const SPA_PORT = 40461;

/** The report's line for `check`, e.g. "FAIL firewall  no knockgate rules ...". */
function line(stdout: string, check: string): string {
  const l = stdout.split('\n').find((x) => x.split(/\s+/)[1] === check);
  if (!l) throw new Error(`no ${check} line in:\n${stdout}`);
  return l;
}

describe.skipIf(skipWithoutNetns('knockgate doctor (netns)'))('knockgate doctor in a namespace', () => {
  let lab: Lab;
  let config: string;

  beforeAll(async () => {
    lab = await Lab.create();
    const keys = await keygen();
    config = lab.write(
      'doctor.yaml',
      yamlConfig(keys, SPA_PORT, PORT, ['protectedPorts: ["2222/tcp"]', 'alwaysAllow: ["10.255.0.0/16"]']),
    );
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  /** doctor in srv while cli sends UDP probes to the SPA port (bounded: 40 packets, 100 ms apart). */
  async function doctorWithProbes(extra: string[] = []) {
    const probe = lab
      .host('cli')
      .run('node', [
        '-e',
        `const s=require('dgram').createSocket('udp4');let n=0;const t=setInterval(()=>{s.send('probe',${SPA_PORT},'${lab.serverAddr('cli')}');if(++n>=40){clearInterval(t);s.close();}},100);`,
      ]);
    const doctor = knockgate(
      lab.srv,
      [
        'doctor',
        '--config',
        config,
        '--interface',
        lab.srvIf('cli'),
        '--capture-seconds',
        '2',
        '--kube-proxy-url',
        '',
        ...extra,
      ],
      30_000,
    );
    const [r] = await Promise.all([doctor, probe]);
    return r;
  }

  it('without knockgate rules: FAIL, the protected port is open to everyone; capture sees the probes', async () => {
    const r = await doctorWithProbes();
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(line(r.stdout, 'netfilter')).toMatch(/^OK +netfilter +.*nft v/);
    expect(line(r.stdout, 'ebpf')).toMatch(/^OK .*no xdp program; no bpf at tc ingress/);
    expect(line(r.stdout, 'kube-proxy')).toMatch(/^OK .*not found/);
    expect(line(r.stdout, 'config')).toMatch(
      /^OK .*protects 2222\/tcp, alwaysAllow 10\.255\.0\.0\/16, mode Enforce/,
    );
    expect(line(r.stdout, 'firewall')).toMatch(/^FAIL .*no knockgate rules.*2222\/tcp.*open to everyone/);
    expect(line(r.stdout, 'capture')).toMatch(
      new RegExp(`^OK .*${SPA_PORT}/udp [1-9]\\d*\\b.*\\(from ${lab.addr('cli').replace(/\./g, '\\.')}`),
    );
    // Knock ports nobody sent to are counted too: the line says which stayed silent.
    expect(line(r.stdout, 'capture')).toMatch(/none on 7101\/udp, 7102\/tcp meanwhile/);
  });

  it('with knockgate standalone running: the rules in force match the config; kube-proxy and tc bpf are recognised', async () => {
    const d = await lab.startDaemon({ config });
    try {
      await lab.srv.run('nft', ['add', 'table', 'ip', 'kube-proxy']);
      const dev = lab.srvIf('cli');
      await lab.srv.run('tc', ['qdisc', 'add', 'dev', dev, 'clsact']);
      // A classic-BPF classifier (accept all): enough for `tc filter show` to list a bpf filter.
      await lab.srv.run('tc', [
        'filter',
        'add',
        'dev',
        dev,
        'ingress',
        'bpf',
        'bytecode',
        '1,6 0 0 4294967295,',
      ]);
      const r = await doctorWithProbes();
      expect(line(r.stdout, 'firewall')).toMatch(
        /^OK +firewall +nftables table inet knockgate: drops 2222\/tcp unless granted, alwaysAllow 10\.255\.0\.0\/16, knock\/SPA ports silenced .*40461\/udp/,
      );
      expect(line(r.stdout, 'kube-proxy')).toMatch(/^OK .*nftables mode \(from table ip kube-proxy\)/);
      expect(line(r.stdout, 'ebpf')).toMatch(new RegExp(`^WARN .*bpf at tc ingress of ${dev}`));
      // libpcap sees packets before knockgate's raw-table drop.
      expect(line(r.stdout, 'capture')).toMatch(/^OK /);
      expect(r.code, r.stdout + r.stderr).toBe(0);

      // A config protecting a port the rules in force do not: FAIL.
      const wider = lab.write(
        'wider.yaml',
        yamlConfig(await keygen(), SPA_PORT, PORT, [
          'protectedPorts: ["2222/tcp", "2223/tcp"]',
          'alwaysAllow: ["10.255.0.0/16"]',
        ]),
      );
      const w = await knockgate(lab.srv, ['doctor', '--config', wider, '--check', 'firewall']);
      expect(w.code).toBe(1);
      expect(line(w.stdout, 'firewall')).toMatch(
        /^FAIL .*also protects 2223\/tcp, which the rules leave open/,
      );
    } finally {
      await d.stop();
    }
  });
});

describe('knockgate doctor: config', () => {
  it("reads an AgentConfig (the node's protected ports, alwaysAllow, mode); a broken one is a FAIL line", async () => {
    requireBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'kg-doctor-'));
    try {
      const good = join(dir, 'agent.yaml');
      writeFileSync(
        good,
        'apiVersion: knockgate.io/v1alpha1\nkind: AgentConfig\nnodeName: node-a\nprotectedPorts: ["22/tcp"]\n' +
          'knockPorts: ["62201/udp"]\nalwaysAllow: ["10.0.0.0/16"]\nmode: Audit\n',
      );
      const r = await knockgate(undefined, ['doctor', '--agent-config', good, '--check', 'config']);
      expect(r.code, r.stderr).toBe(0);
      expect(line(r.stdout, 'config')).toMatch(
        /^WARN .*protects 22\/tcp, alwaysAllow 10\.0\.0\.0\/16, mode Audit, backend nftables, knock\/SPA ports 62201\/udp: Audit mode drops nothing/,
      );
      const bad = join(dir, 'bad.yaml');
      writeFileSync(
        bad,
        'apiVersion: knockgate.io/v1alpha1\nkind: AgentConfig\nnodeName: node-a\nprotectedPorts: []\n',
      );
      const b = await knockgate(undefined, ['doctor', '--agent-config', bad, '--check', 'config']);
      expect(b.code).toBe(1);
      expect(line(b.stdout, 'config')).toMatch(
        new RegExp(`^FAIL +config +${bad.replace(/[.]/g, '\\.')}:\\d+: `),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('knockgate doctor: security groups (EC2 emulator)', () => {
  let ec2: Ec2Emulator;
  const region = 'eu-west-1';
  let open: string;
  let closed: string;

  beforeAll(async () => {
    requireBuilt();
    ec2 = new Ec2Emulator();
    await ec2.start();
    const client = new EC2Client({
      endpoint: ec2.url,
      region,
      credentials: DEFAULT_CREDENTIAL,
      maxAttempts: 1,
    });
    const mk = async (name: string, tag: boolean) =>
      (
        await client.send(
          new CreateSecurityGroupCommand({
            GroupName: name,
            Description: name,
            VpcId: 'vpc-0123456789abcdef0',
            ...(tag
              ? {
                  TagSpecifications: [
                    { ResourceType: 'security-group', Tags: [{ Key: 'knockgate.io/cluster', Value: 'c1' }] },
                  ],
                }
              : {}),
          }),
        )
      ).GroupId!;
    open = await mk('node-open', false);
    closed = await mk('node-closed', true);
    await client.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: open,
        IpPermissions: [
          { IpProtocol: 'udp', FromPort: 62000, ToPort: 62300, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
        ],
      }),
    );
    await client.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: closed,
        IpPermissions: [
          { IpProtocol: 'tcp', FromPort: 62201, ToPort: 62201, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
        ],
      }),
    );
    client.destroy();
  });

  afterAll(async () => {
    await ec2?.stop();
  });

  const env = {
    AWS_ACCESS_KEY_ID: DEFAULT_CREDENTIAL.accessKeyId,
    AWS_SECRET_ACCESS_KEY: DEFAULT_CREDENTIAL.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const doctor = (args: string[], extraEnv: Record<string, string> = env) =>
    runCommand(undefined, 'env', [
      ...Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`),
      'node',
      `${process.cwd()}/dist/cmd/knockgate.js`,
      'doctor',
      '--check',
      'aws',
      '--port',
      '62201/udp',
      '--region',
      region,
      '--aws-endpoint',
      ec2.url,
      ...args,
    ]);

  it('OK when a node group allows the SPA port; FAIL (exit 1) when none does; tagged groups listed', async () => {
    const good = await doctor(['--security-group', open, '--cluster-id', 'c1']);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(line(good.stdout, 'aws-sg')).toMatch(
      new RegExp(`^OK .*${open} allows 62201/udp from 0\\.0\\.0\\.0/0`),
    );
    expect(line(good.stdout, 'aws-tags')).toMatch(
      new RegExp(`^OK .*${closed} carry knockgate\\.io/cluster=c1`),
    );

    const bad = await doctor(['--security-group', closed]);
    expect(bad.code).toBe(1);
    expect(line(bad.stdout, 'aws-sg')).toMatch(new RegExp(`^FAIL .*${closed} allows no inbound 62201/udp`));
  });

  it('an AWS error is a FAIL line, bad input a one-line error (exit 2)', async () => {
    const denied = await doctor(['--security-group', open], { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' });
    expect(denied.code).toBe(1);
    expect(line(denied.stdout, 'aws-sg')).toMatch(/^FAIL .*AuthFailure/);
    expect(denied.stdout).not.toContain('wrong');
    const bad = await doctor(['--security-group', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('knockgate: --security-group nope: not a security group id (sg-...)');
  });
});
