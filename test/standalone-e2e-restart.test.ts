// `knockgate standalone` across crashes and restarts (nftables), and `knockgate revoke`:
//   - kill -9 during a live grant, restart after its expiry: once the restart logged "started" no
//     element for that source is left in the ruleset, and a connect fails;
//   - kill -9, restart before expiry: still open, and it closes on time;
//   - an SPA packet saved with `knockgate spa -B` and resent raw after a restart is refused as a replay;
//   - `knockgate revoke SOURCE` closes access at once in the running daemon (IPv4 and IPv6);
//   - --backend changed between runs (nftables → ipset → iptables → nftables, each stopped with
//     SIGTERM, which leaves its objects in place): each run removes the earlier backend's objects,
//     says so, and opens for a real `knock` (the old DROP would refuse it otherwise).

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutNetns } from './helpers/netns.js';
import {
  keygen,
  knockgate,
  Lab,
  runCommand,
  yamlConfig,
  type Daemon,
  type Family,
  type LogLine,
  type SpaKeys,
} from './helpers/standalone-harness.js';

const PORT = 2222;
const SPA_PORT = 40301;
const GRANT_SECONDS = 5;
/** Long enough that a restart finishes before the grant ends even on a loaded machine. */
const LONG_GRANT_SECONDS = 20;
const KNOCK = ['7101:udp', '7102:tcp'];
/** The backend-switch runs wait for each grant's end before the next run: kept short. */
const SWITCH_GRANT_SECONDS = 3;

/** Send a saved SPA packet again, byte for byte, from `host` over UDP. */
const RESEND = `
const dgram = require('dgram');
const [file, host, port] = process.argv.slice(1);
const text = require('fs').readFileSync(file, 'utf8').trim();
const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
s.send(text, Number(port), host, (err) => { s.close(); if (err) { console.error(err.message); process.exit(1); } });
`;

describe.skipIf(skipWithoutNetns('standalone e2e (restart, revoke)'))(
  'knockgate standalone: crash, restart, replay, revoke',
  () => {
    let lab: Lab;
    let keys: SpaKeys;
    let config: string;

    beforeAll(async () => {
      lab = await Lab.create();
      keys = await keygen();
      config = lab.write('restart.yaml', yamlConfig(keys, SPA_PORT, PORT, [], GRANT_SECONDS));
      await lab.listen([PORT]);
    });

    afterAll(async () => {
      await lab?.destroy();
    });

    /** Open the door with a knock from cli; resolves to the daemon's "open" line. */
    async function knockOpen(d: Daemon, family: Family): Promise<LogLine> {
      const mark = d.lines.length;
      await lab.knock('cli', KNOCK, family);
      const line = await d.waitLog(
        (l) => l.event === 'open' && String(l.source).startsWith(`${lab.addr('cli', family)}/`),
        `open for cli IPv${family}`,
        20_000,
        mark,
      );
      await lab.waitReach('cli', PORT, 'open', { family });
      return line;
    }

    async function sleepUntil(ms: number): Promise<void> {
      const wait = ms - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }

    // nftables and ipset entries carry their own timeout (the kernel drops them while knockgate is
    // down); iptables rules stop matching at --datestop and the restart's reconcile removes them.
    for (const backend of ['nftables', 'ipset', 'iptables'] as const) {
      it(`${backend}: kill -9 during a grant, restart after its expiry: nothing left for that source, connect fails`, async () => {
        const stateDir = `${lab.dir}/state-crash-${backend}`;
        const d1 = await lab.startDaemon({ config, backend, stateDir });
        const opened = await Promise.all([knockOpen(d1, 4), knockOpen(d1, 6)]);
        const during = await lab.firewallState(backend);
        for (const family of [4, 6] as const) expect(during).toContain(lab.addr('cli', family));
        await d1.kill9();
        // Down past the expiry.
        await sleepUntil(Math.max(...opened.map((o) => Date.parse(String(o.expiresAt)))) + 1000);
        const d2 = await lab.startDaemon({ config, backend, stateDir });
        try {
          expect(d2.events('reconcile')[0]).toMatchObject({ live: 0, backend });
          const after = await lab.firewallState(backend);
          expect(after).toMatch(/knockgate/i);
          for (const family of [4, 6] as const) {
            expect(after).not.toContain(lab.addr('cli', family));
            expect(await lab.connect('cli', PORT, { family })).toBe('closed');
          }
          // Each of those grants is marked Expired (its stop command would run) after the restart.
          for (const o of opened)
            await d2.waitLog((l) => l.event === 'expire' && l.grant === o.grant, `expire ${String(o.grant)}`);
          expect(await lab.grants(stateDir)).toMatch(/No live grants/);
        } finally {
          expect((await d2.stop()).code).toBe(0);
          const cleanup = await knockgate(lab.srv, ['standalone', '--cleanup']);
          expect(cleanup.code, cleanup.stderr).toBe(0);
        }
      });
    }

    it("--backend changed between runs: each removes the last one's leftovers and opens for a knock", async () => {
      const short = lab.write('switch.yaml', yamlConfig(keys, SPA_PORT, PORT, [], SWITCH_GRANT_SECONDS));
      const stateDir = `${lab.dir}/state-switch`;
      // What each run must find of the one before it (ipset's chains are iptables' too: kept).
      const runs = [
        { backend: 'nftables', removed: [] as RegExp[] },
        { backend: 'ipset', removed: [/^nft table inet knockgate$/] },
        { backend: 'iptables', removed: [/^ipset knockgate-grants4$/, /^ipset knockgate-grants6$/] },
        { backend: 'nftables', removed: [/^iptables(-nft|-legacy)? mangle chain KNOCKGATE-GUARD$/] },
      ] as const;
      try {
        for (const run of runs) {
          const d = await lab.startDaemon({ config: short, backend: run.backend, stateDir });
          try {
            const removed = d.lines
              .filter((l) => String(l.msg).startsWith('removed a leftover of another firewall backend'))
              .map((l) => String(l.object));
            for (const want of run.removed)
              expect(
                removed.some((o) => want.test(o)),
                `${run.backend} removed ${removed.join(', ')}`,
              ).toBe(true);
            if (run.removed.length === 0) expect(removed).toEqual([]);
            expect(await lab.connect('cli', PORT)).toBe('closed');
            await knockOpen(d, 4);
            // Closed again before the SIGTERM: only the backend's DROP is left for the next run.
            await lab.waitReach('cli', PORT, 'closed');
          } finally {
            expect((await d.stop()).code).toBe(0);
          }
        }
      } finally {
        const cleanup = await knockgate(lab.srv, ['standalone', '--cleanup']);
        expect(cleanup.code, cleanup.stderr).toBe(0);
      }
    }, 150_000);

    it('kill -9 during a grant, restart before its expiry: still open, closes on time', async () => {
      const longConfig = lab.write(
        'restart-long.yaml',
        yamlConfig(keys, SPA_PORT, PORT, [], LONG_GRANT_SECONDS),
      );
      const d1 = await lab.startDaemon({ config: longConfig });
      const opened = await knockOpen(d1, 4);
      await d1.kill9();
      const d2 = await lab.startDaemon({ config: longConfig });
      try {
        const expiresAt = Date.parse(String(opened.expiresAt));
        expect(Date.now()).toBeLessThan(expiresAt);
        expect(d2.events('reconcile')[0]).toMatchObject({ live: 1 });
        await lab.waitReach('cli', PORT, 'open', { timeoutMs: 15_000 });
        expect(await lab.grants()).toContain(lab.addr('cli', 4));
        const expired = await d2.waitLog(
          (l) => l.event === 'expire' && l.grant === opened.grant,
          'expire',
          LONG_GRANT_SECONDS * 1000 + 20_000,
        );
        // On time: not before its end (pino's time is ms since the epoch).
        expect(Number(expired.time)).toBeGreaterThanOrEqual(expiresAt);
        await lab.waitReach('cli', PORT, 'closed');
      } finally {
        expect((await d2.stop()).code).toBe(0);
      }
    }, 120_000);

    it('an SPA packet resent raw after a restart is refused as a replay', async () => {
      const saved = `${lab.dir}/spa-packet`;
      const d1 = await lab.startDaemon({ config });
      const mark = d1.lines.length;
      await lab.spa('cli', keys, `tcp/${PORT}`, SPA_PORT, 4, ['-B', saved]);
      const opened = await d1.waitLog(
        (l) => l.event === 'open' && l.method === 'spa',
        'open by the SPA packet',
        20_000,
        mark,
      );
      await lab.waitReach('cli', PORT, 'open');
      expect(readFileSync(saved, 'utf8').trim().length).toBeGreaterThan(100);
      await d1.kill9();

      const d2 = await lab.startDaemon({ config });
      try {
        const mark2 = d2.lines.length;
        const sent = await runCommand(lab.host('cli'), 'node', [
          '-e',
          RESEND,
          saved,
          lab.serverAddr('cli', 4),
          String(SPA_PORT),
        ]);
        expect(sent.code, sent.stderr).toBe(0);
        const refused = await d2.waitLog(
          (l) => l.event === 'refuse' && l.reason === 'replay',
          'the replay refused',
          20_000,
          mark2,
        );
        expect(refused.source).toContain(lab.addr('cli', 4));
        // The replay neither opened nor extended anything: the first grant ends on its own time.
        await d2.waitLog((l) => l.event === 'expire' && l.grant === opened.grant, 'expire', 20_000);
        expect(d2.lines.slice(mark2).filter((l) => l.event === 'open' || l.event === 'extend')).toEqual([]);
        await lab.waitReach('cli', PORT, 'closed');
      } finally {
        expect((await d2.stop()).code).toBe(0);
      }
    });

    it('knockgate revoke SOURCE closes access at once, IPv4 and IPv6', async () => {
      const longConfig = lab.write('revoke.yaml', yamlConfig(keys, SPA_PORT, PORT, [], 600));
      const d = await lab.startDaemon({ config: longConfig, stateDir: `${lab.dir}/state-revoke` });
      try {
        for (const family of [4, 6] as const) {
          const opened = await knockOpen(d, family);
          const address = lab.addr('cli', family);
          const r = await knockgate(undefined, ['revoke', address, '--state-dir', `${lab.dir}/state-revoke`]);
          expect(r.code, r.stderr).toBe(0);
          expect(r.stdout.trim()).toBe(`revoked ${String(opened.grant)}`);
          // At once: the reply comes after the firewall entry is gone.
          expect(await lab.connect('cli', PORT, { family })).toBe('closed');
          expect(d.events('revoke').map((l) => l.grant)).toContain(opened.grant);
          expect(await lab.ruleset()).not.toContain(address);
        }
        const again = await knockgate(undefined, [
          'revoke',
          lab.addr('cli', 4),
          '--state-dir',
          `${lab.dir}/state-revoke`,
        ]);
        expect(again.stdout).toContain('no live grant');
      } finally {
        expect((await d.stop()).code).toBe(0);
      }
    });
  },
);
