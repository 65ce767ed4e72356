// A two-node Kubernetes cluster made of processes, as a user would run it (test infrastructure):
//
//   lan   a bridge joining every other namespace (10.T.0.0/24 and fd00:T::/64, no default route)
//   api   the Kubernetes API emulator (dist/test/emulators/kube-apiserver/main.js) on 10.T.0.1,
//         `knockgate controller`, and the real kubectl (admin)
//   node-a, node-b   each a `knockgate sniffer` and a `knockgate agent` (nftables), and a TCP
//         listener on the protected ports
//   client   the real `knock` and `fwknop` clients, and a connect prober
//   stranger never knocks: a prober only
//   (option) the EC2 emulator, in the test process, reached from the api namespace on loopback
//            through a bridge (startEc2, exposeToApi)
//
// Every component holds its own kubeconfig with its own token, and the emulator grants each one
// the RBAC the chart renders for its ServiceAccount (helm template, chart-render.ts); each node's
// sniffer and agent token names its node, and the chart's sniffer admission policy is installed.
// Processes are stopped by PID, the namespaces deleted, in destroy().
//
//   const c = await Cluster.create();
//   await c.startApi(); await c.kubectl(['apply', '-f', 'crds/']);
//   await c.startNode('node-a', agentConfig); await c.startController(controllerConfig);
//   expect(await c.connect('client', 'node-a', 2222)).toBe('closed');
//   await c.destroy();

import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  connect as netConnect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { AccessGrant } from '../../api/types.js';
import { NODE_NAME_EXTRA } from '../../controller/sniffer/admission-policy.js';
import type { RbacUser } from '../emulators/kube-apiserver/rbac.js';
import { Ec2Emulator, type Ec2EmulatorOptions } from '../emulators/ec2/server.js';
import { RELEASE, renderChart, renderedRules, serviceAccountUser } from './chart-render.js';
import { Host, sh, waitFor } from './netns.js';
import {
  Daemon,
  KNOCKGATE,
  LISTENER,
  PROBER,
  Prober,
  requireBuilt,
  ROOT,
  runCommand,
  type CommandResult,
  type Family,
  type Reach,
  type SpaKeys,
} from './standalone-harness.js';

export const EMULATOR = join(ROOT, 'dist/test/emulators/kube-apiserver/main.js');
/** The release namespace: key Secrets, the Lease, Events. */
export const RELEASE_NS = 'knockgate';

export type NodeName = 'node-a' | 'node-b';
export type Role = 'api' | NodeName | 'client' | 'stranger';
const ROLES: Role[] = ['api', 'node-a', 'node-b', 'client', 'stranger'];
const HOST_PART: Record<Role, number> = { api: 1, 'node-a': 11, 'node-b': 12, client: 21, stranger: 22 };

/**
 * The components hold exactly the RBAC the chart renders (helm template of charts/knockgate with its
 * default values, chart-render.ts): one user per ServiceAccount, and, as a bound token of a
 * DaemonSet's pod does, each node's sniffer and agent token names its node (userInfo.extra), which
 * the chart's ValidatingAdmissionPolicy (installed too) checks for the sniffer's grants. `uninstall`
 * is the chart's pre-delete hook Job (knockgate uninstall).
 */
const SERVICE_ACCOUNT: Record<Exclude<Component, 'admin'>, string> = {
  'sniffer-node-a': 'sniffer',
  'sniffer-node-b': 'sniffer',
  'agent-node-a': 'agent',
  'agent-node-b': 'agent',
  controller: 'controller',
  uninstall: 'uninstall',
};
const NODE_OF: Partial<Record<Component, NodeName>> = {
  'sniffer-node-a': 'node-a',
  'sniffer-node-b': 'node-b',
  'agent-node-a': 'node-a',
  'agent-node-b': 'node-b',
};

const COMPONENTS = [
  'admin',
  'sniffer-node-a',
  'sniffer-node-b',
  'agent-node-a',
  'agent-node-b',
  'controller',
  'uninstall',
] as const;
type Component = (typeof COMPONENTS)[number];

let counter = 0;

export class Cluster {
  readonly dir: string;
  readonly hosts = new Map<Role, Host>();
  readonly daemons: Daemon[] = [];
  /** Per node: its sniffer and agent. */
  readonly sniffers = new Map<NodeName, Daemon>();
  readonly agents = new Map<NodeName, Daemon>();
  controller: Daemon | undefined;
  api: Daemon | undefined;
  /** The EC2 emulator, when startEc2 was called (in this process). */
  ec2: Ec2Emulator | undefined;
  private readonly bridges: NetServer[] = [];
  private readonly probers = new Map<Role, Prober>();
  private readonly tokens: Record<string, string>;
  private readonly lanNs: string;
  private readonly net: string;
  private readonly net6: string;

  private constructor(readonly tag: string) {
    this.dir = mkdtempSync(join(tmpdir(), 'kg-cluster-'));
    this.lanNs = `${tag}-lan`;
    const tagByte = ((process.pid * 13 + counter) % 200) + 20;
    this.net = `10.${tagByte}.0`;
    this.net6 = `fd00:${tagByte}:`;
    for (const role of ROLES) this.hosts.set(role, new Host(role, `${tag}-${role}`));
    this.tokens = Object.fromEntries(
      COMPONENTS.map((u) => [u, `${u}-${tag}-${Math.random().toString(36).slice(2)}`]),
    );
  }

  /** Namespaces and the bridge; nothing runs yet. */
  static async create(): Promise<Cluster> {
    requireBuilt();
    const c = new Cluster(`kgc${process.pid % 100000}x${++counter}`);
    try {
      await sh('ip', ['netns', 'add', c.lanNs]);
      const lan = (args: string[]) => sh('ip', ['netns', 'exec', c.lanNs, 'ip', ...args]);
      await lan(['link', 'set', 'lo', 'up']);
      await lan(['link', 'add', 'br0', 'type', 'bridge']);
      await lan(['link', 'set', 'br0', 'up']);
      for (const role of ROLES) {
        const h = c.host(role);
        await sh('ip', ['netns', 'add', h.netns]);
        await h.run('ip', ['link', 'set', 'lo', 'up']);
        // Made inside the lan namespace: no interface name ever exists in the root namespace.
        const port = `p-${role}`;
        await lan(['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns]);
        await lan(['link', 'set', port, 'master', 'br0']);
        await lan(['link', 'set', port, 'up']);
        await h.run('ip', ['addr', 'add', `${c.addr(role)}/24`, 'dev', 'eth0']);
        await h.run('ip', ['-6', 'addr', 'add', `${c.addr(role, 6)}/64`, 'dev', 'eth0', 'nodad']);
        await h.run('ip', ['link', 'set', 'eth0', 'up']);
        h.addr4.lan = c.addr(role);
        h.addr6.lan = c.addr(role, 6);
        h.ifname.lan = 'eth0';
      }
      return c;
    } catch (err) {
      await c.destroy();
      throw err;
    }
  }

  host(role: Role): Host {
    return this.hosts.get(role)!;
  }

  addr(role: Role, family: Family = 4): string {
    return family === 4 ? `${this.net}.${HOST_PART[role]}` : `${this.net6}:${HOST_PART[role]}`;
  }

  /** The /24 every namespace is on (a "wider source" than any one host). */
  get subnet(): string {
    return `${this.net}.0/24`;
  }

  /** Namespace names this cluster made (for the teardown check). */
  get namespaces(): string[] {
    return [this.lanNs, ...[...this.hosts.values()].map((h) => h.netns)];
  }

  write(name: string, text: string, mode = 0o600): string {
    const path = join(this.dir, name);
    writeFileSync(path, text, { mode });
    return path;
  }

  private spawn(role: Role, cmd: string, args: string[], opts: SpawnOptions = {}): Daemon {
    const d = new Daemon(this.host(role).spawn(cmd, args, opts), args);
    this.daemons.push(d);
    return d;
  }

  // --- the API ------------------------------------------------------------------------------------

  /**
   * The emulator in the api namespace on 10.T.0.1, with one user per component holding the chart's
   * rendered RBAC, and the chart's sniffer admission policy; kubeconfigs written.
   */
  async startApi(): Promise<void> {
    const chart = await renderChart(RELEASE_NS);
    const rendered = renderedRules(chart);
    const users: RbacUser[] = COMPONENTS.map((component) => {
      const token = this.tokens[component]!;
      if (component === 'admin')
        return { name: 'admin', token, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] };
      const name = serviceAccountUser(RELEASE_NS, `${RELEASE}-knockgate-${SERVICE_ACCOUNT[component]}`);
      const rules = rendered.get(name);
      if (!rules) throw new Error(`the rendered chart binds no role to ${name}`);
      const node = NODE_OF[component];
      return {
        name,
        token,
        rules,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${RELEASE_NS}`, 'system:authenticated'],
        ...(node ? { extra: { [NODE_NAME_EXTRA]: [node] } } : {}),
      };
    });
    const rbac = this.write('rbac.yaml', stringify({ users }));
    const all = join(this.dir, 'all.kubeconfig');
    this.api = this.spawn('api', 'node', [
      EMULATOR,
      '--host',
      this.addr('api'),
      '--port',
      '0',
      '--kubeconfig',
      all,
      '--rbac',
      rbac,
      '--namespace',
      RELEASE_NS,
      '--bookmark-interval-ms',
      '2000',
    ]);
    await waitFor(() => this.api!.lines.some((l) => String(l.msg).includes('ready on')), {
      timeoutMs: 45_000,
      what: 'the API emulator',
    }).catch((err: Error) => {
      throw new Error(`${err.message}: ${this.api!.stderr}`);
    });
    // One kubeconfig per component holding only its own token (a node never sees the admin token;
    // the two sniffers share a user name, as the pods of one ServiceAccount do, not a token).
    const kc = parse(readFileSync(all, 'utf8')) as { clusters: { name: string }[] };
    rmSync(all);
    for (const component of COMPONENTS)
      this.write(
        `${component}.kubeconfig`,
        stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: kc.clusters,
          users: [{ name: component, user: { token: this.tokens[component] } }],
          contexts: [{ name: component, context: { cluster: kc.clusters[0]!.name, user: component } }],
          'current-context': component,
        }),
      );
    const policy = chart.filter((d) => d.kind.startsWith('ValidatingAdmissionPolicy'));
    if (policy.length !== 2) throw new Error('the rendered chart has no sniffer admission policy');
    await this.apply('sniffer-admission-policy', policy.map((d) => stringify(d)).join('---\n'));
  }

  kubeconfig(component: Component): string {
    return join(this.dir, `${component}.kubeconfig`);
  }

  /** The real kubectl as admin, run in the api namespace; the exit status is returned. */
  kubectl(args: string[], timeoutMs = 30_000): Promise<CommandResult> {
    return runCommand(
      this.host('api'),
      'kubectl',
      ['--kubeconfig', this.kubeconfig('admin'), '--cache-dir', join(this.dir, 'kube-cache'), ...args],
      timeoutMs,
    );
  }

  /** kubectl that must succeed: its stdout. */
  async kubectlOk(args: string[], timeoutMs = 30_000): Promise<string> {
    const r = await this.kubectl(args, timeoutMs);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** kubectl apply -f of `yaml` (written to a file first). */
  async apply(name: string, yaml: string): Promise<string> {
    return this.kubectlOk(['apply', '-f', this.write(`${name}.yaml`, yaml)]);
  }

  async grants(): Promise<AccessGrant[]> {
    const out = await this.kubectlOk(['get', 'accessgrants', '-o', 'json']);
    return (JSON.parse(out) as { items: AccessGrant[] }).items;
  }

  async grant(name: string): Promise<AccessGrant | undefined> {
    return (await this.grants()).find((g) => g.metadata.name === name);
  }

  /** Wait for a grant that satisfies `pred`; returns it. */
  async waitGrant(pred: (g: AccessGrant) => boolean, what: string, timeoutMs = 30_000): Promise<AccessGrant> {
    const found = await waitFor(async () => (await this.grants()).find(pred), {
      timeoutMs,
      intervalMs: 250,
      what,
    });
    return found!;
  }

  /** Wait until no grant named `name` exists. */
  async waitGone(name: string, timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => !(await this.grant(name)), {
      timeoutMs,
      intervalMs: 250,
      what: `grant ${name} to be gone`,
    });
  }

  /** POST /emulator/v1/faults with the admin token, from the api namespace (see faults.ts). */
  async fault(request: Record<string, unknown>): Promise<void> {
    const kc = parse(readFileSync(this.kubeconfig('admin'), 'utf8')) as {
      clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
    };
    const { server, 'certificate-authority-data': ca } = kc.clusters[0]!.cluster;
    // argv: URL, token, CA (base64 PEM), body. The emulator's certificate is checked, as kubectl does.
    const script = `
      const [url, token, ca, body] = process.argv.slice(1);
      const req = require('https').request(url, { method: 'POST', ca: Buffer.from(ca, 'base64'),
        headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' } },
        (res) => { let t = ''; res.on('data', (d) => (t += d)); res.on('end', () => {
          if (res.statusCode !== 200) { console.error(res.statusCode + ' ' + t); process.exit(1); } }); });
      req.on('error', (e) => { console.error(e.message); process.exit(1); });
      req.end(body);`;
    const r = await runCommand(this.host('api'), 'node', [
      '-e',
      script,
      `${server}/emulator/v1/faults`,
      this.tokens.admin!,
      ca,
      JSON.stringify(request),
    ]);
    if (r.code !== 0) throw new Error(`fault ${JSON.stringify(request)}: ${r.stderr.trim()}`);
  }

  // --- the components -----------------------------------------------------------------------------

  /**
   * `knockgate sniffer` and `knockgate agent` in a node namespace; waits for both to start. `env`
   * is added to the agent's (as the chart's Downward API sets NODE_NAME).
   */
  async startNode(
    node: NodeName,
    agentConfig: string,
    opts: { env?: Record<string, string> } = {},
  ): Promise<void> {
    const config = this.write(`agent-${node}.yaml`, agentConfig);
    const env = { ...process.env, ...opts.env };
    const agent = this.spawn(
      node,
      'node',
      [
        KNOCKGATE,
        'agent',
        '--config',
        config,
        '--kubeconfig',
        this.kubeconfig(`agent-${node}`),
        '--namespace',
        RELEASE_NS,
        '--log-level',
        'debug',
      ],
      { env },
    );
    this.agents.set(node, agent);
    await Promise.all([agent.waitEvent('started', `${node} agent started`, 45_000), this.startSniffer(node)]);
  }

  /** `knockgate sniffer` in a node namespace (it captures on eth0); waits for it to start. */
  async startSniffer(node: NodeName): Promise<Daemon> {
    const sniffer = this.spawn(node, 'node', [
      KNOCKGATE,
      'sniffer',
      '--kubeconfig',
      this.kubeconfig(`sniffer-${node}`),
      '--namespace',
      RELEASE_NS,
      '--node',
      node,
      '--interface',
      'eth0',
      '--log-level',
      'debug',
    ]);
    this.sniffers.set(node, sniffer);
    await sniffer.waitEvent('started', `${node} sniffer started`, 45_000);
    return sniffer;
  }

  /** Stop a node's sniffer (SIGTERM) and start a new one: nothing of its memory is kept. */
  async restartSniffer(node: NodeName): Promise<Daemon> {
    const exit = await this.sniffers.get(node)!.stop();
    if (exit.code !== 0) throw new Error(`${node} sniffer exited ${JSON.stringify(exit)}`);
    return this.startSniffer(node);
  }

  /**
   * `knockgate controller` in the api namespace; waits until it leads. `args` come after the usual
   * flags (e.g. --cluster-id); `env` is added to this process's (undefined removes a variable).
   */
  async startController(
    controllerConfig: string,
    opts: { args?: string[]; env?: Record<string, string | undefined> } = {},
  ): Promise<void> {
    const config = this.write('controller.yaml', controllerConfig);
    const env = { ...process.env, ...opts.env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    this.controller = this.spawn(
      'api',
      'node',
      [
        KNOCKGATE,
        'controller',
        '--config',
        config,
        '--kubeconfig',
        this.kubeconfig('controller'),
        '--namespace',
        RELEASE_NS,
        '--identity',
        'controller-0',
        '--log-level',
        'debug',
        ...(opts.args ?? []),
      ],
      { env },
    );
    await this.controller.waitEvent('leader-started', 'the controller to lead', 45_000);
  }

  /**
   * Make a TCP port on this process's loopback reachable on 127.0.0.1 inside the api namespace
   * (where the controller runs): a forwarder there → a Unix socket in the cluster dir (file-system
   * sockets are not per network namespace) → here. Returns the port in the api namespace.
   */
  async exposeToApi(port: number): Promise<number> {
    const path = join(this.dir, `bridge-${port}.sock`);
    const pipe = (a: Socket, b: Socket) => {
      a.on('error', () => b.destroy());
      b.on('error', () => a.destroy());
      a.pipe(b).pipe(a);
    };
    const server = createNetServer((s) => pipe(s, netConnect(port, '127.0.0.1')));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    this.bridges.push(server);
    const script = `
      const net = require('net');
      const [path] = process.argv.slice(1);
      const s = net.createServer((c) => { const u = net.connect(path);
        c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); c.pipe(u).pipe(c); });
      s.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ event: 'ready', port: s.address().port })));`;
    const d = this.spawn('api', 'node', ['-e', script, path]);
    return Number((await d.waitEvent('ready', `the bridge to port ${port}`, 15_000)).port);
  }

  /** The EC2 emulator (here), and the URL the controller in the api namespace reaches it at. */
  async startEc2(options: Ec2EmulatorOptions = {}): Promise<string> {
    this.ec2 = new Ec2Emulator(options);
    await this.ec2.start();
    return `http://127.0.0.1:${await this.exposeToApi(this.ec2.port)}`;
  }

  /** Echo listeners on `ports` in a node namespace. */
  async listen(role: Role, ports: number[]): Promise<ChildProcess> {
    const child = this.host(role).spawn('node', ['-e', LISTENER, ...ports.map(String)]);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`listener in ${role} did not start`)), 15_000);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`listener in ${role} exited ${code}`));
      });
    });
    return child;
  }

  // --- traffic ------------------------------------------------------------------------------------

  private prober(role: Role): Prober {
    let p = this.probers.get(role);
    if (!p) {
      p = new Prober(this.host(role).spawn('node', ['-e', PROBER], { stdio: ['pipe', 'pipe', 'pipe'] }));
      this.probers.set(role, p);
    }
    return p;
  }

  /** One TCP connect: 'open' when it completes, 'closed' when dropped (no answer) or refused. */
  async connect(from: Role, to: Role, port: number, family: Family = 4): Promise<Reach> {
    const host = this.addr(to, family);
    const r = await this.prober(from).ask({ op: 'connect', host, port, timeoutMs: 1000 });
    return r === 'ok' ? 'open' : 'closed';
  }

  async waitReach(
    from: Role,
    to: Role,
    port: number,
    want: Reach,
    timeoutMs = 20_000,
    family: Family = 4,
  ): Promise<void> {
    await waitFor(async () => (await this.connect(from, to, port, family)) === want, {
      timeoutMs,
      intervalMs: 200,
      what: `${from} → ${to}:${port} (IPv${family}) ${want}`,
    });
  }

  /** The real knockd client (`knock -6` for IPv6). */
  async knock(from: Role, to: Role, ports: string[], family: Family = 4): Promise<void> {
    const args = [...(family === 6 ? ['-6'] : []), this.addr(to, family), ...ports];
    const r = await runCommand(this.host(from), 'knock', args);
    if (r.code !== 0) throw new Error(`knock ${ports.join(' ')}: ${r.stderr}`);
  }

  /**
   * The real fwknop client (never -R, no rc file, HOME in the cluster dir). The packet it sends is
   * saved (--save-packet) and returned: the UDP payload's exact bytes.
   */
  async fwknop(from: Role, to: Role, keys: SpaKeys, access: string, port: number): Promise<Buffer> {
    const saved = join(this.dir, `spa-${Date.now()}-${Math.random().toString(36).slice(2)}.pkt`);
    const args = [
      '--no-rc-file',
      '--no-save-args',
      '-A',
      access,
      '-a',
      this.addr(from),
      '-D',
      this.addr(to),
      '-p',
      String(port),
      '--key-base64-rijndael',
      keys.key,
      '--key-base64-hmac',
      keys.hmac,
      '--save-packet',
      saved,
    ];
    const r = await runCommand(this.host(from), 'env', [`HOME=${this.dir}`, 'fwknop', ...args]);
    if (r.code !== 0) throw new Error(`fwknop: ${r.stderr}${r.stdout}`);
    // fwknop writes the payload it sent followed by one newline.
    const text = readFileSync(saved, 'utf8').replace(/\n$/, '');
    return Buffer.from(text, 'utf8');
  }

  /** Send `payload` as one UDP datagram from `from` to `to`:`port`. */
  async sendUdp(from: Role, to: Role, port: number, payload: Buffer): Promise<void> {
    const script = `
      const s = require('dgram').createSocket('udp4');
      s.send(Buffer.from(process.argv[3], 'base64'), Number(process.argv[2]), process.argv[1],
        (e) => { s.close(); if (e) { console.error(e.message); process.exit(1); } });`;
    const r = await runCommand(this.host(from), 'node', [
      '-e',
      script,
      this.addr(to),
      String(port),
      payload.toString('base64'),
    ]);
    if (r.code !== 0) throw new Error(`udp send to ${to}:${port}: ${r.stderr}`);
  }

  /**
   * `knockgate uninstall` in the api namespace as the pre-delete hook Job's service account
   * (controller/uninstall/rbac.ts); `args` after --kubeconfig and --namespace.
   */
  uninstall(args: string[], timeoutMs = 120_000): Promise<CommandResult> {
    return runCommand(
      this.host('api'),
      'node',
      [
        KNOCKGATE,
        'uninstall',
        '--kubeconfig',
        this.kubeconfig('uninstall'),
        '--namespace',
        RELEASE_NS,
        ...args,
      ],
      timeoutMs,
    );
  }

  /** Every knockgate object in a node's firewall: nft tables, ipsets, iptables/ip6tables chains. */
  async firewallObjects(node: NodeName): Promise<string[]> {
    const host = this.host(node);
    const found: string[] = [];
    const nft = await runCommand(host, 'nft', ['list', 'tables']);
    if (nft.code !== 0) throw new Error(`nft list tables in ${node}: ${nft.stderr}`);
    found.push(...nft.stdout.split('\n').filter((l) => /knockgate/i.test(l)));
    const ipset = await runCommand(host, 'ipset', ['list', '-n']);
    if (ipset.code === 0) found.push(...ipset.stdout.split('\n').filter((l) => /knockgate/i.test(l)));
    for (const save of ['iptables-save', 'ip6tables-save']) {
      const r = await runCommand(host, save, []);
      if (r.code === 0)
        found.push(
          ...r.stdout
            .split('\n')
            .filter((l) => /knockgate/i.test(l))
            .map((l) => `${save}: ${l}`),
        );
    }
    return found;
  }

  /** `nft list ruleset` in a node. */
  async ruleset(node: NodeName): Promise<string> {
    const r = await runCommand(this.host(node), 'nft', ['list', 'ruleset']);
    if (r.code !== 0) throw new Error(`nft list ruleset in ${node}: ${r.stderr}`);
    return r.stdout;
  }

  /** What every component said, for a failing test's message (the last lines of each). */
  logs(lines = 30): string {
    const named: [string, Daemon | undefined][] = [
      ['api', this.api],
      ['controller', this.controller],
      ...[...this.sniffers].map(([n, d]) => [`sniffer ${n}`, d] as [string, Daemon]),
      ...[...this.agents].map(([n, d]) => [`agent ${n}`, d] as [string, Daemon]),
    ];
    return named
      .filter(([, d]) => d)
      .map(
        ([n, d]) =>
          `--- ${n}\n${d!.lines
            .slice(-lines)
            .map((l) => JSON.stringify(l))
            .join('\n')}\n${d!.stderr.slice(-2000)}`,
      )
      .join('\n');
  }

  // --- teardown -----------------------------------------------------------------------------------

  /** Stop every process (SIGTERM, then SIGKILL, by PID) and delete every namespace. */
  async destroy(): Promise<void> {
    await Promise.all(this.daemons.map((d) => d.stop()));
    for (const b of this.bridges.splice(0)) b.close();
    await this.ec2?.stop();
    for (const h of this.hosts.values())
      for (const c of h.children)
        if (c.exitCode === null && c.signalCode === null && c.pid) {
          try {
            process.kill(c.pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
    for (const ns of this.namespaces) {
      try {
        const { stdout } = await sh('ip', ['netns', 'pids', ns]);
        for (const pid of stdout.split(/\s+/).filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      } catch {
        /* namespace never made */
      }
      await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
