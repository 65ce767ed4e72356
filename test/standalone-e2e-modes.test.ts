// `knockgate standalone` settings end to end (nftables): `mode: Audit` opens and drops nothing and
// says in its log what it would have done (and the kernel counts what it would have dropped);
// `alwaysAllow` sources connect before, during and after a grant; SIGHUP with a broken config keeps
// the old one running, with a good one applies it.

import { existsSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutNetns } from './helpers/netns.js';
import { keygen, Lab, runCommand, yamlConfig, type SpaKeys } from './helpers/standalone-harness.js';

const PORT = 2222;
const SPA_PORT = 40401;
const KNOCK = ['7101:udp', '7102:tcp'];

describe.skipIf(skipWithoutNetns('standalone e2e (modes, reload)'))(
  'knockgate standalone: Audit, alwaysAllow, SIGHUP',
  () => {
    let lab: Lab;
    let keys: SpaKeys;

    beforeAll(async () => {
      lab = await Lab.create();
      keys = await keygen();
      await lab.listen([PORT]);
    });

    afterAll(async () => {
      await lab?.destroy();
    });

    /** Packets the guard denied (in Audit: would have denied), from the knockgate table's counter. */
    async function deniedPackets(): Promise<number> {
      const r = await runCommand(lab.srv, 'nft', ['list', 'counter', 'inet', 'knockgate', 'denied']);
      const m = /packets (\d+)/.exec(r.stdout);
      if (!m) throw new Error(`no denied counter: ${r.stderr}`);
      return Number(m[1]);
    }

    it('mode: Audit opens nothing and drops nothing, and logs what it would have done', async () => {
      const hooks = `${lab.dir}/audit-hooks`;
      const config = lab.write(
        'audit.yaml',
        yamlConfig(keys, SPA_PORT, PORT, [
          'mode: Audit',
          'hooks:',
          `  door-knock: {start: "echo start %IP% >> ${hooks}", stop: "echo stop %IP% >> ${hooks}"}`,
        ]),
      );
      const d = await lab.startDaemon({ config, stateDir: `${lab.dir}/state-audit` });
      try {
        expect(d.events('started')[0]).toMatchObject({ mode: 'Audit' });
        // Before: nothing is dropped, for anyone, in either family.
        for (const family of [4, 6] as const) {
          await lab.waitReach('cli', PORT, 'open', { family, timeoutMs: 5000 });
          await lab.waitReach('third', PORT, 'open', { family, timeoutMs: 5000 });
        }
        // ... but the kernel counts what Enforce would have dropped.
        expect(await deniedPackets()).toBeGreaterThan(0);

        const mark = d.lines.length;
        await lab.knock('cli', KNOCK, 4);
        await lab.spa('cli', keys, `tcp/${PORT}`, SPA_PORT, 6);
        for (const family of [4, 6] as const) {
          const source = lab.addr('cli', family);
          const open = await d.waitLog(
            (l) => l.event === 'open' && String(l.source).startsWith(`${source}/`),
            `audit open for ${source}`,
            20_000,
            mark,
          );
          expect(open.reason).toMatch(/audit mode/);
        }
        // The knock door's start command is only described, never run (the SPA door has none).
        const wouldRun = d.lines.slice(mark).filter((l) => l.event === 'audit');
        expect(wouldRun.map((l) => l.command)).toEqual([`echo start ${lab.addr('cli', 4)} >> ${hooks}`]);
        expect(wouldRun[0]!.msg).toMatch(/would run the start command/);
        // During and after the grants: still nothing dropped for the source that did not knock.
        for (const family of [4, 6] as const)
          await lab.waitReach('third', PORT, 'open', { family, timeoutMs: 5000 });
        await d.waitLog((l) => l.event === 'expire', 'an expiry', 20_000, mark);
        for (const family of [4, 6] as const) {
          await lab.waitReach('cli', PORT, 'open', { family, timeoutMs: 5000 });
          await lab.waitReach('third', PORT, 'open', { family, timeoutMs: 5000 });
        }
        expect(existsSync(hooks)).toBe(false);
      } finally {
        expect((await d.stop()).code).toBe(0);
      }
    });

    it('alwaysAllow sources connect before, during and after a grant; others only during theirs', async () => {
      const allow = [`${lab.addr('third', 4)}/32`, `${lab.addr('third', 6)}/128`];
      const config = lab.write(
        'allow.yaml',
        yamlConfig(keys, SPA_PORT, PORT, [`alwaysAllow: ${JSON.stringify(allow)}`]),
      );
      const d = await lab.startDaemon({ config, stateDir: `${lab.dir}/state-allow` });
      try {
        const both = async (cli: 'open' | 'closed') => {
          for (const family of [4, 6] as const) {
            await lab.waitReach('third', PORT, 'open', { family, timeoutMs: 5000 });
            if (cli === 'closed') expect(await lab.connect('cli', PORT, { family })).toBe('closed');
            else await lab.waitReach('cli', PORT, 'open', { family });
          }
        };
        await both('closed');
        const mark = d.lines.length;
        await lab.knock('cli', KNOCK, 4);
        await lab.knock('cli', KNOCK, 6);
        await both('open');
        await d.waitLog(
          (l) => l.event === 'expire' && String(l.source).startsWith(`${lab.addr('cli', 6)}/`),
          'the IPv6 grant expired',
          20_000,
          mark,
        );
        await d.waitLog(
          (l) => l.event === 'expire' && String(l.source).startsWith(`${lab.addr('cli', 4)}/`),
          'the IPv4 grant expired',
          20_000,
          mark,
        );
        for (const family of [4, 6] as const) await lab.waitReach('cli', PORT, 'closed', { family });
        await both('closed');
      } finally {
        expect((await d.stop()).code).toBe(0);
      }
    });

    it('SIGHUP: a broken config is refused (FILE:LINE) and the old one keeps opening; a good one is applied', async () => {
      const good = yamlConfig(keys, SPA_PORT, PORT);
      const config = lab.write('reload.yaml', good);
      const d = await lab.startDaemon({
        config,
        stateDir: `${lab.dir}/state-reload`,
        interfaces: [lab.srvIf('cli'), lab.srvIf('third')],
      });
      try {
        // Broken: a knock door whose grant names no port, on line 6 of the file.
        const broken = good.replace(/grant: \{ports: \["2222\/tcp"\]/, 'grant: {ports: ["99999/tcp"]');
        expect(broken.split('\n')[5]).toContain('99999');
        writeFileSync(config, broken);
        let mark = d.lines.length;
        d.signal('SIGHUP');
        const refused = await d.waitEvent('reload-refused', 'reload refused', 20_000, mark);
        expect(refused.msg).toContain(`${config}:6:`);
        expect(d.running).toBe(true);

        // The old config still runs: cli's knock opens.
        await lab.knock('cli', KNOCK, 4);
        await lab.waitReach('cli', PORT, 'open');

        // Good: the knock door now wants another sequence.
        writeFileSync(
          config,
          good.replace('["7101/udp", "7102/tcp"]', '["7201/tcp", "7202/udp", "7203/tcp"]'),
        );
        mark = d.lines.length;
        d.signal('SIGHUP');
        await d.waitEvent('reloaded', 'reloaded', 20_000, mark);
        // third knocks the old sequence, then the new one: only the new one opens (packets of one
        // source are matched in order, so an open by the old one would have come first).
        mark = d.lines.length;
        await lab.knock('third', KNOCK, 4);
        await lab.knock('third', ['7201:tcp', '7202:udp', '7203:tcp'], 4);
        await d.waitLog(
          (l) => l.event === 'open' && String(l.source).startsWith(`${lab.addr('third', 4)}/`),
          'open for third',
          20_000,
          mark,
        );
        expect(d.lines.slice(mark).filter((l) => l.event === 'open' || l.event === 'extend')).toHaveLength(1);
        await lab.waitReach('third', PORT, 'open');
      } finally {
        expect((await d.stop()).code).toBe(0);
      }
    });
  },
);
