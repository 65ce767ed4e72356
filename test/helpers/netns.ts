// Test hosts made of network namespaces joined by veth pairs. Addresses are in 10.0.0.0/8 and
// fd00::/8 only, no default route: test traffic never leaves the namespaces a test made.
//
//   const net = await Topology.create(['cli', 'srv']);       // a bridge-less pair: cli <-> srv
//   net.ns('srv').spawn('fwknopd', [...]); net.ns('cli').run('fwknop', [...]);
//   await net.destroy();                                      // kills what it spawned, deletes the ns
//
// With more than two hosts the first one is the "server" and every other host gets its own veth
// pair to it (a star), each pair on its own /24 and /64.

import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Why root-only tests cannot run here, or undefined when they can. In CI they must run. */
export function netnsUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  return undefined;
}

/**
 * For describe.skipIf(): skip with a printed reason outside CI; inside CI (CI=true) never skip, so a
 * missing privilege fails loudly instead of hiding tests.
 */
export function skipWithoutNetns(what: string): boolean {
  const reason = netnsUnavailableReason();
  if (!reason) return false;
  if (process.env.CI === 'true') throw new Error(`${what}: ${reason}, and CI must run it`);
  console.warn(`SKIP ${what}: ${reason}`);
  return true;
}

export async function sh(cmd: string, args: string[], opts: { timeoutMs?: number } = {}) {
  return execFileP(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 });
}

let counter = 0;

export class Host {
  readonly children: ChildProcess[] = [];
  /** IPv4 address per peer host name, e.g. addr4['srv'] on the cli side means the address facing srv. */
  readonly addr4: Record<string, string> = {};
  readonly addr6: Record<string, string> = {};
  /** The veth interface name facing each peer. */
  readonly ifname: Record<string, string> = {};

  constructor(
    readonly role: string,
    readonly netns: string,
  ) {}

  /** Run a command to completion inside this namespace. */
  run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}) {
    return sh('ip', ['netns', 'exec', this.netns, cmd, ...args], opts);
  }

  /** Start a long-running process inside this namespace; destroy() stops it by PID. */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.netns, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...opts,
    });
    this.children.push(child);
    return child;
  }

  /** The first address of this host (v4), whichever peer it faces. */
  get ip4(): string {
    return Object.values(this.addr4)[0]!;
  }
  get ip6(): string {
    return Object.values(this.addr6)[0]!;
  }
}

export class Topology {
  private constructor(
    readonly hosts: Map<string, Host>,
    readonly tag: string,
  ) {}

  ns(role: string): Host {
    const h = this.hosts.get(role);
    if (!h) throw new Error(`no host ${role} in topology`);
    return h;
  }

  /**
   * Create hosts; the first is the hub. Host i (i ≥ 1) is joined to the hub by veth pair i with
   * 10.<tagbyte>.<i>.1 (hub) / 10.<tagbyte>.<i>.2 (host) and fd00:<tagbyte>:<i>::1 / ::2.
   */
  static async create(roles: string[]): Promise<Topology> {
    const tagByte = ((process.pid * 7 + counter++) % 200) + 20;
    const tag = `kg${process.pid % 100000}x${counter}`;
    const hosts = new Map<string, Host>();
    const topo = new Topology(hosts, tag);
    try {
      for (const role of roles) {
        const h = new Host(role, `${tag}-${role}`);
        hosts.set(role, h);
        await sh('ip', ['netns', 'add', h.netns]);
        await h.run('ip', ['link', 'set', 'lo', 'up']);
      }
      const hub = hosts.get(roles[0]!)!;
      for (let i = 1; i < roles.length; i++) {
        const other = hosts.get(roles[i]!)!;
        const a = `kgv${tagByte}${i}a`;
        const b = `kgv${tagByte}${i}b`;
        await sh('ip', [
          'link',
          'add',
          a,
          'netns',
          hub.netns,
          'type',
          'veth',
          'peer',
          'name',
          b,
          'netns',
          other.netns,
        ]);
        const pairs: [Host, string, Host, number][] = [
          [hub, a, other, 1],
          [other, b, hub, 2],
        ];
        for (const [h, ifn, peer, hostPart] of pairs) {
          h.ifname[peer.role] = ifn;
          h.addr4[peer.role] = `10.${tagByte}.${i}.${hostPart}`;
          h.addr6[peer.role] = `fd00:${tagByte}:${i}::${hostPart}`;
          await h.run('ip', ['addr', 'add', `${h.addr4[peer.role]}/24`, 'dev', ifn]);
          await h.run('ip', ['-6', 'addr', 'add', `${h.addr6[peer.role]}/64`, 'dev', ifn, 'nodad']);
          await h.run('ip', ['link', 'set', ifn, 'up']);
        }
      }
      // Spokes reach each other through the hub only if a test asks for forwarding; by default the
      // hub is a host, not a router.
      return topo;
    } catch (err) {
      await topo.destroy();
      throw err;
    }
  }

  /** Stop every process started in the topology (by PID) and delete the namespaces. */
  async destroy(): Promise<void> {
    for (const h of this.hosts.values()) {
      for (const c of h.children) {
        if (c.exitCode === null && c.signalCode === null && c.pid) {
          try {
            process.kill(c.pid, 'SIGTERM');
          } catch {
            /* already gone */
          }
        }
      }
    }
    await Promise.all(
      [...this.hosts.values()].flatMap((h) =>
        h.children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              const t = setTimeout(() => {
                try {
                  if (c.pid) process.kill(c.pid, 'SIGKILL');
                } catch {
                  /* gone */
                }
                resolve();
              }, 3000);
              c.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
            }),
        ),
      ),
    );
    for (const h of this.hosts.values()) {
      // Processes that ip netns exec started may have children of their own; any left in the
      // namespace are found by PID through `ip netns pids` and stopped before the namespace goes.
      try {
        const { stdout } = await sh('ip', ['netns', 'pids', h.netns]);
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
      await sh('ip', ['netns', 'del', h.netns]).catch(() => undefined);
    }
  }
}

// waitFor lives in wait.ts so tests that only poll (no namespaces) stay out of the netns lane.
export { waitFor } from './wait.js';
