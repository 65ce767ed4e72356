// The Firewall's own logic (validation, grant table, maxGrants, rollback, conntrack, cleanup) on a
// recording backend and a fake clock; no root. The kernel side is in firewall-<backend>.test.ts.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { Backend } from '../controller/firewall/backend.js';
import { Commands, type CommandResult, type RunOptions } from '../controller/firewall/command.js';
import type { Element, ElementChange } from '../controller/firewall/elements.js';
import { createFirewall, KernelFirewall } from '../controller/firewall/firewall.js';
import {
  FirewallApplyError,
  FirewallInputError,
  FirewallUnavailableError,
  MaxGrantsError,
  type FirewallConfig,
  type FirewallGrant,
} from '../controller/firewall/types.js';
import { validateGrant } from '../controller/firewall/validate.js';
import { Xtables } from '../controller/firewall/xtables.js';

class RecordingBackend implements Backend {
  readonly name = 'nftables' as const;
  atomicChanges = true;
  readonly calls: string[] = [];
  wholeStates: Element[][] = [];
  changes: ElementChange[][] = [];
  failChanges: string | undefined;
  failAll: string | undefined;
  removed = 0;
  failRemove: string | undefined;

  async preflight(): Promise<void> {
    this.calls.push('preflight');
  }
  async applyAll(_c: unknown, elements: Element[]): Promise<void> {
    this.calls.push('applyAll');
    if (this.failAll) throw new FirewallApplyError(this.failAll);
    this.wholeStates.push(elements);
  }
  async applyChanges(_c: unknown, changes: ElementChange[]): Promise<void> {
    this.calls.push('applyChanges');
    if (this.failChanges) throw new FirewallApplyError(this.failChanges);
    this.changes.push(changes);
  }
  /** What removeOthers() reports; a string makes it fail with that message once. */
  leftovers: string[] | string = [];
  async removeOthers(): Promise<string[]> {
    this.calls.push('removeOthers');
    const l = this.leftovers;
    this.leftovers = [];
    if (typeof l === 'string') throw new Error(l);
    return l;
  }
  async removeOwn(): Promise<void> {
    this.calls.push('removeOwn');
    if (this.failRemove) throw new Error(this.failRemove);
    this.removed++;
  }
  async toolPresent(): Promise<boolean> {
    return true;
  }
  async close(): Promise<void> {
    this.calls.push('close');
  }
}

class RecordingCommands extends Commands {
  readonly runs: string[] = [];
  answer: CommandResult = {
    code: 1,
    stdout: '',
    stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n',
  };
  override run(cmd: string, args: readonly string[], _opts?: RunOptions): Promise<CommandResult> {
    this.runs.push([cmd, ...args].join(' '));
    return Promise.resolve(this.answer);
  }
}

function config(over: Partial<FirewallConfig> = {}): FirewallConfig {
  return {
    protectedPorts: [{ port: 22, proto: 'tcp' }],
    knockPorts: [{ port: 62201, proto: 'udp' }],
    alwaysAllow: [],
    mode: 'Enforce',
    conntrackFlush: false,
    ...over,
  };
}

function setup(over: Partial<FirewallConfig> = {}) {
  const clock = new FakeClock();
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const backend = new RecordingBackend();
  const other = new RecordingBackend();
  const commands = new RecordingCommands([], logger, clock);
  const fw = new KernelFirewall({
    backend,
    cleaners: [backend, other],
    commands,
    logger,
    clock,
    config: config(over),
  });
  const grant = (name: string, source: string, ports: string[], seconds: number): FirewallGrant => ({
    name,
    source,
    ports: ports.map((p) => ({ port: Number(p.split('/')[0]), proto: p.split('/')[1] as 'tcp' | 'udp' })),
    expiresAt: clock.now() + seconds * 1000,
  });
  return { clock, lines, backend, other, commands, fw, grant };
}

describe('Firewall: leftovers of another backend', () => {
  it('removes them once, after its own state is in, one log line per object', async () => {
    const { fw, backend, lines } = setup();
    backend.leftovers = ['nft table inet knockgate', 'ipset knockgate-grants4'];
    await fw.install();
    await fw.install();
    expect(backend.calls).toEqual(['preflight', 'applyAll', 'removeOthers', 'preflight', 'applyAll']);
    const logged = lines.filter((l) => String(l.msg).startsWith('removed a leftover'));
    expect(logged.map((l) => l.object)).toEqual(['nft table inet knockgate', 'ipset knockgate-grants4']);
  });

  it('a failed removal keeps the install, is logged, and is retried at the next sync', async () => {
    const { fw, backend, lines } = setup();
    backend.leftovers = 'ipset v7.17: Set cannot be destroyed: it is in use by a kernel component';
    await fw.install();
    expect(lines.some((l) => l.level === 50 && /in use by a kernel component/.test(String(l.err)))).toBe(
      true,
    );
    backend.leftovers = ['iptables-legacy mangle chain KNOCKGATE'];
    await fw.sync([]);
    await fw.sync([]);
    expect(backend.calls.filter((c) => c === 'removeOthers')).toHaveLength(2);
    expect(lines.some((l) => l.object === 'iptables-legacy mangle chain KNOCKGATE')).toBe(true);
  });
});

describe('Firewall input', () => {
  it('refuses a broken config with one line and applies nothing', async () => {
    const { fw, backend } = setup({ protectedPorts: [{ port: 0, proto: 'tcp' }] });
    await expect(fw.install()).rejects.toThrow(/protectedPorts: invalid port/);
    await expect(fw.install(config({ alwaysAllow: ['10.0.0.0/33'] }))).rejects.toThrow(FirewallInputError);
    await expect(fw.install(config({ mode: 'Loud' as 'Audit' }))).rejects.toThrow(/mode "Loud"/);
    await expect(fw.install(config({ knockPorts: [{ port: 22, proto: 'tcp' }] }))).rejects.toThrow(
      /22\/tcp both protected and a knock port/,
    );
    await expect(fw.install(config({ maxGrants: 0 }))).rejects.toThrow(/maxGrants 0/);
    expect(backend.calls).toEqual([]);
  });

  it('refuses grants that are not one host, never granted, malformed or already over', async () => {
    const { fw, backend, grant, clock } = setup();
    await fw.install();
    const bad: [FirewallGrant, RegExp][] = [
      [grant('a', '10.0.0.0/24', ['22/tcp'], 60), /not a single host/],
      [grant('a', '127.0.0.1', ['22/tcp'], 60), /never granted/],
      [grant('a', 'fe80::1%eth0', ['22/tcp'], 60), /invalid address/],
      [grant('a', '10.0.0.1; id', ['22/tcp'], 60), /invalid address/],
      [grant('A_b', '10.0.0.1', ['22/tcp'], 60), /invalid name/],
      [grant('a', '10.0.0.1', ['70000/tcp'], 60), /invalid port/],
      [grant('a', '10.0.0.1', ['22/icmp'], 60), /invalid port/],
      [grant('a', '10.0.0.1', [], 60), /want 1-64 ports/],
      [grant('a', '10.0.0.1', ['22/tcp'], 30 * 24 * 3600), /within a week/],
      [{ ...grant('a', '10.0.0.1', ['22/tcp'], 60), expiresAt: clock.now() }, /already expired/],
    ];
    for (const [g, re] of bad) await expect(fw.add(g)).rejects.toThrow(re);
    expect(backend.calls).toEqual(['preflight', 'applyAll', 'removeOthers']);
    expect(fw.grants()).toEqual([]);
  });

  it('writes IPv6 sources in one canonical form', () => {
    const g = validateGrant(
      { name: 'x', source: 'FD00:0:0::07/128', ports: [{ port: 22, proto: 'tcp' }], expiresAt: 1 },
      0,
    );
    expect(g.address).toBe('fd00::7');
  });

  it('refuses to work before install, and an unknown backend at creation', async () => {
    const { fw, grant } = setup();
    await expect(fw.add(grant('a', '10.0.0.1', ['22/tcp'], 60))).rejects.toThrow(
      /install\(\) has not succeeded/,
    );
    expect(() =>
      createFirewall({
        backend: 'pf' as 'nftables',
        logger: pino({ level: 'silent' }),
        clock: new FakeClock(),
      }),
    ).toThrow(/unknown backend "pf"/);
  });
});

describe('Firewall grants', () => {
  it('turns add, extend-by-name, overlap and remove into exactly the changed elements', async () => {
    const { fw, backend, grant } = setup();
    await fw.install();
    await fw.add(grant('a', '10.0.0.1', ['22/tcp', '53/udp'], 60));
    expect(backend.changes.at(-1)!.map((c) => [c.key.port, c.element?.expiresAt])).toEqual([
      [22, Date.UTC(2026, 0, 1) + 60_000],
      [53, Date.UTC(2026, 0, 1) + 60_000],
    ]);
    // Same name: replaces (extends) and drops the port no longer granted.
    await fw.add(grant('a', '10.0.0.1', ['22/tcp'], 120));
    expect(backend.changes.at(-1)!.map((c) => [c.key.port, c.element?.expiresAt])).toEqual([
      [22, Date.UTC(2026, 0, 1) + 120_000],
      [53, undefined],
    ]);
    // Another grant on the same element: the later end wins, and removing it restores the other's.
    await fw.add(grant('b', '10.0.0.1', ['22/tcp'], 300));
    expect(backend.changes.at(-1)!.map((c) => c.element?.expiresAt)).toEqual([
      Date.UTC(2026, 0, 1) + 300_000,
    ]);
    await fw.remove({ name: 'b' }, 'revoked');
    expect(backend.changes.at(-1)!.map((c) => [c.element?.owner, c.element?.expiresAt])).toEqual([
      ['a', Date.UTC(2026, 0, 1) + 120_000],
    ]);
    await fw.remove({ name: 'nope' }, 'revoked');
    expect(fw.grants()).toEqual([
      {
        name: 'a',
        source: '10.0.0.1/32',
        ports: [{ port: 22, proto: 'tcp' }],
        expiresAt: Date.UTC(2026, 0, 1) + 120_000,
      },
    ]);
  });

  it('refuses grants beyond maxGrants with a counter and a log line; a replacement still passes', async () => {
    const { fw, grant, lines } = setup({ maxGrants: 2 });
    await fw.install();
    await fw.add(grant('a', '10.0.0.1', ['22/tcp'], 60));
    await fw.add(grant('b', '10.0.0.2', ['22/tcp'], 60));
    await expect(fw.add(grant('c', '10.0.0.3', ['22/tcp'], 60))).rejects.toThrow(MaxGrantsError);
    await fw.add(grant('b', '10.0.0.2', ['22/tcp'], 90));
    expect(fw.stats()).toEqual({ grants: 2, maxGrants: 2, refusedMaxGrants: 1, applyFailures: 0 });
    expect(lines.filter((l) => l.msg === 'grant refused: maxGrants reached')).toHaveLength(1);
    await fw.remove({ name: 'a' }, 'expired');
    await fw.add(grant('c', '10.0.0.3', ['22/tcp'], 60));
    await expect(
      fw.sync([
        grant('x', '10.0.0.7', ['22/tcp'], 60),
        grant('y', '10.0.0.8', ['22/tcp'], 60),
        grant('z', '10.0.0.9', ['22/tcp'], 60),
      ]),
    ).rejects.toThrow(/3 live grants exceed maxGrants 2; nothing applied/);
    expect(fw.grants().map((g) => g.name)).toEqual(['b', 'c']);
  });

  it('keeps the table as the kernel has it when a change fails (and resyncs a non-atomic backend)', async () => {
    const { fw, backend, grant } = setup();
    await fw.install();
    await fw.add(grant('a', '10.0.0.1', ['22/tcp'], 60));
    backend.failChanges = 'nft: no';
    await expect(fw.add(grant('a', '10.0.0.1', ['22/tcp'], 600))).rejects.toThrow('nft: no');
    await expect(fw.add(grant('b', '10.0.0.2', ['22/tcp'], 60))).rejects.toThrow('nft: no');
    expect(fw.grants().map((g) => [g.name, g.expiresAt])).toEqual([['a', Date.UTC(2026, 0, 1) + 60_000]]);
    expect(fw.stats().applyFailures).toBe(2);
    expect(backend.calls.filter((c) => c === 'applyAll')).toHaveLength(1);
    backend.atomicChanges = false;
    await expect(fw.add(grant('b', '10.0.0.2', ['22/tcp'], 60))).rejects.toThrow('nft: no');
    expect(backend.calls.at(-1)).toBe('applyAll');
    expect(backend.wholeStates.at(-1)!.map((e) => e.owner)).toEqual(['a']);
  });

  it('a failed remove falls back to a whole-state apply without the grant', async () => {
    const { fw, backend, grant } = setup();
    await fw.install();
    await fw.add(grant('a', '10.0.0.1', ['22/tcp'], 60));
    await fw.add(grant('b', '10.0.0.2', ['22/tcp'], 60));
    backend.failChanges = 'session gone';
    await fw.remove({ name: 'a' }, 'revoked');
    expect(backend.wholeStates.at(-1)!.map((e) => e.owner)).toEqual(['b']);
    backend.failAll = 'kernel says no';
    await expect(fw.remove({ name: 'b' }, 'revoked')).rejects.toThrow('kernel says no');
    expect(fw.grants().map((g) => g.name)).toEqual(['b']);
  });

  it('sync validates everything first, drops ended grants, and is idempotent', async () => {
    const { fw, backend, grant, clock } = setup();
    await fw.install();
    const live = grant('a', '10.0.0.1', ['22/tcp'], 60);
    const ended = { ...grant('b', '10.0.0.2', ['22/tcp'], 60), expiresAt: clock.now() - 1 };
    await fw.sync([live, ended]);
    await fw.sync([live, ended]);
    expect(backend.wholeStates.at(-1)).toEqual(backend.wholeStates.at(-2));
    expect(fw.grants().map((g) => g.name)).toEqual(['a']);
    await expect(
      fw.sync([grant('c', '10.0.0.3', ['22/tcp'], 60), grant('d', '10.0.0.0/8', ['22/tcp'], 60)]),
    ).rejects.toThrow(/grant d: source 10.0.0.0\/8 is not a single host/);
    expect(backend.wholeStates).toHaveLength(3);
    expect(fw.grants().map((g) => g.name)).toEqual(['a']);
  });

  it('coalesces concurrent operations into few backend changes; a bad one fails alone', async () => {
    const { fw, backend, grant } = setup();
    await fw.install();
    const results = await Promise.allSettled([
      ...Array.from({ length: 50 }, (_, i) => fw.add(grant(`g${i}`, `10.0.1.${i + 1}`, ['22/tcp'], 60))),
      fw.add(grant('bad', '10.0.0.0/8', ['22/tcp'], 60)),
      fw.remove({ name: 'g3' }, 'revoked'),
    ]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(fw.stats().grants).toBe(49);
    // The first add runs alone; everything that arrived meanwhile is one change.
    expect(backend.calls.filter((c) => c === 'applyChanges').length).toBeLessThanOrEqual(2);
  });

  it('says when the kernel took a grant, before add() settles; never for one it refused', async () => {
    const { fw, backend, grant } = setup();
    await fw.install();
    const seen: string[] = [];
    const real = backend.applyChanges.bind(backend);
    backend.applyChanges = async (c, changes, all, now) => {
      await real(c, changes, all, now);
      seen.push('kernel');
    };
    await fw
      .add(grant('a', '10.0.0.1', ['22/tcp'], 60), () => seen.push('applied a'))
      .then(() => seen.push('settled a'));
    expect(seen).toEqual(['kernel', 'applied a', 'settled a']);
    backend.failChanges = 'nft: no';
    let refused = false;
    await expect(fw.add(grant('b', '10.0.0.2', ['22/tcp'], 60), () => (refused = true))).rejects.toThrow(
      'nft: no',
    );
    expect(refused).toBe(false);
  });

  it('a refused batch is retried one operation at a time', async () => {
    const { fw, backend, grant } = setup();
    await fw.install();
    await fw.add(grant('a', '10.0.0.1', ['22/tcp'], 60));
    const real = backend.applyChanges.bind(backend);
    backend.applyChanges = async (c, changes) => {
      // The kernel refuses any change that involves 10.0.0.66.
      if (changes.some((x) => x.key.address === '10.0.0.66')) throw new FirewallApplyError('refused');
      return real(c, changes);
    };
    const results = await Promise.allSettled([
      fw.add(grant('b', '10.0.0.2', ['22/tcp'], 60)),
      fw.add(grant('c', '10.0.0.66', ['22/tcp'], 60)),
      fw.add(grant('d', '10.0.0.4', ['22/tcp'], 60)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(
      fw
        .grants()
        .map((g) => g.name)
        .sort(),
    ).toEqual(['a', 'b', 'd']);
  });
});

describe('Firewall preflight', () => {
  it('says which tool is missing, for every backend, and applies nothing', async () => {
    const expected = {
      nftables: /nftables backend: the nft program is not installed/,
      ipset: /ipset backend: the ipset program is not installed/,
      iptables: /iptables backend: iptables is not usable .*not installed/,
    };
    for (const backend of ['nftables', 'ipset', 'iptables'] as const) {
      const fw = createFirewall({
        backend,
        config: config(),
        logger: pino({ level: 'silent' }),
        clock: new FakeClock(),
        // No program can be found: the tools are "not installed".
        commandPrefix: ['env', 'PATH=/nonexistent'],
      });
      const err = await fw.install().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FirewallUnavailableError);
      expect((err as Error).message).toMatch(expected[backend]);
      await fw.close();
    }
  });

  it('waits for /run/xtables.lock and never flushes foreign rules (iptables-restore -w --noflush)', async () => {
    const clock = new FakeClock();
    const commands = new RecordingCommands([], pino({ level: 'silent' }), clock);
    commands.answer = { code: 0, stdout: '', stderr: '' };
    await new Xtables(commands, 'legacy').restore('ip6tables', '*mangle\nCOMMIT\n');
    expect(commands.runs).toEqual(['ip6tables-legacy-restore -w 10 --noflush']);
  });
});

describe('Firewall conntrack, cleanup, close', () => {
  it('flushes every closed port at revoke and only UDP ones at expiry; nothing without conntrackFlush', async () => {
    const { fw, commands, grant } = setup({ conntrackFlush: true });
    await fw.install();
    await fw.add(grant('a', '10.0.0.1', ['22/tcp', '53/udp'], 60));
    await fw.remove({ name: 'a' }, 'revoked');
    expect(commands.runs).toEqual([
      'conntrack -D -f ipv4 -s 10.0.0.1 -p tcp --dport 22',
      'conntrack -D -f ipv4 -s 10.0.0.1 -p udp --dport 53',
    ]);
    commands.runs.length = 0;
    await fw.add(grant('b', 'fd00::9', ['22/tcp', '53/udp'], 60));
    await fw.remove({ name: 'b' }, 'expired');
    expect(commands.runs).toEqual(['conntrack -D -f ipv6 -s fd00::9 -p udp --dport 53']);
    // A port still granted by another grant keeps its flows.
    commands.runs.length = 0;
    await fw.add(grant('c', '10.0.0.1', ['53/udp'], 60));
    await fw.add(grant('d', '10.0.0.1', ['53/udp'], 90));
    await fw.remove({ name: 'c' }, 'revoked');
    expect(commands.runs).toEqual([]);
    // A real conntrack failure is logged, not thrown: the grant is closed either way.
    commands.answer = { code: 1, stdout: '', stderr: 'conntrack: Operation failed: invalid parameters' };
    await fw.remove({ name: 'd' }, 'revoked');
    expect(fw.grants()).toEqual([]);
  });

  it('cleanup asks every backend to remove its own objects and reports the ones that failed', async () => {
    const { fw, backend, other, grant } = setup();
    await fw.install();
    await fw.add(grant('a', '10.0.0.1', ['22/tcp'], 60));
    await fw.cleanup();
    expect([backend.removed, other.removed]).toEqual([1, 1]);
    expect(fw.grants()).toEqual([]);
    other.failRemove = 'chain busy';
    await expect(fw.cleanup()).rejects.toThrow(/cleanup incomplete: nftables: chain busy/);
    expect(backend.removed).toBe(2);
    await fw.close();
    expect(backend.calls.at(-1)).toBe('close');
    await expect(fw.add(grant('a', '10.0.0.1', ['22/tcp'], 60))).rejects.toThrow(/closed/);
  });
});
