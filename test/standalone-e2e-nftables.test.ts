// `knockgate standalone` end to end with the nftables backend, IPv4 and IPv6, in network
// namespaces: the built CLI runs in srv with a knockd.conf (its start/stop commands run), an fwknop
// access.conf + fwknopd.conf, and a knockgate YAML file; the real clients (knock, knock -6, the
// Debian fwknop client for IPv4, knockgate spa for IPv6) open the protected port for their own
// address only; third never can; after expiry new connections fail and an established one survives.
// Also the NodePort-like case: a DNAT rule forwards the protected port to a listener on another port.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutNetns, waitFor } from './helpers/netns.js';
import {
  grantLifecycle,
  keygen,
  knockgate,
  Lab,
  runCommand,
  type Daemon,
  type SpaKeys,
  yamlConfig,
} from './helpers/standalone-harness.js';

const PORT = 2222;
const NAT_PORT = 3333;
const NAT_TARGET = 8022;
/** Short grants: the expiry is part of every scenario. */
const GRANT_SECONDS = 5;

describe.skipIf(skipWithoutNetns('standalone e2e (nftables)'))('knockgate standalone, nftables', () => {
  let lab: Lab;
  let keys: SpaKeys;

  beforeAll(async () => {
    lab = await Lab.create();
    keys = await keygen();
    await lab.listen([PORT, NAT_TARGET]);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  /** Runs `body` against a daemon with a fresh state dir, and stops the daemon cleanly after. */
  async function withDaemon(
    name: string,
    opts: { config: string; fwknopdConf?: string; interfaces?: string[]; extraArgs?: string[] },
    body: (d: Daemon) => Promise<void>,
  ): Promise<void> {
    const d = await lab.startDaemon({ ...opts, stateDir: `${lab.dir}/state-${name}` });
    try {
      await body(d);
    } finally {
      expect((await d.stop()).code).toBe(0);
      // Keys never reach the log.
      const log = JSON.stringify(d.lines) + d.stderr;
      expect(log).not.toContain(keys.key);
      expect(log).not.toContain(keys.hmac);
    }
  }

  it('knockd.conf: knock and knock -6 open the port for their own address, commands run, expiry closes', async () => {
    const hooks = `${lab.dir}/knockd-hooks`;
    const config = lab.write(
      'knockd.conf',
      [
        '[options]',
        '  UseSyslog',
        '',
        '[openSSH]',
        '  sequence      = 7001:tcp,7002:udp,7003:tcp',
        '  seq_timeout   = 10',
        '  tcpflags      = syn',
        `  start_command = /usr/sbin/iptables -A INPUT -s %IP% -p tcp --dport ${PORT} -j ACCEPT && echo start %IP% >> ${hooks}`,
        `  stop_command  = /usr/sbin/iptables -D INPUT -s %IP% -p tcp --dport ${PORT} -j ACCEPT; echo stop %IP% >> ${hooks}`,
        `  start_command_6 = /usr/sbin/ip6tables -A INPUT -s %IP% -p tcp --dport ${PORT} -j ACCEPT && echo start6 %IP% >> ${hooks}`,
        `  stop_command_6  = /usr/sbin/ip6tables -D INPUT -s %IP% -p tcp --dport ${PORT} -j ACCEPT; echo stop6 %IP% >> ${hooks}`,
        `  cmd_timeout   = ${GRANT_SECONDS}`,
        '',
      ].join('\n'),
    );
    const stateDir = `${lab.dir}/state-knockd`;
    const metrics = '127.0.0.1:9464';
    await withDaemon('knockd', { config, extraArgs: ['--metrics-address', metrics] }, async (d) => {
      expect(d.events('started')[0]).toMatchObject({ protectedPorts: [`${PORT}/tcp`] });
      await grantLifecycle(lab, d, {
        port: PORT,
        families: [4, 6],
        open: (family) => lab.knock('cli', ['7001:tcp', '7002:udp', '7003:tcp'], family),
        whileOpen: async (family) => {
          const r = await knockgate(undefined, ['grants', '--state-dir', stateDir]);
          expect(r.code).toBe(0);
          expect(r.stdout).toContain(lab.addr('cli', family));
          expect(r.stdout).not.toContain(lab.addr('third', family));
          // Grants active by target moved with it (this host's firewall).
          const { stdout } = await lab.srv.run(process.execPath, [
            '-e',
            `fetch('http://${metrics}/metrics').then(async (r) => process.stdout.write(await r.text()))`,
          ]);
          expect(
            Number(/^knockgate_grants_active\{target="node"\} (\d+)$/m.exec(stdout)?.[1]),
          ).toBeGreaterThanOrEqual(1);
        },
      });
      // The stop command runs once the door is shut (after the expire line): wait for it.
      const ran = await waitFor(
        () => {
          const text = readFileSync(hooks, 'utf8');
          return text.includes('stop ') && text.includes('stop6 ') ? text : undefined;
        },
        { what: 'the stop commands', timeoutMs: 15_000 },
      );
      expect(ran.split('\n').filter(Boolean).sort()).toEqual(
        [
          `start ${lab.addr('cli', 4)}`,
          `stop ${lab.addr('cli', 4)}`,
          `start6 ${lab.addr('cli', 6)}`,
          `stop6 ${lab.addr('cli', 6)}`,
        ].sort(),
      );
      // /metrics (inside srv, on its loopback) moved with the two grants: opened, open latency,
      // expiry lag, the capture's drop count, under the names the agent and sniffer use too.
      const { stdout: text } = await lab.srv.run(process.execPath, [
        '-e',
        `fetch('http://${metrics}/metrics').then(async (r) => process.stdout.write(await r.text()))`,
      ]);
      const value = (name: string, labels = '') =>
        Number(new RegExp(`^${name}${labels ? `\\{${labels}\\}` : ''} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      expect(value('knockgate_grants_opened_total', 'policy="openssh",method="knock",extended="false"')).toBe(
        2,
      );
      expect(value('knockgate_open_latency_seconds_count')).toBe(2);
      expect(value('knockgate_open_latency_seconds_sum')).toBeLessThan(10);
      expect(value('knockgate_expiry_lag_seconds_count')).toBe(2);
      expect(value('knockgate_capture_dropped_packets', `interface="${lab.srvIf('cli')}"`)).toBe(0);
      expect(value('knockgate_grants_active', 'target="node"')).toBe(0);
      // Packets by result: two knocks of three packets (IPv4, IPv6), each completing once.
      expect(value('knockgate_packets_total', 'result="knock-complete"')).toBe(2);
      expect(value('knockgate_packets_total', 'result="knock-step"')).toBeGreaterThanOrEqual(4);
      expect(value('knockgate_packets_total', 'result="knock-refused"')).toBe(0);
    });
  });

  it('fwknop access.conf + fwknopd.conf: fwknop (IPv4) and knockgate spa (IPv6) open for their own address', async () => {
    const hooks = `${lab.dir}/fwknop-hooks`;
    const spaPort = 40123;
    const fwknopd = lab.write(
      'fwknopd.conf',
      [
        `PCAP_INTF                 ${lab.srvIf('cli')};`,
        `PCAP_FILTER               udp port ${spaPort};`,
        '',
      ].join('\n'),
    );
    const access = lab.write(
      'access.conf',
      [
        'SOURCE                ANY',
        `OPEN_PORTS            tcp/${PORT}`,
        `FW_ACCESS_TIMEOUT     ${GRANT_SECONDS}`,
        'REQUIRE_SOURCE_ADDRESS Y',
        `KEY_BASE64            ${keys.key}`,
        `HMAC_KEY_BASE64       ${keys.hmac}`,
        'ENABLE_EXTERNAL_CMDS  Y',
        `EXTERNAL_CMD_OPEN     echo open $SRC $PORT $PROTO >> ${hooks}`,
        `EXTERNAL_CMD_CLOSE    echo close $SRC $PORT $PROTO >> ${hooks}`,
        '',
      ].join('\n'),
    );
    // No --interface: PCAP_INTF of the fwknopd.conf names it.
    await withDaemon('fwknop', { config: access, fwknopdConf: fwknopd, interfaces: [] }, async (d) => {
      expect(d.events('started')[0]).toMatchObject({ interfaces: [lab.srvIf('cli')] });
      await grantLifecycle(lab, d, {
        port: PORT,
        families: [4, 6],
        open: (family) =>
          family === 4
            ? lab.fwknop('cli', keys, `tcp/${PORT}`, spaPort)
            : lab.spa('cli', keys, `tcp/${PORT}`, spaPort, 6),
      });
      // --log-level debug: where each grant's time went (capture → replay claim → store, kernel → Active).
      const timings = d.events('grant-timing');
      expect(timings.length).toBeGreaterThanOrEqual(2);
      for (const t of timings)
        for (const stage of [
          'captureToDecisionMs',
          'replayClaimMs',
          'storeWriteMs',
          'firewallMs',
          'statusWriteMs',
        ])
          expect(typeof t[stage], stage).toBe('number');
      console.info('grant-timing', JSON.stringify(timings));
      const ran = await waitFor(
        () => {
          const text = readFileSync(hooks, 'utf8');
          return (text.match(/^close /gm) ?? []).length === 2 ? text : undefined;
        },
        { what: 'the close commands', timeoutMs: 15_000 },
      );
      for (const family of [4, 6] as const) {
        expect(ran).toContain(`open ${lab.addr('cli', family)} ${PORT} tcp`);
        expect(ran).toContain(`close ${lab.addr('cli', family)} ${PORT} tcp`);
      }
    });
  });

  it('knockgate YAML: a knock door and an SPA door, IPv4 and IPv6', async () => {
    const spaPort = 40124;
    const config = lab.write('knockgate.yaml', yamlConfig(keys, spaPort, PORT));
    await withDaemon('yaml', { config }, async (d) => {
      expect(d.events('started')[0]).toMatchObject({ policies: ['door-knock', 'door-spa'] });
      await grantLifecycle(lab, d, {
        port: PORT,
        families: [4, 6],
        open: (family) => lab.knock('cli', ['7101:udp', '7102:tcp'], family),
      });
      await grantLifecycle(lab, d, {
        port: PORT,
        families: [4, 6],
        open: (family) => lab.spa('cli', keys, `tcp/${PORT}`, spaPort, family),
      });
    });
  });

  it('DNAT: a NAT rule forwards the protected port to another listener; access follows the grant', async () => {
    // A NodePort-like rule in srv: NAT_PORT is redirected to NAT_TARGET, where the listener is.
    const nat = await runCommand(lab.srv, 'nft', [
      `add table inet kge2enat; add chain inet kge2enat pre { type nat hook prerouting priority dstnat; }; ` +
        `add rule inet kge2enat pre tcp dport ${NAT_PORT} redirect to :${NAT_TARGET}`,
    ]);
    expect(nat.stderr).toBe('');
    try {
      const config = lab.write('nat.yaml', yamlConfig(keys, 40125, NAT_PORT));
      await withDaemon('nat', { config }, async (d) => {
        expect(d.events('started')[0]).toMatchObject({ protectedPorts: [`${NAT_PORT}/tcp`] });
        // Nothing listens on NAT_PORT itself: an open connect went through the DNAT rule.
        await lab.waitReach('third', NAT_TARGET, 'open', { timeoutMs: 5000 });
        await grantLifecycle(lab, d, {
          port: NAT_PORT,
          families: [4, 6],
          open: (family) => lab.knock('cli', ['7101:udp', '7102:tcp'], family),
        });
      });
    } finally {
      await runCommand(lab.srv, 'nft', ['delete table inet kge2enat']);
    }
  });
});
