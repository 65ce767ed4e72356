// The end-to-end scenarios every firewall backend must pass, in network namespaces: a server
// ("srv", the firewall's host, running an echo service), a client that is granted ("cli") and a
// third host that never is ("third"). Each backend's test file calls backendScenarios(backend).

import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { systemClock } from '../../api/clock.js';
import type { FirewallBackend } from '../../api/standalone.js';
import { createFirewall } from '../../controller/firewall/firewall.js';
import type {
  Firewall,
  FirewallConfig,
  FirewallGrant,
  IptablesMode,
} from '../../controller/firewall/types.js';
import { Prober, startEchoServer } from './firewall-net.js';
import { sh, skipWithoutNetns, Topology, waitFor, type Host } from './netns.js';

export const PORTS = { service: 2222, dnat: 2223, dnatTarget: 8022, knockTcp: 7000, spaUdp: 62201 };

export const silentLogger = pino({ level: 'silent' });

export function baseConfig(): FirewallConfig {
  return {
    protectedPorts: [
      { port: PORTS.service, proto: 'tcp' },
      { port: PORTS.dnat, proto: 'tcp' },
    ],
    knockPorts: [
      { port: PORTS.knockTcp, proto: 'tcp' },
      { port: PORTS.spaUdp, proto: 'udp' },
    ],
    alwaysAllow: [],
    mode: 'Enforce',
    conntrackFlush: false,
  };
}

export interface Lab {
  net: Topology;
  srv: Host;
  cli: Host;
  third: Host;
  cliProbe: Prober;
  thirdProbe: Prober;
  /** srv's addresses as seen from cli and from third. */
  srvFromCli: { 4: string; 6: string };
  srvFromThird: { 4: string; 6: string };
}

export async function makeLab(): Promise<Lab> {
  const net = await Topology.create(['srv', 'cli', 'third']);
  try {
    const srv = net.ns('srv');
    const cli = net.ns('cli');
    const third = net.ns('third');
    await startEchoServer(srv, [PORTS.service, PORTS.dnatTarget]);
    return {
      net,
      srv,
      cli,
      third,
      cliProbe: Prober.start(cli),
      thirdProbe: Prober.start(third),
      srvFromCli: { 4: srv.addr4.cli!, 6: srv.addr6.cli! },
      srvFromThird: { 4: srv.addr4.third!, 6: srv.addr6.third! },
    };
  } catch (err) {
    await net.destroy();
    throw err;
  }
}

/** Foreign objects in srv that cleanup must leave alone, and the DNAT rule of the NodePort-like case. */
export async function addForeignObjects(lab: Lab): Promise<void> {
  const { srv } = lab;
  const nat = [
    'table inet foreignnat {',
    '  chain pre {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    `    tcp dport ${PORTS.dnat} redirect to :${PORTS.dnatTarget}`,
    '  }',
    '}',
  ].join('\n');
  await runWithInput(srv, 'nft', ['-f', '-'], nat);
  await srv.run('iptables', [
    '-t',
    'mangle',
    '-A',
    'PREROUTING',
    '-p',
    'tcp',
    '--dport',
    '9999',
    '-j',
    'ACCEPT',
  ]);
  await srv.run('ip6tables', [
    '-t',
    'raw',
    '-A',
    'PREROUTING',
    '-p',
    'udp',
    '--dport',
    '9998',
    '-j',
    'ACCEPT',
  ]);
  await srv.run('ipset', ['create', 'foreign-set', 'hash:ip']);
}

export async function runWithInput(host: Host, cmd: string, args: string[], input: string): Promise<void> {
  const { spawn } = await import('node:child_process');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', host.netns, cmd, ...args], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd}: ${err}`))));
    child.stdin.end(input);
  });
}

/** Everything of knockgate's that srv's kernel holds, as text lines (empty when none). */
export async function knockgateObjects(host: Host): Promise<string[]> {
  const found: string[] = [];
  const nft = (await host.run('nft', ['list', 'tables'])).stdout;
  found.push(...nft.split('\n').filter((l) => l.includes('knockgate')));
  const sets = (await host.run('ipset', ['list', '-n'])).stdout;
  found.push(...sets.split('\n').filter((l) => l.startsWith('knockgate')));
  for (const tool of [
    'iptables-nft-save',
    'ip6tables-nft-save',
    'iptables-legacy-save',
    'ip6tables-legacy-save',
  ]) {
    const text = (await host.run(tool, [])).stdout;
    found.push(
      ...text
        .split('\n')
        .filter((l) => /KNOCKGATE/.test(l))
        .map((l) => `${tool}: ${l}`),
    );
  }
  return found;
}

export function grantFor(name: string, source: string, ports: number[], ms: number): FirewallGrant {
  return { name, source, ports: ports.map((port) => ({ port, proto: 'tcp' })), expiresAt: Date.now() + ms };
}

export function newFirewall(
  lab: Lab,
  backend: FirewallBackend,
  config = baseConfig(),
  iptablesMode?: IptablesMode,
): Firewall {
  return createFirewall({
    backend,
    config,
    ...(iptablesMode ? { iptablesMode } : {}),
    logger: silentLogger,
    clock: systemClock,
    commandPrefix: ['ip', 'netns', 'exec', lab.srv.netns],
  });
}

/** `iptablesMode` forces the iptables flavour (ipset and iptables backends); default: detected. */
export function backendScenarios(
  backend: FirewallBackend,
  otherBackend: FirewallBackend,
  iptablesMode?: IptablesMode,
): void {
  const title = `${backend}${iptablesMode ? ` (iptables-${iptablesMode})` : ''}`;
  describe.skipIf(skipWithoutNetns(`firewall ${title} e2e`))(`firewall ${title} backend (namespaces)`, () => {
    let lab: Lab;
    let fw: Firewall;
    let cli4: string;
    let cli6: string;

    beforeAll(async () => {
      lab = await makeLab();
      await addForeignObjects(lab);
      cli4 = lab.cli.addr4.srv!;
      cli6 = lab.cli.addr6.srv!;
      fw = newFirewall(lab, backend, baseConfig(), iptablesMode);
      await fw.install();
    });

    afterAll(async () => {
      await fw?.cleanup().catch(() => undefined);
      await fw?.close();
      await lab?.net.destroy();
    });

    const { service, dnat, dnatTarget, knockTcp, spaUdp } = PORTS;

    if (iptablesMode)
      it(`installs its chains with iptables-${iptablesMode} only`, async () => {
        const objects = await knockgateObjects(lab.srv);
        const other = iptablesMode === 'nft' ? 'legacy' : 'nft';
        expect(objects.some((l) => l.startsWith(`iptables-${iptablesMode}-save: :KNOCKGATE`))).toBe(true);
        expect(objects.some((l) => l.startsWith(`ip6tables-${iptablesMode}-save: :KNOCKGATE`))).toBe(true);
        expect(objects.filter((l) => l.includes(`-${other}-save`))).toEqual([]);
      });

    it('before any grant, protected ports are closed to everyone (the unprotected one is open)', async () => {
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service)).toBe('timeout');
      expect(await lab.cliProbe.connect(lab.srvFromCli[6], service)).toBe('timeout');
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], dnat)).toBe('timeout');
      expect(await lab.thirdProbe.connect(lab.srvFromThird[4], service)).toBe('timeout');
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], dnatTarget)).toBe('ok');
    });

    it('knock and SPA ports answer nothing (no RST, no ICMP) and leave no conntrack entry', async () => {
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], knockTcp)).toBe('timeout');
      expect(await lab.cliProbe.connect(lab.srvFromCli[6], knockTcp)).toBe('timeout');
      expect(await lab.cliProbe.udp(lab.srvFromCli[4], spaUdp)).toBe('silence');
      // Control: a closed port that is not a knock port answers with RST / ICMP.
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], knockTcp + 1)).toBe('refused');
      expect(await lab.cliProbe.udp(lab.srvFromCli[4], spaUdp + 1)).toBe('refused');
      const ct = await lab.srv.run('conntrack', ['-L']);
      expect(ct.stdout).not.toMatch(new RegExp(`dport=(${knockTcp}|${spaUdp})\\b`));
    });

    it('a grant opens the ports for its source only, IPv4 and IPv6, DNAT target included', async () => {
      await fw.add(grantFor('g-v4', cli4, [service, dnat], 60_000));
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service)).toBe('ok');
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], dnat)).toBe('ok');
      expect(await lab.thirdProbe.connect(lab.srvFromThird[4], service)).toBe('timeout');
      expect(await lab.thirdProbe.connect(lab.srvFromThird[4], dnat)).toBe('timeout');
      expect(await lab.cliProbe.connect(lab.srvFromCli[6], service)).toBe('timeout');
      await fw.add(grantFor('g-v6', cli6, [service], 60_000));
      expect(await lab.cliProbe.connect(lab.srvFromCli[6], service)).toBe('ok');
      expect(await lab.cliProbe.connect(lab.srvFromCli[6], dnat)).toBe('timeout');
      expect(await lab.thirdProbe.connect(lab.srvFromThird[6], service)).toBe('timeout');
      expect(fw.stats().grants).toBe(2);
    });

    if (backend !== 'iptables')
      it('per-grant changes go through one long-lived process (not a fork per grant), restarted if it dies', async () => {
        const tool = backend === 'nftables' ? 'nft' : 'ipset';
        const sessions = async () => {
          const pids = (await sh('ip', ['netns', 'pids', lab.srv.netns])).stdout.split(/\s+/).filter(Boolean);
          const named: string[] = [];
          for (const pid of pids) {
            const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
            if (comm.trim() === tool) named.push(pid);
          }
          return named;
        };
        const before = await sessions();
        expect(before).toHaveLength(1);
        for (let i = 0; i < 20; i++)
          await fw.add(grantFor(`g-many-${i}`, `10.77.0.${i + 1}`, [service], 60_000));
        for (let i = 0; i < 20; i++) await fw.remove({ name: `g-many-${i}` }, 'revoked');
        expect(await sessions()).toEqual(before);
        // A session that dies is replaced on the next change.
        process.kill(Number(before[0]), 'SIGKILL');
        await waitFor(async () => (await sessions()).length === 0, { what: `${tool} session to end` });
        await fw.add(grantFor('g-after-kill', lab.third.addr4.srv!, [service], 60_000));
        expect(await lab.thirdProbe.connect(lab.srvFromThird[4], service)).toBe('ok');
        await fw.remove({ name: 'g-after-kill' }, 'revoked');
        expect(await lab.thirdProbe.connect(lab.srvFromThird[4], service)).toBe('timeout');
        expect(await sessions()).toHaveLength(1);
      });

    it('remove closes at once for new connections; an established one survives', async () => {
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service, { hold: 'r4' })).toBe('ok');
      await fw.remove({ name: 'g-v4' }, 'revoked');
      await fw.remove({ name: 'g-v6' }, 'revoked');
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service)).toBe('timeout');
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], dnat)).toBe('timeout');
      expect(await lab.cliProbe.connect(lab.srvFromCli[6], service)).toBe('timeout');
      expect(await lab.cliProbe.echo('r4')).toBe('ok');
      await lab.cliProbe.drop('r4');
      expect(fw.stats().grants).toBe(0);
    });

    it('the kernel ends a grant on its own: new connects fail, established ones survive', async () => {
      await fw.add(grantFor('g-exp4', cli4, [service], 3_000));
      await fw.add(grantFor('g-exp6', cli6, [service], 3_000));
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service, { hold: 'e4' })).toBe('ok');
      expect(await lab.cliProbe.connect(lab.srvFromCli[6], service, { hold: 'e6' })).toBe('ok');
      await waitFor(
        async () =>
          (await lab.cliProbe.connect(lab.srvFromCli[4], service, { timeoutMs: 400 })) === 'timeout',
        {
          timeoutMs: 15_000,
          intervalMs: 200,
          what: 'IPv4 grant to expire in the kernel',
        },
      );
      await waitFor(
        async () =>
          (await lab.cliProbe.connect(lab.srvFromCli[6], service, { timeoutMs: 400 })) === 'timeout',
        {
          timeoutMs: 15_000,
          intervalMs: 200,
          what: 'IPv6 grant to expire in the kernel',
        },
      );
      expect(await lab.cliProbe.echo('e4')).toBe('ok');
      expect(await lab.cliProbe.echo('e6')).toBe('ok');
      await lab.cliProbe.drop('e4');
      await lab.cliProbe.drop('e6');
      await fw.remove({ name: 'g-exp4' }, 'expired');
      await fw.remove({ name: 'g-exp6' }, 'expired');
    });

    it('with conntrackFlush, a revoke also cuts the established connection', async () => {
      await fw.install({ ...baseConfig(), conntrackFlush: true });
      await fw.add(grantFor('g-ct', cli4, [service], 60_000));
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service, { hold: 'c4' })).toBe('ok');
      expect(await lab.cliProbe.echo('c4')).toBe('ok');
      await fw.remove({ name: 'g-ct' }, 'revoked');
      expect(await lab.cliProbe.echo('c4', 1500)).not.toBe('ok');
      await lab.cliProbe.drop('c4');
    });

    it('sync replaces the whole grant set atomically and is idempotent', async () => {
      await fw.install(baseConfig());
      const g = grantFor('g-sync', cli4, [service], 60_000);
      await fw.sync([g]);
      await fw.sync([g]);
      expect(fw.grants().map((x) => x.name)).toEqual(['g-sync']);
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service)).toBe('ok');
      await fw.sync([]);
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service)).toBe('timeout');
    });

    it('alwaysAllow sources connect with no grant; others still cannot', async () => {
      await fw.install({
        ...baseConfig(),
        alwaysAllow: [`${lab.third.addr4.srv}/32`, `${lab.third.addr6.srv}/128`],
      });
      expect(await lab.thirdProbe.connect(lab.srvFromThird[4], service)).toBe('ok');
      expect(await lab.thirdProbe.connect(lab.srvFromThird[6], service)).toBe('ok');
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service)).toBe('timeout');
    });

    it('Audit mode opens nothing and drops nothing', async () => {
      await fw.install({ ...baseConfig(), mode: 'Audit' });
      expect(fw.stats().grants).toBe(0);
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service)).toBe('ok');
      expect(await lab.thirdProbe.connect(lab.srvFromThird[6], service)).toBe('ok');
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], knockTcp)).toBe('refused');
      await fw.install(baseConfig());
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], service)).toBe('timeout');
    });

    it(`cleanup removes every knockgate object (also the ${otherBackend} backend's) and nothing else`, async () => {
      await fw.add(grantFor('g-left', cli4, [service], 60_000));
      const other = newFirewall(lab, otherBackend);
      await other.install();
      await other.add(grantFor('g-other', cli6, [service], 60_000));
      await other.close();
      expect((await knockgateObjects(lab.srv)).length).toBeGreaterThan(0);
      await fw.cleanup();
      expect(await knockgateObjects(lab.srv)).toEqual([]);
      expect(fw.stats().grants).toBe(0);
      // Foreign objects survive.
      expect((await lab.srv.run('nft', ['list', 'tables'])).stdout).toContain('foreignnat');
      expect((await lab.srv.run('iptables-save', [])).stdout).toContain('--dport 9999 -j ACCEPT');
      expect((await lab.srv.run('ip6tables-save', [])).stdout).toContain('--dport 9998 -j ACCEPT');
      expect((await lab.srv.run('ipset', ['list', '-n'])).stdout).toContain('foreign-set');
      // With nothing of ours left, the service is reachable again (nothing else was blocking it).
      expect(await lab.thirdProbe.connect(lab.srvFromThird[4], service)).toBe('ok');
      expect(await lab.cliProbe.connect(lab.srvFromCli[4], dnat)).toBe('ok');
      // And a second cleanup is a no-op.
      await fw.cleanup();
    });
  });
}
