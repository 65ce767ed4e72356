// End-to-end harness for `knockgate standalone`: a three-namespace lab (srv, cli, third), the real
// daemon started inside srv from the built dist/ (as a user would run it), its JSON log lines
// collected, a TCP echo listener in srv, and a long-lived prober per client namespace whose
// connect() answers open/closed quickly and can hold a connection open across an expiry.
//
//   const lab = await Lab.create();
//   const d = await lab.startDaemon({ config: lab.write('knockd.conf', text) });
//   expect(await lab.connect('cli', 2222)).toBe('closed');
//   await lab.destroy();      // daemons, listeners, probers stopped by PID; namespaces deleted
//
// Processes are stopped by PID only; everything lives in namespaces the lab made.

import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CREDENTIAL } from '../emulators/ec2/server.js';
import { sh, Topology, waitFor, type Host } from './netns.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI: the end-to-end tests run what `npx tsc -p tsconfig.json` produced. */
export const KNOCKGATE = join(ROOT, 'dist/cmd/knockgate.js');
/** The EC2 emulator program (test/emulators/ec2), built with the rest. */
export const EC2_EMULATOR = join(ROOT, 'dist/test/emulators/ec2/main.js');

export type Backend = 'nftables' | 'ipset' | 'iptables';
export type Role = 'srv' | 'cli' | 'third';
export type Family = 4 | 6;

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `node dist/cmd/knockgate.js ARGS` (inside `host` when given); never throws on exit status. */
export async function knockgate(host: Host | undefined, args: string[], timeoutMs = 20_000) {
  return runCommand(host, 'node', [KNOCKGATE, ...args], timeoutMs);
}

/** Run a command to completion (inside `host` when given); the exit status is returned, not thrown. */
export async function runCommand(
  host: Host | undefined,
  cmd: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<CommandResult> {
  try {
    const { stdout, stderr } = host
      ? await host.run(cmd, args, { timeoutMs })
      : await sh(cmd, args, { timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? e.message,
    };
  }
}

/** Fail early, with the fix, when the CLI was not built. */
export function requireBuilt(): void {
  if (!existsSync(KNOCKGATE))
    throw new Error(`${KNOCKGATE} is missing: build first with npx tsc -p tsconfig.json`);
}

export interface SpaKeys {
  key: string;
  hmac: string;
}

/** Fresh base64 keys from `knockgate keygen` (the fwknop --key-gen format). */
export async function keygen(): Promise<SpaKeys> {
  const r = await knockgate(undefined, ['keygen']);
  const key = /^KEY_BASE64:\s*(\S+)$/m.exec(r.stdout)?.[1];
  const hmac = /^HMAC_KEY_BASE64:\s*(\S+)$/m.exec(r.stdout)?.[1];
  if (r.code !== 0 || !key || !hmac) throw new Error(`knockgate keygen failed: ${r.stderr}`);
  return { key, hmac };
}

export type LogLine = Record<string, unknown> & { msg?: string; event?: string };

/** One `knockgate standalone` process in a namespace, with its log. */
export class Daemon {
  readonly lines: LogLine[] = [];
  stderr = '';
  private exitInfo: { code: number | null; signal: string | null } | undefined;
  private readonly exited: Promise<{ code: number | null; signal: string | null }>;

  constructor(
    readonly child: ChildProcess,
    readonly args: string[],
  ) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.lines.push({ msg: line, unparsed: true });
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The log lines with this event, e.g. "open", "expire", "refuse", "started". */
  events(event: string): LogLine[] {
    return this.lines.filter((l) => l.event === event);
  }

  /**
   * Wait for a log line matching `pred` (among the lines from index `from` on); fails at once when
   * the daemon exits without having logged it.
   */
  async waitLog(pred: (l: LogLine) => boolean, what: string, timeoutMs = 20_000, from = 0): Promise<LogLine> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(from).find(pred);
      if (found) return found;
      if (!this.running)
        throw new Error(
          `daemon exited (${JSON.stringify(this.exitInfo)}) before logging ${what}: ${this.stderr.trim()}`,
        );
      if (Date.now() > end)
        throw new Error(`timed out after ${timeoutMs} ms waiting for daemon log: ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  waitEvent(event: string, what = event, timeoutMs = 20_000, from = 0): Promise<LogLine> {
    return this.waitLog((l) => l.event === event, what, timeoutMs, from);
  }

  /** Resolves with the exit status (never rejects); kills with SIGKILL after `timeoutMs`. */
  async exit(timeoutMs = 15_000): Promise<{ code: number | null; signal: string | null }> {
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      /* already gone */
    }
  }

  /** SIGTERM and wait: the clean stop. */
  async stop(): Promise<{ code: number | null; signal: string | null }> {
    this.signal('SIGTERM');
    return this.exit();
  }

  /** kill -9: the crash. */
  async kill9(): Promise<void> {
    this.signal('SIGKILL');
    await this.exit();
  }
}

/** Echo server on every given port, listening on :: (IPv4 and IPv6). Prints "ready". */
export const LISTENER = `
const net = require('net');
const ports = process.argv.slice(1).map(Number);
let left = ports.length;
for (const p of ports) {
  net.createServer((s) => { s.on('error', () => {}); s.pipe(s); })
    .listen({ port: p, host: '::', ipv6Only: false }, () => { if (--left === 0) console.log('ready'); });
}
`;

/** Prober: one JSON request per stdin line, one JSON answer per stdout line. */
export const PROBER = `
const net = require('net');
const held = new Map();
const reply = (id, result) => process.stdout.write(JSON.stringify({ id, result }) + '\\n');
require('readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const q = JSON.parse(line);
  if (q.op === 'connect') {
    const s = net.connect({ host: q.host, port: q.port });
    let done = false;
    const end = (r) => {
      if (done) return; done = true; clearTimeout(t);
      if (r === 'ok' && q.hold) { s.on('error', () => {}); held.set(q.hold, s); } else s.destroy();
      reply(q.id, r);
    };
    const t = setTimeout(() => end('timeout'), q.timeoutMs);
    s.on('connect', () => end('ok'));
    s.on('error', (e) => end(e.code === 'ECONNREFUSED' ? 'refused' : 'error:' + e.code));
  } else if (q.op === 'echo') {
    const s = held.get(q.hold);
    if (!s || s.destroyed) return reply(q.id, 'closed');
    const word = 'ping' + q.id;
    let buf = '';
    let done = false;
    const end = (r) => { if (done) return; done = true; clearTimeout(t); s.removeListener('data', onData); reply(q.id, r); };
    const onData = (d) => { buf += d; if (buf.includes(word)) end('ok'); };
    const t = setTimeout(() => end('timeout'), q.timeoutMs);
    s.on('data', onData);
    s.once('close', () => end('closed'));
    s.write(word);
  } else if (q.op === 'drop') {
    const s = held.get(q.hold);
    if (s) s.destroy();
    held.delete(q.hold);
    reply(q.id, 'ok');
  }
});
`;

export class Prober {
  private seq = 0;
  private readonly waiting = new Map<number, (r: string) => void>();

  constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const { id, result } = JSON.parse(line) as { id: number; result: string };
      this.waiting.get(id)?.(result);
      this.waiting.delete(id);
    });
  }

  ask(q: Record<string, unknown>): Promise<string> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`prober: no answer to ${JSON.stringify(q)}`)), 20_000);
      this.waiting.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.child.stdin!.write(`${JSON.stringify({ ...q, id })}\n`);
    });
  }
}

export type Reach = 'open' | 'closed';

/**
 * The EC2 emulator program in `host` on its loopback (a free port); resolves once its ready line
 * came, with its URL and admin token. `program`: the built main.js (a caller running from dist/
 * gives its own path: ROOT here is where this module was loaded from).
 */
export async function startEc2Emulator(
  host: Host,
  extraArgs: string[] = [],
  program = EC2_EMULATOR,
): Promise<{ url: string; adminToken: string }> {
  const child = host.spawn('node', [program, '--port', '0', ...extraArgs]);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`ec2 emulator did not start: ${stderr}`)), 15_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('ec2 emulator ready')) return;
      clearTimeout(t);
      resolve(line);
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`ec2 emulator exited ${code}: ${stderr}`));
    });
  });
  return { url: /ready on (\S+)/.exec(ready)![1]!, adminToken: /admin-token=(\S+)/.exec(ready)![1]! };
}

/** The environment that gives the daemon (and EC2_CLIENT) the emulator's credential. */
export const EC2_ENV: Record<string, string> = {
  AWS_ACCESS_KEY_ID: DEFAULT_CREDENTIAL.accessKeyId,
  AWS_SECRET_ACCESS_KEY: DEFAULT_CREDENTIAL.secretAccessKey,
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

/**
 * The real @aws-sdk/client-ec2 in srv, one JSON request per stdin line (the Prober protocol):
 * createGroup, ingress (a group's inbound rules as DescribeSecurityGroupRules reports them),
 * requests (the emulator's request log, from its admin endpoint).
 */
export const EC2_CLIENT = `
const ec2 = require('@aws-sdk/client-ec2');
const [url, token] = process.argv.slice(1);
const clients = new Map();
const client = (region) => {
  if (!clients.has(region)) clients.set(region, new ec2.EC2Client({ endpoint: url, region, maxAttempts: 1 }));
  return clients.get(region);
};
const reply = (id, result) => process.stdout.write(JSON.stringify({ id, result }) + '\\n');
require('readline').createInterface({ input: process.stdin }).on('line', async (line) => {
  const q = JSON.parse(line);
  try {
    if (q.op === 'createGroup') {
      const r = await client(q.region).send(new ec2.CreateSecurityGroupCommand({ GroupName: q.name, Description: 'bastion' }));
      reply(q.id, r.GroupId);
    } else if (q.op === 'ingress') {
      const r = await client(q.region).send(new ec2.DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [q.groupId] }] }));
      reply(q.id, (r.SecurityGroupRules || []).filter((x) => !x.IsEgress).map((x) => ({
        ruleId: x.SecurityGroupRuleId, cidr: x.CidrIpv4 || x.CidrIpv6, protocol: x.IpProtocol, port: x.FromPort,
        description: x.Description, tags: Object.fromEntries((x.Tags || []).map((t) => [t.Key, t.Value])),
      })));
    } else if (q.op === 'requests') {
      const r = await fetch(url + '/emulator/v1/requests', { headers: { authorization: 'Bearer ' + token } });
      reply(q.id, await r.json());
    }
  } catch (err) {
    reply(q.id, { error: String(err && err.name) + ': ' + String(err && err.message) });
  }
});
`;

export interface Ec2Rule {
  ruleId: string;
  cidr: string;
  protocol: string;
  port: number;
  description?: string;
  tags: Record<string, string>;
}

/** The EC2 emulator running in srv, seen through the real SDK (in srv too: its loopback is srv's). */
export class Ec2InSrv {
  constructor(
    readonly url: string,
    private readonly sdk: Prober,
  ) {}

  private async ask<T>(q: Record<string, unknown>): Promise<T> {
    const r = (await this.sdk.ask(q)) as unknown;
    if (r && typeof r === 'object' && 'error' in r)
      throw new Error(`EC2 ${String(q.op)}: ${String(r.error)}`);
    return r as T;
  }

  createGroup(name: string, region = 'eu-west-1'): Promise<string> {
    return this.ask({ op: 'createGroup', name, region });
  }

  ingress(groupId: string, region = 'eu-west-1'): Promise<Ec2Rule[]> {
    return this.ask({ op: 'ingress', groupId, region });
  }

  /** The emulator's request log: one entry per request (action, region, status, error code). */
  requests(): Promise<{ action: string; region?: string; status: number; code?: string }[]> {
    return this.ask({ op: 'requests' });
  }
}

export interface DaemonOptions {
  /** The config file (written with lab.write). */
  config: string;
  fwknopdConf?: string;
  backend?: Backend;
  /** Default: the lab's own state dir (kept across restarts). */
  stateDir?: string;
  /** Default: srv's interface facing cli. */
  interfaces?: string[];
  extraArgs?: string[];
  /** Wait for "started" (default true). */
  waitStarted?: boolean;
  /** Extra environment (e.g. AWS credentials). */
  env?: Record<string, string>;
}

/** Three namespaces: srv (the knockgate host), cli (knocks), third (never knocks). */
export class Lab {
  readonly dir: string;
  readonly stateDir: string;
  private readonly probers = new Map<Role, Prober>();
  private readonly daemons: Daemon[] = [];

  private constructor(readonly net: Topology) {
    this.dir = mkdtempSync(join(tmpdir(), 'kg-e2e-'));
    this.stateDir = join(this.dir, 'state');
  }

  static async create(): Promise<Lab> {
    requireBuilt();
    const net = await Topology.create(['srv', 'cli', 'third']);
    return new Lab(net);
  }

  host(role: Role): Host {
    return this.net.ns(role);
  }

  get srv(): Host {
    return this.host('srv');
  }

  /** srv's address as `from` reaches it (cli and third sit on different veth pairs). */
  serverAddr(from: Exclude<Role, 'srv'>, family: Family = 4): string {
    return family === 4 ? this.srv.addr4[from]! : this.srv.addr6[from]!;
  }

  /** The address of `role` as srv sees it. */
  addr(role: Exclude<Role, 'srv'>, family: Family = 4): string {
    const h = this.host(role);
    return family === 4 ? h.addr4.srv! : h.addr6.srv!;
  }

  /** srv's interface facing `role`. */
  srvIf(role: Exclude<Role, 'srv'> = 'cli'): string {
    return this.srv.ifname[role]!;
  }

  /** Write a file in the lab's directory; returns its path. */
  write(name: string, text: string, mode = 0o600): string {
    const path = join(this.dir, name);
    writeFileSync(path, text, { mode });
    return path;
  }

  /** Start `knockgate standalone` in srv; by default wait for its "started" line. */
  async startDaemon(opts: DaemonOptions): Promise<Daemon> {
    const args = [
      KNOCKGATE,
      'standalone',
      '--config',
      opts.config,
      ...(opts.fwknopdConf ? ['--fwknopd-conf', opts.fwknopdConf] : []),
      '--state-dir',
      opts.stateDir ?? this.stateDir,
      ...(opts.interfaces ?? [this.srvIf('cli')]).flatMap((i) => ['--interface', i]),
      '--backend',
      opts.backend ?? 'nftables',
      '--log-level',
      'debug',
      ...(opts.extraArgs ?? []),
    ];
    const spawnOpts = opts.env ? { env: { ...process.env, ...opts.env } } : {};
    const daemon = new Daemon(this.srv.spawn('node', args, spawnOpts), args);
    this.daemons.push(daemon);
    if (opts.waitStarted !== false) await daemon.waitEvent('started', '"started"', 30_000);
    return daemon;
  }

  /** The EC2 emulator on srv's loopback, and the real SDK talking to it from srv. */
  async startEc2(extraArgs: string[] = []): Promise<Ec2InSrv> {
    const { url, adminToken: token } = await startEc2Emulator(this.srv, extraArgs);
    const client = this.srv.spawn('node', ['-e', EC2_CLIENT, url, token], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...EC2_ENV },
    });
    return new Ec2InSrv(url, new Prober(client));
  }

  /** Echo listener on `ports` in srv (IPv4 and IPv6). */
  async listen(ports: number[], role: Role = 'srv'): Promise<ChildProcess> {
    const child = this.host(role).spawn('node', ['-e', LISTENER, ...ports.map(String)]);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('listener did not start')), 15_000);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`listener exited ${code}`));
      });
    });
    return child;
  }

  private prober(role: Role): Prober {
    let p = this.probers.get(role);
    if (!p) {
      p = new Prober(this.host(role).spawn('node', ['-e', PROBER], { stdio: ['pipe', 'pipe', 'pipe'] }));
      this.probers.set(role, p);
    }
    return p;
  }

  /**
   * One TCP connect from `role` to srv: 'open' when it completes, 'closed' when it is dropped
   * (no answer within timeoutMs) or refused. With `hold`, an open connection is kept for echo().
   */
  async connect(
    role: Exclude<Role, 'srv'>,
    port: number,
    opts: { family?: Family; timeoutMs?: number; hold?: string; to?: string } = {},
  ): Promise<Reach> {
    const host = opts.to ?? this.serverAddr(role, opts.family ?? 4);
    const r = await this.prober(role).ask({
      op: 'connect',
      host,
      port,
      timeoutMs: opts.timeoutMs ?? 1000,
      ...(opts.hold ? { hold: opts.hold } : {}),
    });
    return r === 'ok' ? 'open' : 'closed';
  }

  /** Wait until a connect gives `want` (generous deadline: expiry and sweeps take their time). */
  async waitReach(
    role: Exclude<Role, 'srv'>,
    port: number,
    want: Reach,
    opts: { family?: Family; timeoutMs?: number; hold?: string } = {},
  ): Promise<void> {
    await waitFor(async () => (await this.connect(role, port, opts)) === want, {
      timeoutMs: opts.timeoutMs ?? 20_000,
      intervalMs: 200,
      what: `${role} → srv:${port} (IPv${opts.family ?? 4}) ${want}`,
    });
  }

  /** Whether a held connection still carries data both ways: 'ok', 'closed' or 'timeout'. */
  echo(role: Exclude<Role, 'srv'>, hold: string, timeoutMs = 3000): Promise<string> {
    return this.prober(role).ask({ op: 'echo', hold, timeoutMs });
  }

  drop(role: Exclude<Role, 'srv'>, hold: string): Promise<string> {
    return this.prober(role).ask({ op: 'drop', hold });
  }

  /** `nft list ruleset` in srv. */
  async ruleset(): Promise<string> {
    const r = await runCommand(this.srv, 'nft', ['list', 'ruleset']);
    if (r.code !== 0) throw new Error(`nft list ruleset: ${r.stderr}`);
    return r.stdout;
  }

  /** srv's firewall as the backend's own tools list it (rules of both families, sets with members). */
  async firewallState(backend: Backend): Promise<string> {
    if (backend === 'nftables') return this.ruleset();
    const out = await Promise.all(
      ['iptables-save', 'ip6tables-save', ...(backend === 'ipset' ? ['ipset list'] : [])].map(async (c) => {
        const [cmd, ...args] = c.split(' ');
        const r = await runCommand(this.srv, cmd!, args);
        if (r.code !== 0) throw new Error(`${c}: ${r.stderr}`);
        return r.stdout;
      }),
    );
    return out.join('\n');
  }

  /** srv's ruleset and connection tracking table, for failure messages. */
  async diagnose(): Promise<string> {
    const ct = await runCommand(this.srv, 'conntrack', ['-L']);
    return `--- nft list ruleset\n${await this.ruleset()}\n--- conntrack -L\n${ct.stdout}${ct.stderr}`;
  }

  /** `knockgate grants --state-dir` (run outside the namespace: it reads files only). */
  async grants(stateDir = this.stateDir, extra: string[] = []): Promise<string> {
    const r = await knockgate(undefined, ['grants', '--state-dir', stateDir, ...extra]);
    if (r.code !== 0) throw new Error(`knockgate grants: ${r.stderr}`);
    return r.stdout;
  }

  /** The real knockd client (`knock`), from `role`. */
  async knock(role: Exclude<Role, 'srv'>, ports: string[], family: Family = 4): Promise<void> {
    const args = [...(family === 6 ? ['-6'] : []), this.serverAddr(role, family), ...ports];
    const r = await runCommand(this.host(role), 'knock', args);
    if (r.code !== 0) throw new Error(`knock ${args.join(' ')}: ${r.stderr}`);
  }

  /** The real fwknop client (IPv4 only; never -R; no rc file, no saved args). */
  async fwknop(role: Exclude<Role, 'srv'>, keys: SpaKeys, access: string, port: number): Promise<void> {
    const args = [
      '--no-rc-file',
      '--no-save-args',
      '-A',
      access,
      '-a',
      this.addr(role, 4),
      '-D',
      this.serverAddr(role, 4),
      '-p',
      String(port),
      '--key-base64-rijndael',
      keys.key,
      '--key-base64-hmac',
      keys.hmac,
    ];
    // HOME in the lab dir: fwknop touches nothing of the user's.
    const r = await runCommand(this.host(role), 'env', [`HOME=${this.dir}`, 'fwknop', ...args]);
    if (r.code !== 0) throw new Error(`fwknop: ${r.stderr}${r.stdout}`);
  }

  /** `knockgate spa` from `role` (IPv4 or IPv6); extra flags such as -B FILE. */
  async spa(
    role: Exclude<Role, 'srv'>,
    keys: SpaKeys,
    access: string,
    port: number,
    family: Family = 4,
    extra: string[] = [],
  ): Promise<void> {
    const args = [
      'spa',
      '-A',
      access,
      '-a',
      this.addr(role, family),
      '-D',
      this.serverAddr(role, family),
      '-p',
      String(port),
      '--key-base64-rijndael',
      keys.key,
      '--key-base64-hmac',
      keys.hmac,
      ...extra,
    ];
    const r = await knockgate(this.host(role), args);
    if (r.code !== 0) throw new Error(`knockgate spa: ${r.stderr}`);
  }

  /** Stop every daemon (SIGTERM, then SIGKILL), the probers and listeners; delete the namespaces. */
  async destroy(): Promise<void> {
    await Promise.all(this.daemons.map((d) => d.stop()));
    await this.net.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// --- the grant lifecycle every backend and config format must show ------------------------------

export interface LifecycleOptions {
  /** The protected port (a listener must be on it in srv). */
  port: number;
  families: Family[];
  /** Make cli's client open the door for its own address in `family`. */
  open: (family: Family) => Promise<void>;
  /** Called once the door is open, before the expiry (e.g. to check `knockgate grants`). */
  whileOpen?: (family: Family) => Promise<void>;
}

/**
 * Before: closed for cli and third. The client opens the door: open for cli only, third still
 * closed; a connection is held open. After the grant's "expire" line: new connections from cli
 * fail, the held one still echoes. Families run side by side (they are separate grants).
 */
export async function grantLifecycle(lab: Lab, daemon: Daemon, o: LifecycleOptions): Promise<void> {
  await Promise.all(
    o.families.map(async (family) => {
      const hold = `held-${o.port}-${family}`;
      const source = lab.addr('cli', family);
      if ((await lab.connect('cli', o.port, { family })) !== 'closed')
        throw new Error(
          `IPv${family}: port ${o.port} is open for cli before the door was opened\n${await lab.diagnose()}`,
        );
      const mark = daemon.lines.length;
      await o.open(family);
      const opened = await daemon.waitLog(
        (l) => l.event === 'open' && String(l.source).startsWith(`${source}/`),
        `open for ${source}`,
        20_000,
        mark,
      );
      await lab.waitReach('cli', o.port, 'open', { family, hold });
      await o.whileOpen?.(family);
      if ((await lab.connect('third', o.port, { family })) !== 'closed')
        throw new Error(`IPv${family}: third reaches port ${o.port} during cli's grant`);
      await daemon.waitLog(
        (l) => l.event === 'expire' && l.grant === opened.grant,
        `expire of ${String(opened.grant)}`,
        30_000,
        mark,
      );
      await lab.waitReach('cli', o.port, 'closed', { family });
      const echo = await lab.echo('cli', hold);
      if (echo !== 'ok') throw new Error(`IPv${family}: the connection held across the expiry: ${echo}`);
      await lab.drop('cli', hold);
      if ((await lab.connect('third', o.port, { family })) !== 'closed')
        throw new Error(`IPv${family}: third reaches port ${o.port} after the expiry`);
    }),
  );
}

/** The knockgate table's elements for `address` in srv's ruleset ("" when none). */
export function nftGrantLines(ruleset: string, address: string): string[] {
  return ruleset.split('\n').filter((l) => l.includes(address));
}

/**
 * A knockgate YAML file: door-knock (7101/udp, 7102/tcp) and door-spa (SPA on `spaPort`) both open
 * `port` for `grantSeconds`; `settings` lines make a StandaloneConfig document.
 */
export function yamlConfig(
  keys: SpaKeys,
  spaPort: number,
  port: number,
  settings: string[] = [],
  grantSeconds = 5,
): string {
  return [
    'apiVersion: knockgate.io/v1alpha1',
    'kind: KnockPolicy',
    'metadata: {name: door-knock}',
    'spec:',
    '  knock: {sequence: ["7101/udp", "7102/tcp"], sequenceTimeoutSeconds: 10}',
    `  grant: {ports: ["${port}/tcp"], durationSeconds: ${grantSeconds}}`,
    '---',
    'apiVersion: knockgate.io/v1alpha1',
    'kind: KnockPolicy',
    'metadata: {name: door-spa}',
    'spec:',
    `  spa: {keySecretRef: {name: door-keys}, port: "${spaPort}/udp", requireSourceAddress: true}`,
    `  grant: {ports: ["${port}/tcp"], durationSeconds: ${grantSeconds}}`,
    '---',
    'apiVersion: v1',
    'kind: Secret',
    'metadata: {name: door-keys}',
    'stringData:',
    `  KEY_BASE64: ${keys.key}`,
    `  HMAC_KEY_BASE64: ${keys.hmac}`,
    ...(settings.length > 0
      ? [
          '---',
          'apiVersion: knockgate.io/v1alpha1',
          'kind: StandaloneConfig',
          'metadata: {name: host}',
          ...settings,
        ]
      : []),
    '',
  ].join('\n');
}
