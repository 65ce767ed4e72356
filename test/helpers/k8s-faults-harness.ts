// The bench of the fault tests (test/k8s-faults-*.test.ts): the Kubernetes API emulator in this
// process on the real clock, one node ("srv", a network namespace) whose real agent (in process)
// drives nftables there, a granted client ("cli") and a host never granted ("third"), and real
// controllers — in process (ControllerManager on the real clock) or as `knockgate controller`
// processes that can be SIGKILLed, SIGSTOPped, cut off by a partition of their own TCP link to the
// API (Link) and restarted. `knockgate sniffer` and `knockgate agent` processes run inside a node's
// namespace and reach the emulator through a relay over a unix socket (namespaces share no
// loopback; unix sockets are not namespaced). Every component runs as its own user, so the
// emulator's request record (stamped on arrival here) tells who wrote what, and when.
//
// The invariant every scenario ends on (violations()): no element of the node's grant sets without
// a live grant it belongs to, no element outliving its grant's expiresAt, every live grant targeting
// the node applied in the kernel and shown Active/Applied, every grant past its expiry out of the
// kernel and out of the Active phase.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { systemClock } from '../../api/clock.js';
import type { AccessGrant, KnockPolicy, NodeStatus } from '../../api/types.js';
import { API_VERSION } from '../../api/types.js';
import { NodeAgent } from '../../controller/agent/agent.js';
import { parseAgentConfig } from '../../controller/agent/config.js';
import { agentKube } from '../../controller/agent/kube.js';
import { createFirewall } from '../../controller/firewall/firewall.js';
import type { Firewall } from '../../controller/firewall/types.js';
import { defaultControllerConfig, type ControllerConfig } from '../../controller/reconciler/config.js';
import { ControllerManager } from '../../controller/reconciler/manager.js';
import { CONTROLLER_CLUSTER_RULES, CONTROLLER_NAMESPACE_RULES } from '../../controller/reconciler/rbac.js';
import type { RecordedRequest } from '../emulators/kube-apiserver/server.js';
import type { KubeObject } from '../emulators/kube-apiserver/storage.js';
import { makeLab, PORTS, type Lab } from './firewall-scenarios.js';
import { startEmulatedCluster, type EmulatedCluster } from './kube-store-emulator.js';
import { waitFor, type Host } from './netns.js';

export const NODE = 'srv-node';
export const AGENT_USER = 'system:serviceaccount:knockgate:agent';
export const SNIFFER_USER = 'system:serviceaccount:knockgate:sniffer';
export const CLI = join(import.meta.dirname, '..', '..', 'dist/cmd/knockgate.js');
const WRITE = { fieldValidation: 'Strict' as const, dryRun: false };
const ALL = { labelSelector: null, fieldSelector: null };
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const TERMINAL = new Set(['Expired', 'Revoked', 'Failed']);
/** Short informer and request backoffs, so that recovery after a fault is quick in real time. */
export const QUICK = {
  watchBackoffInitialMs: 50,
  watchBackoffMaxMs: 1_000,
  requestBackoffInitialMs: 20,
  requestBackoffMaxMs: 200,
};

/** Listens on 127.0.0.1 (an ephemeral port, printed) and relays every connection to a unix socket. */
const FORWARDER = `
const net = require('node:net');
const path = process.argv[1];
const server = net.createServer((c) => {
  const u = net.connect(path);
  c.pipe(u).pipe(c);
  const end = () => { c.destroy(); u.destroy(); };
  c.on('error', end).on('close', end);
  u.on('error', end).on('close', end);
});
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
`;

const logger = pino({ level: process.env.KG_FAULTS_LOG ?? 'silent' });

const AGENT_CONFIG = `apiVersion: knockgate.io/v1alpha1
kind: AgentConfig
nodeName: ${NODE}
protectedPorts: ["${PORTS.service}/tcp"]
knockPorts: ["${PORTS.knockTcp}/tcp"]
backend: nftables
resyncIntervalSeconds: 5
`;

/** One element of the node's grant sets, as `nft -j` lists it. */
export interface KernelElement {
  address: string;
  port: string;
  /** Seconds left, as the kernel counts them (rounded down). */
  expiresSeconds: number;
}

/** A `knockgate controller` process. */
export interface ControllerProcess {
  identity: string;
  child: ChildProcess;
  /** Its only way to the API: partition() cuts it off, heal() reconnects it. */
  link: Link;
  /** Its log lines (stdout and stderr). */
  output(): string;
  exited: Promise<number | null>;
}

/** A request the emulator recorded, and when it arrived (real ms). */
export interface SeenRequest extends RecordedRequest {
  seenAt: number;
}

export class FaultsBench {
  lab!: Lab;
  cluster!: EmulatedCluster;
  agent: NodeAgent | undefined;
  cli4 = '';
  private readonly firewalls: Firewall[] = [];
  private readonly managers: ControllerManager[] = [];
  private readonly processes: ControllerProcess[] = [];
  private bridge: Server | undefined;
  private readonly links: Link[] = [];
  private tmp = '';
  /** Every request the emulator recorded, kept beyond its own bounded record. */
  readonly seen: SeenRequest[] = [];

  /** Namespaces, the emulator with one user per controller identity, the policy, the agent. */
  async start(controllers: string[]): Promise<void> {
    this.tmp = mkdtempSync(join(tmpdir(), 'kg-faults-'));
    this.lab = await makeLab();
    this.cli4 = this.lab.cli.addr4.srv!;
    const rules = [
      ...CONTROLLER_CLUSTER_RULES,
      ...CONTROLLER_NAMESPACE_RULES.map((r) => ({ ...r, namespaces: ['default'] })),
    ];
    const token = () => randomBytes(16).toString('hex');
    this.cluster = await startEmulatedCluster({
      users: [
        { name: 'admin', token: token(), rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] },
        {
          name: AGENT_USER,
          token: token(),
          rules: [
            {
              apiGroups: ['knockgate.io'],
              resources: ['accessgrants', 'knockpolicies'],
              verbs: ['get', 'list', 'watch'],
            },
            { apiGroups: ['knockgate.io'], resources: ['accessgrants/status'], verbs: ['patch'] },
            // Its own Node (labels of Selector policies).
            { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
          ],
        },
        {
          name: SNIFFER_USER,
          token: token(),
          rules: [
            { apiGroups: ['knockgate.io'], resources: ['knockpolicies'], verbs: ['get', 'list', 'watch'] },
            { apiGroups: ['knockgate.io'], resources: ['replayclaims'], verbs: ['create', 'get', 'delete'] },
            {
              apiGroups: ['knockgate.io'],
              resources: ['accessgrants'],
              verbs: ['create', 'get', 'patch', 'delete'],
            },
            { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
            {
              apiGroups: [''],
              resources: ['secrets'],
              verbs: ['get', 'list', 'watch'],
              namespaces: ['default'],
            },
          ],
        },
        ...controllers.map((name) => ({ name, token: token(), rules })),
      ],
    });
    // The node the agent (and a sniffer) run as.
    this.cluster.server.api.create(
      this.cluster.server.api.type('', 'v1', 'nodes')!,
      undefined,
      { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE } },
      WRITE,
    );
    this.recordArrivals();
    this.createPolicy('ssh');
    this.agent = await this.startAgent();
  }

  async stop(): Promise<void> {
    this.bridge?.close();
    for (const l of this.links) l.close();
    for (const p of this.processes.splice(0)) await this.kill(p, 'SIGKILL');
    for (const m of this.managers.splice(0)) await m.stop().catch(() => undefined);
    await this.agent?.stop().catch(() => undefined);
    for (const fw of this.firewalls) await fw.close().catch(() => undefined);
    if (this.lab) {
      const fw = this.firewall();
      await fw.cleanup().catch(() => undefined);
      await fw.close();
    }
    await this.cluster?.stop();
    await this.lab?.net.destroy();
    if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
  }

  /**
   * Stamp every request the emulator records with the time it arrived, and keep it beyond the
   * emulator's own bounded record (its array's push is wrapped: the emulator is test code too).
   */
  private recordArrivals(): void {
    const requests = this.cluster.server.requests;
    const push = requests.push.bind(requests);
    requests.push = (...items: RecordedRequest[]) => {
      const at = Date.now();
      // The same objects: their status is filled in when the answer goes out.
      for (const r of items) this.seen.push(Object.assign(r, { seenAt: at }));
      return push(...items);
    };
  }

  // --- components --------------------------------------------------------------------------------

  private firewall(): Firewall {
    const fw = createFirewall({
      backend: 'nftables',
      logger,
      clock: systemClock,
      commandPrefix: ['ip', 'netns', 'exec', this.lab.srv.netns],
    });
    this.firewalls.push(fw);
    return fw;
  }

  async startAgent(): Promise<NodeAgent> {
    const agent = new NodeAgent({
      config: parseAgentConfig('agent.yaml', AGENT_CONFIG),
      firewall: this.firewall(),
      sources: agentKube(this.cluster.kubeConfigFor(AGENT_USER), systemClock, logger, QUICK),
      clock: systemClock,
      logger,
    });
    await agent.start();
    return agent;
  }

  /** A controller in this process on the real clock (client-go's Lease timings unless `config` says). */
  manager(identity: string, config: ControllerConfig = defaultControllerConfig()): ControllerManager {
    const m = new ControllerManager({
      kubeConfig: this.cluster.kubeConfigFor(identity),
      config,
      identity,
      clock: systemClock,
      logger,
      watchBackoffInitialMs: QUICK.watchBackoffInitialMs,
      watchBackoffMaxMs: QUICK.watchBackoffMaxMs,
      resyncIntervalMs: 0,
    });
    this.managers.push(m);
    m.start();
    return m;
  }

  /** `knockgate controller` as `identity` (the built CLI in dist/), with `configYaml` as its config file. */
  async spawnController(identity: string, configYaml: string): Promise<ControllerProcess> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" first`);
    const link = new Link(() => this.cluster.server.port);
    this.links.push(link);
    const port = await link.listen();
    const kubeconfig = join(this.tmp, `${identity}.kubeconfig`);
    writeFileSync(
      kubeconfig,
      this.cluster.server
        .kubeconfig(identity)
        .replace(`https://127.0.0.1:${this.cluster.server.port}`, `https://127.0.0.1:${port}`),
    );
    const config = join(this.tmp, `${identity}.yaml`);
    writeFileSync(config, configYaml);
    const child = spawn(
      process.execPath,
      [
        CLI,
        'controller',
        '--kubeconfig',
        kubeconfig,
        '--config',
        config,
        '--identity',
        identity,
        '--namespace',
        'default',
        '--log-level',
        process.env.KG_FAULTS_LOG ?? 'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '', POD_NAMESPACE: '' } },
    );
    let output = '';
    const take = (d: Buffer) => {
      if (output.length < 256 * 1024) output += d.toString();
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const p = { identity, child, link, output: () => output, exited };
    this.processes.push(p);
    return p;
  }

  running(identity: string): boolean {
    return this.processes.some((q) => q.identity === identity && q.child.exitCode === null);
  }

  /** The running process of `identity`. */
  controller(identity: string): ControllerProcess {
    const p = this.processes.find((q) => q.identity === identity && q.child.exitCode === null);
    if (!p) throw new Error(`no controller process ${identity}`);
    return p;
  }

  /** Signal a controller process by its PID; SIGKILL and SIGTERM wait (bounded) for the exit. */
  async kill(p: ControllerProcess, signal: NodeJS.Signals): Promise<void> {
    if (p.child.exitCode !== null || p.child.signalCode !== null || !p.child.pid) return;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') process.kill(p.child.pid, 'SIGCONT');
    process.kill(p.child.pid, signal);
    if (signal !== 'SIGKILL' && signal !== 'SIGTERM') return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p.exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
  }

  /**
   * A kubeconfig for `user` that reaches the emulator from inside `host`. Namespaces do not share
   * a loopback, unix sockets are not namespaced: a forwarder in `host` listens on its 127.0.0.1 and
   * relays each connection over a unix socket to the emulator's port here (TLS goes end to end; the
   * certificate names 127.0.0.1). While the emulator is stopped, connections through it fail too.
   */
  async kubeconfigInside(host: Host, user: string): Promise<string> {
    const sock = join(this.tmp, 'api.sock');
    if (!this.bridge) {
      const bridge = createServer((inner) => {
        const outer = tcpConnect(this.cluster.server.port, '127.0.0.1');
        inner.pipe(outer).pipe(inner);
        const end = () => {
          inner.destroy();
          outer.destroy();
        };
        inner.on('error', end).on('close', end);
        outer.on('error', end).on('close', end);
      });
      await new Promise<void>((resolve, reject) => bridge.once('error', reject).listen(sock, resolve));
      this.bridge = bridge;
    }
    const child = host.spawn(process.execPath, ['-e', FORWARDER, sock], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const port = await waitFor(() => /^port (\d+)$/m.exec(out)?.[1], { what: 'the API forwarder' });
    const kubeconfig = join(this.tmp, `${host.role}-${user.split(':').pop()!}.kubeconfig`);
    writeFileSync(
      kubeconfig,
      this.cluster.server
        .kubeconfig(user)
        .replace(`https://127.0.0.1:${this.cluster.server.port}`, `https://127.0.0.1:${port}`),
    );
    return kubeconfig;
  }

  /**
   * `knockgate sniffer` (the built CLI) in the node's namespace, capturing on the veth that faces
   * cli. Resolves once it captures; output() holds its log lines.
   */
  async startSniffer(): Promise<{ child: ChildProcess; output: () => string }> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" first`);
    const kubeconfig = await this.kubeconfigInside(this.lab.srv, SNIFFER_USER);
    const child = this.lab.srv.spawn(process.execPath, [
      CLI,
      'sniffer',
      '--kubeconfig',
      kubeconfig,
      '--namespace',
      'default',
      '--node',
      NODE,
      '--interface',
      this.lab.srv.ifname.cli!,
    ]);
    let out = '';
    const take = (d: Buffer) => {
      if (out.length < 512 * 1024) out += d.toString();
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    await waitFor(() => out.includes('"event":"started"'), {
      what: 'the sniffer to capture',
      timeoutMs: 45_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}: ${out.slice(-2000)}`);
    });
    return { child, output: () => out };
  }

  /**
   * `knockgate agent` (the built CLI) as node `nodeName` in `host`'s namespace, with the agent's
   * config of the bench; resolves once it has installed its firewall. Stopped with the namespaces.
   */
  async spawnAgent(
    host: Host,
    nodeName: string,
    args: string[] = [],
  ): Promise<{ child: ChildProcess; output: () => string }> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" first`);
    this.cluster.server.api.create(
      this.cluster.server.api.type('', 'v1', 'nodes')!,
      undefined,
      { apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } },
      WRITE,
    );
    const config = join(this.tmp, `agent-${nodeName}.yaml`);
    writeFileSync(config, AGENT_CONFIG.replace(`nodeName: ${NODE}`, `nodeName: ${nodeName}`));
    const kubeconfig = await this.kubeconfigInside(host, AGENT_USER);
    const child = host.spawn(process.execPath, [
      CLI,
      'agent',
      '--config',
      config,
      '--kubeconfig',
      kubeconfig,
      ...args,
    ]);
    let out = '';
    const take = (d: Buffer) => {
      if (out.length < 512 * 1024) out += d.toString();
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    await waitFor(() => out.includes('"event":"started"'), {
      what: `the agent of ${nodeName} to start`,
      timeoutMs: 45_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}: ${out.slice(-2000)}`);
    });
    return { child, output: () => out };
  }

  /** The real knockd client in cli, knocking the sequence of policy ssh at srv. */
  async knock(): Promise<void> {
    await this.lab.cli.run('knock', [this.lab.srvFromCli[4], `${PORTS.knockTcp}:tcp`, '7001:tcp']);
  }

  // --- objects -----------------------------------------------------------------------------------

  private type(plural: string) {
    return this.cluster.server.api.type('knockgate.io', 'v1alpha1', plural)!;
  }

  createPolicy(name: string): void {
    const policy: KnockPolicy = {
      apiVersion: API_VERSION,
      kind: 'KnockPolicy',
      metadata: { name },
      spec: {
        knock: { sequence: [`${PORTS.knockTcp}/tcp`, '7001/tcp'] },
        grant: {
          ports: [`${PORTS.service}/tcp`],
          durationSeconds: 300,
          targets: { node: { mode: 'Local' } },
        },
      },
    };
    this.cluster.server.api.create(this.type('knockpolicies'), undefined, policy, WRITE);
  }

  /** A knock grant of policy ssh for `source`, seen by and targeting this node, `seconds` from now. */
  grant(name: string, source: string, seconds = 300, node = NODE): AccessGrant {
    return {
      apiVersion: API_VERSION,
      kind: 'AccessGrant',
      metadata: { name },
      spec: {
        source: `${source}/32`,
        ports: [`${PORTS.service}/tcp`],
        expiresAt: new Date(Date.now() + seconds * 1000).toISOString(),
        policyRef: { name: 'ssh' },
        method: 'knock',
        observedBy: node,
        targets: { nodes: [node] },
      },
    };
  }

  /** Create a grant in process (works while the listener is stopped: what a sniffer wrote meanwhile). */
  put(name: string, source: string, seconds = 300, node = NODE): AccessGrant {
    const g = this.grant(name, source, seconds, node);
    this.cluster.server.api.create(this.type('accessgrants'), undefined, g, WRITE);
    return g;
  }

  /** `kubectl delete accessgrant NAME` without waiting: a deletionTimestamp while finalizers remain. */
  delete(name: string): void {
    this.cluster.server.api.delete(this.type('accessgrants'), undefined, name, { dryRun: false });
  }

  get(name: string): AccessGrant | undefined {
    try {
      return this.cluster.server.api.get(
        this.type('accessgrants'),
        undefined,
        name,
      ) as unknown as AccessGrant;
    } catch {
      return undefined;
    }
  }

  grants(): AccessGrant[] {
    return this.cluster.server.api.list(this.type('accessgrants'), undefined, ALL)
      .items as unknown as AccessGrant[];
  }

  phase(name: string): string | undefined {
    return this.get(name)?.status?.phase;
  }

  nodeStatus(name: string, node = NODE): NodeStatus | undefined {
    return this.get(name)?.status?.nodes?.[node];
  }

  /** The Lease's holder. */
  holder(): string | undefined {
    return this.lease()?.holderIdentity;
  }

  lease(): { holderIdentity?: string; leaseTransitions?: number; renewTime?: string } | undefined {
    try {
      const lease = this.cluster.server.api.get(
        this.cluster.server.api.type('coordination.k8s.io', 'v1', 'leases')!,
        'default',
        'knockgate-controller',
      ) as unknown as { spec: { holderIdentity?: string; leaseTransitions?: number; renewTime?: string } };
      return lease.spec;
    } catch {
      return undefined;
    }
  }

  /** How many Events of `reason` name the grant `name`. */
  eventCount(reason: string, name: string): number {
    const items = this.cluster.server.api.list(
      this.cluster.server.api.type('', 'v1', 'events')!,
      'default',
      ALL,
    ).items as KubeObject[];
    return items.filter((e) => {
      const ev = e as unknown as { reason: string; involvedObject: { kind: string; name: string } };
      return (
        ev.reason === reason && ev.involvedObject.kind === 'AccessGrant' && ev.involvedObject.name === name
      );
    }).length;
  }

  /** Writes other than to the Lease sent by `user` and seen since `since` (real ms). */
  writesBy(user: string, since = 0): SeenRequest[] {
    return this.seen.filter(
      (r) => r.seenAt >= since && r.user === user && WRITES.has(r.method) && !/\/leases(\/|\?|$)/.test(r.url),
    );
  }

  /** Requests answered with `status` since `since`. */
  answered(status: number, since = 0): SeenRequest[] {
    return this.seen.filter((r) => r.seenAt >= since && r.status === status);
  }

  // --- the node --------------------------------------------------------------------------------

  /** The node's (or `host`'s) grant elements (both families) from `nft -j list set`. */
  async elements(host: Host = this.lab.srv): Promise<KernelElement[]> {
    const out: KernelElement[] = [];
    for (const set of ['grants4', 'grants6']) {
      const { stdout } = await host.run('nft', ['-j', 'list', 'set', 'inet', 'knockgate', set]);
      const doc = JSON.parse(stdout) as { nftables: { set?: { elem?: unknown[] } }[] };
      for (const item of doc.nftables)
        for (const raw of item.set?.elem ?? []) {
          const e = (raw as { elem?: { val: { concat: [string, string, number] }; expires?: number } }).elem;
          if (!e) throw new Error(`nft ${set}: an element without a timeout: ${JSON.stringify(raw)}`);
          const [address, proto, port] = e.val.concat;
          out.push({ address, port: `${port}/${proto}`, expiresSeconds: e.expires ?? 0 });
        }
    }
    return out;
  }

  async hasElement(source: string): Promise<boolean> {
    return (await this.elements()).some((e) => e.address === source);
  }

  /** A TCP connect from cli to the protected port: 'ok', or 'timeout' when dropped. */
  connect(): Promise<string> {
    return this.lab.cliProbe.connect(this.lab.srvFromCli[4], PORTS.service);
  }

  /** Whether cli gets through: up to three connects of 2 s each (a loaded machine is slow to answer). */
  async letIn(): Promise<boolean> {
    for (let i = 0; i < 3; i++)
      if (
        (await this.lab.cliProbe.connect(this.lab.srvFromCli[4], PORTS.service, { timeoutMs: 2_000 })) ===
        'ok'
      )
        return true;
    return false;
  }

  /** What breaks the invariant right now (empty: it holds). `slackMs` absorbs propagation. */
  async violations(slackMs = 2_000): Promise<string[]> {
    const elements = await this.elements();
    const now = Date.now();
    const grants = this.grants();
    const out: string[] = [];
    const hostOf = (g: AccessGrant) => g.spec.source.replace(/\/(32|128)$/, '');
    const liveAt = (g: AccessGrant, t: number) =>
      !g.metadata.deletionTimestamp &&
      !TERMINAL.has(g.status?.phase ?? '') &&
      Date.parse(g.spec.expiresAt) > t &&
      g.spec.targets?.nodes?.includes(NODE) === true;
    for (const e of elements) {
      const owners = grants.filter(
        (g) => hostOf(g) === e.address && g.spec.ports.includes(e.port) && liveAt(g, now - slackMs),
      );
      if (owners.length === 0) {
        out.push(`kernel element ${e.address} ${e.port} without a live grant`);
        continue;
      }
      const end = Math.max(...owners.map((g) => Date.parse(g.spec.expiresAt)));
      if (now + e.expiresSeconds * 1000 > end + 1_000)
        out.push(`kernel element ${e.address} ${e.port} outlives its grant (${e.expiresSeconds} s left)`);
    }
    for (const g of grants) {
      const name = g.metadata.name;
      if (!g.spec.targets?.nodes?.includes(NODE)) continue;
      const end = Date.parse(g.spec.expiresAt);
      const inKernel = elements.some((e) => e.address === hostOf(g));
      if (liveAt(g, now + slackMs)) {
        if (!inKernel) out.push(`live grant ${name} not in the kernel`);
        if (g.status?.phase !== 'Active')
          out.push(`live grant ${name} is ${g.status?.phase ?? 'without a phase'}`);
        if (g.status?.nodes?.[NODE]?.state !== 'Applied')
          out.push(`live grant ${name}: node ${g.status?.nodes?.[NODE]?.state ?? 'not reported'}`);
      } else if (end < now - slackMs) {
        if (inKernel && !grants.some((o) => o !== g && hostOf(o) === hostOf(g) && liveAt(o, now)))
          out.push(`grant ${name} past its expiry still in the kernel`);
        if (g.status?.phase === 'Active' || g.status?.phase === 'Pending' || !g.status?.phase)
          out.push(`grant ${name} past its expiry is ${g.status?.phase ?? 'without a phase'}`);
      }
    }
    return out;
  }

  /** Wait (bounded) until the invariant holds; fails with what still breaks it. */
  async invariant(what: string, timeoutMs = 30_000): Promise<void> {
    let last: string[] = [];
    try {
      await waitFor(
        async () => {
          last = await this.violations();
          return last.length === 0;
        },
        { what, timeoutMs, intervalMs: 250 },
      );
    } catch {
      throw new Error(`${what}: the invariant does not hold after ${timeoutMs} ms:\n  ${last.join('\n  ')}`);
    }
  }
}

/**
 * A TCP link from one client to the emulator (on loopback) that can be cut like a network
 * partition: partition() silences every open connection (nothing more is forwarded either way, no
 * reset: a request in flight just hangs) and holds new connections unanswered; heal() drops what
 * was held, so the client's timeouts and reconnects take over, and forwards again.
 */
export class Link {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly held = new Set<Socket>();
  private cut = false;

  constructor(private readonly targetPort: () => number) {}

  listen(): Promise<number> {
    const server = createServer((inner) => this.accept(inner));
    this.server = server;
    return new Promise((resolve, reject) =>
      server.once('error', reject).listen(0, '127.0.0.1', () => {
        resolve((server.address() as { port: number }).port);
      }),
    );
  }

  private accept(inner: Socket): void {
    inner.on('error', () => inner.destroy());
    if (this.cut) {
      inner.pause();
      this.held.add(inner);
      inner.once('close', () => this.held.delete(inner));
      return;
    }
    const outer = tcpConnect(this.targetPort(), '127.0.0.1');
    const pair: [Socket, Socket] = [inner, outer];
    this.pairs.add(pair);
    inner.pipe(outer).pipe(inner);
    const end = () => {
      this.pairs.delete(pair);
      inner.destroy();
      outer.destroy();
    };
    inner.on('close', end);
    outer.on('error', end).on('close', end);
  }

  partition(): void {
    this.cut = true;
    for (const [inner, outer] of this.pairs) {
      inner.unpipe(outer);
      outer.unpipe(inner);
      inner.pause();
      outer.pause();
      this.held.add(inner);
      this.held.add(outer);
    }
    this.pairs.clear();
  }

  heal(): void {
    this.cut = false;
    for (const s of this.held) s.destroy();
    this.held.clear();
  }

  close(): void {
    this.heal();
    for (const [inner, outer] of this.pairs) {
      inner.destroy();
      outer.destroy();
    }
    this.server?.close();
  }
}
