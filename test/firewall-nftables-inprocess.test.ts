// The nftables backend with libnftables in-process (a recording stand-in for the addon's nftRun):
// the whole-state apply and bursts of any size are one transaction each through the library, never
// a forked nft; a refused transaction fails the change; no root.
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../api/clock.js';
import { Commands } from '../controller/firewall/command.js';
import { KernelFirewall } from '../controller/firewall/firewall.js';
import { NftablesBackend, type InProcessNft } from '../controller/firewall/nftables.js';
import type { FirewallGrant } from '../controller/firewall/types.js';

function setup(refuse?: (text: string) => string) {
  const logger = pino({ level: 'silent' });
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const commands = new Commands([], logger, clock);
  // Every command is recorded, none run: a forked nft is the path this backend must avoid.
  const forked: string[] = [];
  vi.spyOn(commands, 'run').mockImplementation((cmd, args) => {
    forked.push([cmd, ...args].join(' '));
    return Promise.resolve({ stdout: '', stderr: '' });
  });
  const texts: string[] = [];
  const lib: InProcessNft = {
    available: () => '',
    run: (text) => {
      texts.push(text);
      return refuse?.(text) ?? '';
    },
  };
  const backend = new NftablesBackend(commands, logger, clock, lib);
  const fw = new KernelFirewall({
    backend,
    cleaners: [backend],
    commands,
    logger,
    clock,
    config: {
      protectedPorts: [{ port: 22, proto: 'tcp' }],
      knockPorts: [],
      alwaysAllow: [],
      mode: 'Enforce',
      maxGrants: 20_000,
      conntrackFlush: false,
    },
  });
  const grant = (i: number): FirewallGrant => ({
    name: `g${i}`,
    source: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
    ports: [{ port: 22, proto: 'tcp' }],
    expiresAt: clock.now() + 60_000,
  });
  return { fw, texts, forked, grant };
}

describe('nftables through libnftables in-process', () => {
  it('applies the whole state and a 10,000-grant burst as one library transaction each', async () => {
    const { fw, texts, forked, grant } = setup();
    await fw.install();
    expect(texts).toHaveLength(1);
    expect(texts[0]).toContain('table inet knockgate {');
    const grants = Array.from({ length: 10_000 }, (_, i) => grant(i));
    await Promise.all(grants.map((g) => fw.add(g)));
    // Every add issued in one tick joined one batch: one transaction, every element in it.
    expect(texts).toHaveLength(2);
    expect(texts[1]!.match(/ \. tcp \. 22 timeout /g)).toHaveLength(10_000);
    await fw.sync(grants);
    expect(texts).toHaveLength(3);
    expect(texts[2]!.match(/ \. tcp \. 22 timeout /g)).toHaveLength(10_000);
    // Other backends' leftovers are looked for at install (iptables-save, ipset list); nft itself
    // only ever answers the preflight.
    expect(forked.filter((c) => c.startsWith('nft ') && !/^nft (--version|list tables)$/.test(c))).toEqual(
      [],
    );
    await fw.close();
  });

  it('fails a refused change and a refused whole state with nft’s message, keeping the table', async () => {
    let refusing = false;
    const { fw, grant } = setup(() => (refusing ? 'Error: Could not process rule: No such file' : ''));
    await fw.install();
    await fw.add(grant(1));
    refusing = true;
    await expect(fw.add(grant(2))).rejects.toThrow(/grant change refused: Error: Could not process rule/);
    await expect(fw.sync([grant(3)])).rejects.toThrow(/ruleset not applied, previous one kept/);
    expect(fw.grants().map((g) => g.name)).toEqual(['g1']);
    await fw.close();
  });
});
