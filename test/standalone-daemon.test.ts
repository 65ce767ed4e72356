// The standalone daemon's logic on a fake clock, with an in-memory firewall and a fake capture that
// hands decisions straight to the daemon (the real capture, firewall and clients are exercised in
// standalone-e2e tests).

import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../api/clock.js';
import { loadConfig } from '../api/config/load.js';
import { createLogger } from '../api/log.js';
import { LocalReplayStore } from '../controller/local/replay-store.js';
import { StandaloneDaemon, StartError } from '../controller/standalone/daemon.js';
import { sendControlRequest } from '../controller/standalone/control-socket.js';
import type { Sniffer, SnifferOptions } from '../sniffer/capture/sniffer.js';
import type { AccessDecision } from '../sniffer/decision.js';
import { FakeFirewall } from './helpers/fake-firewall.js';

const API = 'knockgate.io/v1alpha1';

/** A policy with no start command (appended after the StandaloneConfig document). */
const PLAIN_POLICY = `
---
apiVersion: ${API}
kind: KnockPolicy
metadata: {name: plain}
spec:
  knock: {sequence: ["7500/tcp", "7600/tcp"]}
  grant: {ports: ["2222/tcp"], durationSeconds: 30}
`;

function configYaml(dir: string, extra = ''): string {
  const hookLog = join(dir, 'hooks.log');
  return `apiVersion: ${API}
kind: KnockPolicy
metadata: {name: ssh}
spec:
  knock: {sequence: ["7000/tcp", "8000/tcp", "9000/tcp"], sequenceTimeoutSeconds: 10}
  grant: {ports: ["22/tcp"], durationSeconds: 30}
---
apiVersion: ${API}
kind: KnockPolicy
metadata: {name: web}
spec:
  knock: {sequence: ["7100/udp", "7200/udp"]}
  grant: {ports: ["443/tcp"], durationSeconds: 60}
---
apiVersion: ${API}
kind: KnockPolicy
metadata: {name: cmd-only}
spec:
  knock: {sequence: ["7300/tcp", "7400/tcp"]}
  grant: {ports: ["22/tcp"], durationSeconds: 30, targets: {node: {mode: None}}}
---
apiVersion: ${API}
kind: StandaloneConfig
neverGrant: ["10.99.0.0/16"]
hooks:
  ssh: {start: "echo start %IP% >> ${hookLog}", stop: "echo stop %IP% >> ${hookLog}"}
  web: {start: "exit 3"}
  cmd-only: {start: "echo cmd-only %IP% >> ${hookLog}"}
${extra}`;
}

class FakeSniffer implements Sniffer {
  opts: SnifferOptions | undefined;
  refreshed = 0;
  closed = false;
  interfaces = () => ['fake0'];
  filters = () => ({});
  refresh = () => void this.refreshed++;
  drops = () => [];
  close = () => void (this.closed = true);
}

function decision(source: string, policy = 'ssh', extra: Partial<AccessDecision> = {}): AccessDecision {
  return {
    kind: 'grant',
    policy,
    method: 'knock',
    source,
    ports: policy === 'ssh' ? ['22/tcp'] : ['443/tcp'],
    durationSeconds: policy === 'ssh' ? 30 : 60,
    ...extra,
  };
}

/** Wait for async work triggered on the fake clock (file writes, hooks) to finish. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('StandaloneDaemon', () => {
  let dir: string;
  let clock: FakeClock;
  let firewall: FakeFirewall;
  let sniffer: FakeSniffer;
  let daemons: StandaloneDaemon[];
  const logger = createLogger({ level: 'silent', destination: process.stderr });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kg-daemon-'));
    writeFileSync(join(dir, 'config.yaml'), configYaml(dir));
    clock = new FakeClock(Date.UTC(2026, 10, 25, 12));
    firewall = new FakeFirewall(3);
    sniffer = new FakeSniffer();
    daemons = [];
  });

  afterEach(async () => {
    for (const d of daemons) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function daemon(log = logger): StandaloneDaemon {
    const d = new StandaloneDaemon({
      config: loadConfig(join(dir, 'config.yaml')),
      stateDir: join(dir, 'state'),
      firewall,
      startSniffer: (opts) => ((sniffer.opts = opts), sniffer),
      clock,
      logger: log,
      node: 'host-a',
    });
    daemons.push(d);
    return d;
  }

  /** A started daemon whose log lines (from after the start) are collected in `lines`. */
  async function loggingDaemon(): Promise<{ d: StandaloneDaemon; lines: string[] }> {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    const d = daemon(createLogger({ level: 'info', destination: sink }));
    await d.start();
    lines.length = 0;
    return { d, lines };
  }

  const hookLines = () =>
    existsSync(join(dir, 'hooks.log')) ? readFileSync(join(dir, 'hooks.log'), 'utf8').trim().split('\n') : [];

  it('installs and reconciles the firewall before it captures', async () => {
    const d = daemon();
    await d.start();
    expect(firewall.log.slice(0, 2)).toEqual(['install 22/tcp,443/tcp', 'sync ']);
    expect(firewall.config?.knockPorts.map((p) => `${p.port}/${p.proto}`).sort()).toEqual([
      '7000/tcp',
      '7100/udp',
      '7200/udp',
      '7300/tcp',
      '7400/tcp',
      '8000/tcp',
      '9000/tcp',
    ]);
    expect(sniffer.opts).toBeDefined();
  });

  it('opens a grant, runs the start command, extends on a repeat, closes on time with the stop command', async () => {
    const d = daemon();
    await d.start();
    await d.decide(decision('10.1.0.2/32'));
    const [grant] = await d.grantStore.list();
    expect(grant!.status?.phase).toBe('Active');
    expect(grant!.spec.source).toBe('10.1.0.2/32');
    expect(firewall.entries.get(grant!.metadata.name)?.expiresAt).toBe(clock.now() + 30_000);
    expect(hookLines()).toEqual(['start 10.1.0.2']);

    clock.advance(20_000);
    await d.decide(decision('10.1.0.2/32'));
    expect(await d.grantStore.list()).toHaveLength(1);
    expect(firewall.entries.get(grant!.metadata.name)?.expiresAt).toBe(clock.now() + 30_000);
    expect(hookLines()).toEqual(['start 10.1.0.2']); // an extension runs no second start command

    clock.advance(29_000);
    expect(firewall.entries.has(grant!.metadata.name)).toBe(true);
    clock.advance(2_000);
    await until(() => !firewall.entries.has(grant!.metadata.name), 'expiry');
    await until(() => hookLines().length === 2, 'stop command');
    expect(hookLines()).toEqual(['start 10.1.0.2', 'stop 10.1.0.2']);
    await until(
      async () => (await d.grantStore.get(grant!.metadata.name))?.status?.phase === 'Expired',
      'Expired',
    );
  });

  it('a policy targeting no node runs its command and opens nothing here', async () => {
    const d = daemon();
    await d.start();
    await d.decide({ ...decision('10.1.0.12/32'), policy: 'cmd-only' });
    expect((await d.grantStore.list())[0]?.status?.phase).toBe('Active');
    expect(hookLines()).toEqual(['cmd-only 10.1.0.12']);
    expect(firewall.entries.size).toBe(0);
    await d.resync();
    expect(firewall.entries.size).toBe(0);
  });

  it('refuses never-granted sources: neverGrant, loopback, this host', async () => {
    const d = daemon();
    await d.start();
    await d.decide(decision('10.99.3.4/32'));
    await d.decide(decision('127.0.0.1/32'));
    expect(await d.grantStore.list()).toEqual([]);
    expect(firewall.entries.size).toBe(0);
  });

  it('refuses a replayed SPA packet, also after a restart', async () => {
    const claim = { digest: 'ab'.repeat(32), expiresAt: new Date(clock.now() + 180_000) };
    const spa = decision('10.1.0.9/32', 'ssh', { method: 'spa', claim });
    let d = daemon();
    await d.start();
    await d.decide(spa);
    expect(firewall.entries.size).toBe(1);
    await d.revoke('10.1.0.9');
    expect(firewall.entries.size).toBe(0);
    await d.decide(spa);
    expect(firewall.entries.size).toBe(0);
    await d.stop();

    d = daemon();
    await d.start();
    await d.decide(spa);
    expect(firewall.entries.size).toBe(0);
  });

  it('refuses grants beyond the firewall cap, with a counter, and extends existing ones', async () => {
    const d = daemon();
    await d.start();
    for (const i of [1, 2, 3, 4]) await d.decide(decision(`10.1.0.${i}/32`));
    expect(firewall.entries.size).toBe(3);
    expect((await d.grantStore.list()).map((g) => g.spec.source)).not.toContain('10.1.0.4/32');
    await d.decide(decision('10.1.0.1/32'));
    expect(firewall.entries.size).toBe(3);
  });

  it('records a grant whose start command fails as Failed and leaves nothing open', async () => {
    const d = daemon();
    await d.start();
    await d.decide(decision('10.1.0.5/32', 'web'));
    const [grant] = await d.grantStore.list();
    expect(grant!.status?.phase).toBe('Failed');
    expect(grant!.status?.message).toMatch(/start command failed: exit status 3/);
    expect(firewall.entries.size).toBe(0);
  });

  it('records a grant the firewall refuses as Failed', async () => {
    const d = daemon();
    await d.start();
    firewall.failNextAdd = 'nft: Error: Could not process rule';
    await d.decide(decision('10.1.0.6/32'));
    const [grant] = await d.grantStore.list();
    expect(grant!.status?.phase).toBe('Failed');
    expect(firewall.entries.size).toBe(0);
    expect(hookLines()).toEqual([]);
  });

  it('revokes through the control socket at once', async () => {
    const d = daemon();
    await d.start();
    await d.decide(decision('10.1.0.7/32'));
    await d.decide(decision('10.1.0.7/32', 'web')); // fails (start command) - not live, not revoked
    const reply = await sendControlRequest(join(dir, 'state'), {
      op: 'revoke',
      source: '10.1.0.7',
      policy: 'ssh',
    });
    expect(reply).toEqual({ ok: true, revoked: ['ssh-0a010007'] });
    expect(firewall.entries.size).toBe(0);
    expect((await d.grantStore.get('ssh-0a010007'))?.status?.phase).toBe('Revoked');
    await until(() => hookLines().includes('stop 10.1.0.7'), 'stop command');
    const bad = await sendControlRequest(join(dir, 'state'), { op: 'revoke', source: 'not-an-ip' });
    expect(bad.ok).toBe(false);
  });

  it('on restart: reapplies live grants, expires the overdue ones (stop command runs)', async () => {
    let d = daemon();
    await d.start();
    await d.decide(decision('10.1.0.8/32'));
    await d.decide(decision('10.1.0.10/32', 'ssh', { durationSeconds: 120 }));
    // A crash: the process is gone without stop(); simulate by stopping without touching the store.
    await d.stop();
    firewall.entries.clear();

    clock.advance(60_000);
    d = daemon();
    await d.start();
    expect([...firewall.entries.keys()]).toEqual(['ssh-0a01000a']);
    await until(async () => (await d.grantStore.get('ssh-0a010008'))?.status?.phase === 'Expired', 'Expired');
    await until(() => hookLines().includes('stop 10.1.0.8'), 'stop command of the overdue grant');
  });

  it('reload: a broken config is refused and the old one keeps running; a good one is applied', async () => {
    const d = daemon();
    await d.start();
    writeFileSync(
      join(dir, 'bad.yaml'),
      configYaml(dir).replace('"22/tcp"], durationSeconds: 30', '"22/tcp"], durationSeconds: 30, bogus: 1'),
    );
    expect(() => loadConfig(join(dir, 'bad.yaml'))).toThrow(/bad\.yaml:\d+: /);

    writeFileSync(join(dir, 'next.yaml'), configYaml(dir, 'protectedPorts: ["22/tcp", "2222/tcp"]\n'));
    await d.reload(loadConfig(join(dir, 'next.yaml')));
    expect(firewall.config?.protectedPorts.map((p) => p.port)).toEqual([22, 2222]);
    expect(sniffer.refreshed).toBe(1);

    writeFileSync(join(dir, 'other.yaml'), configYaml(dir, 'backend: iptables\n'));
    await expect(d.reload(loadConfig(join(dir, 'other.yaml')))).rejects.toThrow(StartError);
  });

  it('Audit mode: grants are recorded, commands are not run', async () => {
    writeFileSync(join(dir, 'config.yaml'), configYaml(dir, 'mode: Audit\n'));
    const d = daemon();
    await d.start();
    expect(firewall.config?.mode).toBe('Audit');
    await d.decide(decision('10.1.0.11/32'));
    expect((await d.grantStore.list())[0]?.status?.phase).toBe('Active');
    expect(hookLines()).toEqual([]);
  });

  it('records a new grant with no start command as Active in one write, after the firewall has it', async () => {
    writeFileSync(join(dir, 'config.yaml'), configYaml(dir, PLAIN_POLICY));
    const d = daemon();
    await d.start();
    const order: string[] = [];
    const add = firewall.add.bind(firewall);
    firewall.add = async (g) => (await add(g), void order.push('firewall'));
    const extend = d.grantStore.extend.bind(d.grantStore);
    const writes = vi.spyOn(d.grantStore, 'extend').mockImplementation(async (g, status) => {
      order.push(`write ${status?.phase ?? 'no status'}`);
      return extend(g, status);
    });
    const statusWrites = vi.spyOn(d.grantStore, 'updateStatus');
    await d.decide(decision('10.1.0.20/32', 'plain'));
    expect(order).toEqual(['firewall', 'write Active']);
    expect(writes).toHaveBeenCalledTimes(1);
    expect(statusWrites).not.toHaveBeenCalled();
    const [grant] = await d.grantStore.list();
    expect(grant!.status?.phase).toBe('Active');
    expect(firewall.entries.has(grant!.metadata.name)).toBe(true);
  });

  it('closes a grant the store could not record, and reports it in one line', async () => {
    writeFileSync(join(dir, 'config.yaml'), configYaml(dir, PLAIN_POLICY));
    const { d, lines } = await loggingDaemon();
    let openWhenWritten = false;
    vi.spyOn(d.grantStore, 'extend').mockImplementationOnce(async (g) => {
      openWhenWritten = firewall.entries.has(g.metadata.name);
      throw new Error('ENOSPC: no space left on device');
    });
    await d.decide(decision('10.1.0.21/32', 'plain'));
    expect(openWhenWritten).toBe(true); // the write came after the open
    expect(firewall.entries.size).toBe(0);
    expect(firewall.log.at(-1)).toMatch(/^remove .* revoked$/);
    expect(await d.grantStore.list()).toEqual([]);
    const errors = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => l.level >= 50);
    expect(errors.map((l) => l.msg)).toEqual([
      expect.stringMatching(/could not be recorded \(ENOSPC: no space left on device\); closed again$/),
    ]);
  });

  it('opens an SPA grant before its replay claim is on disk, and records it only after', async () => {
    writeFileSync(join(dir, 'config.yaml'), configYaml(dir, PLAIN_POLICY));
    const d = daemon();
    await d.start();
    let written!: () => void;
    const gate = new Promise<void>((resolve) => (written = resolve));
    const claimNow = LocalReplayStore.prototype.claimNow;
    vi.spyOn(LocalReplayStore.prototype, 'claimNow').mockImplementationOnce(function (
      this: LocalReplayStore,
      ...args
    ) {
      const real = claimNow.apply(this, args);
      return real.result === 'claimed' ? { result: 'claimed', durable: real.durable.then(() => gate) } : real;
    });
    const claim = { digest: 'cd'.repeat(32), expiresAt: new Date(clock.now() + 180_000) };
    const spa = decision('10.1.0.30/32', 'plain', { method: 'spa', claim });
    const opening = d.decide(spa);
    await until(() => firewall.entries.size === 1, 'the kernel change');
    // A replay while the claim is still being written is refused from memory.
    await d.decide(spa);
    expect(firewall.log.filter((l) => l.startsWith('add '))).toHaveLength(1);
    expect(await d.grantStore.list()).toEqual([]);
    written();
    await opening;
    const [grant] = await d.grantStore.list();
    expect(grant!.status?.phase).toBe('Active');
    expect(firewall.entries.has(grant!.metadata.name)).toBe(true);
  });

  it("writes an SPA packet's replay claim only once the kernel has its grant", async () => {
    writeFileSync(join(dir, 'config.yaml'), configYaml(dir, PLAIN_POLICY));
    const d = daemon();
    await d.start();
    let kernelHadItAtGate: boolean | undefined;
    const claimNow = LocalReplayStore.prototype.claimNow;
    vi.spyOn(LocalReplayStore.prototype, 'claimNow').mockImplementationOnce(function (
      this: LocalReplayStore,
      ...args
    ) {
      const writeAfter = args[3];
      expect(writeAfter).toBeInstanceOf(Promise);
      void writeAfter!.then(() => (kernelHadItAtGate = firewall.entries.size === 1));
      return claimNow.apply(this, args);
    });
    const claim = { digest: 'ce'.repeat(32), expiresAt: new Date(clock.now() + 180_000) };
    await d.decide(decision('10.1.0.31/32', 'plain', { method: 'spa', claim }));
    expect(kernelHadItAtGate).toBe(true);
    const [grant] = await d.grantStore.list();
    expect(grant!.status?.phase).toBe('Active');
    // The claim is on disk: the same packet is a replay for a new daemon on this state dir.
    await d.stop();
    const again = daemon();
    await again.start();
    await again.decide(decision('10.1.0.31/32', 'plain', { method: 'spa', claim }));
    expect(firewall.log.filter((l) => l.startsWith('add '))).toHaveLength(1);
    await again.stop();
  });

  it('closes an SPA grant whose replay claim cannot be written, records nothing, one line', async () => {
    writeFileSync(join(dir, 'config.yaml'), configYaml(dir, PLAIN_POLICY));
    const { d, lines } = await loggingDaemon();
    const claimNow = LocalReplayStore.prototype.claimNow;
    let openWhenFailed = false;
    vi.spyOn(LocalReplayStore.prototype, 'claimNow').mockImplementationOnce(function (
      this: LocalReplayStore,
      ...args
    ) {
      const real = claimNow.apply(this, args);
      if (real.result !== 'claimed') return real;
      const durable = real.durable.then(() => {
        openWhenFailed = firewall.entries.size === 1;
        throw new Error('replay log: cannot write: EIO: i/o error');
      });
      return { result: 'claimed', durable };
    });
    const claim = { digest: 'ef'.repeat(32), expiresAt: new Date(clock.now() + 180_000) };
    await d.decide(decision('10.1.0.31/32', 'plain', { method: 'spa', claim }));
    expect(openWhenFailed).toBe(true); // the kernel had it while the claim was being written
    expect(firewall.entries.size).toBe(0);
    expect(firewall.log.at(-1)).toMatch(/^remove .* revoked$/);
    expect(await d.grantStore.list()).toEqual([]);
    const refusals = lines.map((l) => JSON.parse(l) as { event?: string; reason?: string; msg: string });
    expect(refusals.filter((l) => l.event === 'refuse').map((l) => [l.reason, l.msg])).toEqual([
      ['replay-store', expect.stringMatching(/replay store unavailable: .*EIO.*; closed again$/)],
    ]);
  });

  it('a second daemon on the same state dir is refused; a failed start leaves nothing running', async () => {
    const d = daemon();
    await d.start();
    const twin = daemon();
    await expect(twin.start()).rejects.toThrow(/state/);
  });
});
