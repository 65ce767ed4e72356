// The node agent's logic on a FakeClock, with in-memory caches and a fake firewall: what is applied
// and removed, what status.nodes[node] says and why, local expiry while the API cannot be written,
// and that an empty or unsynced cache never closes anything.

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../api/clock.js';
import type { InformerEvent } from '../controller/kube/informer.js';
import type { AccessGrant, KnockPolicy, NodeStatus } from '../api/types.js';
import { NodeAgent } from '../controller/agent/agent.js';
import { parseAgentConfig } from '../controller/agent/config.js';
import { GrantGoneError, type NodeStatusWriter, type ObjectCache } from '../controller/agent/sources.js';
import { FirewallInputError } from '../controller/firewall/types.js';
import { FakeFirewall } from './helpers/fake-firewall.js';

const NODE = 'node-a';
const logger = pino({ level: process.env.AGENT_LOG ?? 'silent' });

class FakeCache<
  T extends { metadata: { name: string; resourceVersion?: string } },
> implements ObjectCache<T> {
  isSynced = false;
  private readonly items = new Map<string, T>();
  private readonly listeners = new Set<(e: InformerEvent<T>) => void>();
  private rv = 1;

  get(name: string) {
    return this.items.get(name);
  }
  list() {
    return [...this.items.values()];
  }
  waitForSync(): Promise<void> {
    return this.isSynced ? Promise.resolve() : new Promise(() => undefined);
  }
  subscribe(l: (e: InformerEvent<T>) => void) {
    this.listeners.add(l);
    return () => void this.listeners.delete(l);
  }
  put(obj: T): void {
    const copy = structuredClone(obj);
    copy.metadata.resourceVersion = String(++this.rv);
    const type = this.items.has(copy.metadata.name) ? 'MODIFIED' : 'ADDED';
    this.items.set(copy.metadata.name, copy);
    if (this.isSynced) for (const l of this.listeners) l({ type, object: copy });
  }
  remove(name: string): void {
    const old = this.items.get(name);
    if (!old) return;
    this.items.delete(name);
    if (this.isSynced) for (const l of this.listeners) l({ type: 'DELETED', object: old });
  }
  /** A relist: replace everything at once (what an informer does after a 410 or a resync). */
  sync(): void {
    this.isSynced = true;
  }
}

/** The API's status subresource: records patches into the grant cache, or fails while "down". */
class FakeStatus implements NodeStatusWriter {
  down = false;
  writes: string[] = [];
  constructor(private readonly grants: FakeCache<AccessGrant>) {}
  async patch(name: string, node: string, status: NodeStatus): Promise<void> {
    if (this.down) throw new Error('API server unreachable: connect ECONNREFUSED');
    const g = this.grants.get(name);
    if (!g) throw new GrantGoneError(name);
    const next = structuredClone(g);
    next.status = { ...next.status, nodes: { ...next.status?.nodes, [node]: status } };
    this.writes.push(`${name} ${status.state}${status.message ? `: ${status.message}` : ''}`);
    this.grants.put(next);
  }
}

function policy(name: string, over: Partial<KnockPolicy['spec']['grant']> = {}): KnockPolicy {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name, uid: `uid-${name}` },
    spec: {
      knock: { sequence: ['7000/tcp', '7001/tcp'] },
      grant: { ports: ['22/tcp'], durationSeconds: 60, targets: { node: { mode: 'Local' } }, ...over },
    },
  };
}

function grant(
  name: string,
  clock: FakeClock,
  over: Partial<AccessGrant['spec']> = {},
  seconds = 60,
): AccessGrant {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'AccessGrant',
    metadata: { name, uid: `uid-${name}` },
    spec: {
      source: '10.77.0.5/32',
      ports: ['22/tcp'],
      expiresAt: new Date(clock.now() + seconds * 1000).toISOString(),
      policyRef: { name: 'ssh' },
      method: 'knock',
      observedBy: NODE,
      targets: { nodes: [NODE] },
      ...over,
    },
  };
}

const CONFIG = `apiVersion: knockgate.io/v1alpha1
kind: AgentConfig
nodeName: node-a
protectedPorts: ["22/tcp", "2222/tcp"]
neverGrant: ["10.99.0.0/16"]
largestManualPrefix: {ipv4: 30, ipv6: 126}
resyncIntervalSeconds: 30
`;

interface Rig {
  clock: FakeClock;
  grants: FakeCache<AccessGrant>;
  policies: FakeCache<KnockPolicy>;
  status: FakeStatus;
  firewall: FakeFirewall;
  agent: NodeAgent;
  /** Let promises run, then advance the clock by `ms` (in steps), letting them run again. */
  tick(ms?: number): Promise<void>;
  nodeStatus(name: string): NodeStatus | undefined;
}

const agents: NodeAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
});

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

async function rig(
  opts: { synced?: boolean; policies?: KnockPolicy[]; extraConfig?: string } = {},
): Promise<Rig> {
  const clock = new FakeClock(Date.UTC(2026, 10, 25, 12));
  const grants = new FakeCache<AccessGrant>();
  const policies = new FakeCache<KnockPolicy>();
  for (const p of opts.policies ?? [policy('ssh')]) policies.put(p);
  const status = new FakeStatus(grants);
  const firewall = new FakeFirewall();
  const config = parseAgentConfig('agent.yaml', CONFIG + (opts.extraConfig ?? ''));
  const agent = new NodeAgent({
    config,
    firewall,
    sources: { grants, policies, status, start: () => undefined, stop: async () => undefined },
    clock,
    logger,
    random: () => 0,
    startupListWaitMs: opts.synced === false ? 0 : 1_000,
  });
  agents.push(agent);
  if (opts.synced !== false) {
    grants.sync();
    policies.sync();
  }
  await agent.start();
  await flush();
  const tick = async (ms = 0) => {
    await flush();
    for (let left = ms; left > 0; left -= 250) {
      clock.advance(Math.min(250, left));
      await flush();
    }
    await agent.state.idle();
    await flush();
  };
  await tick();
  return {
    clock,
    grants,
    policies,
    status,
    firewall,
    agent,
    tick,
    nodeStatus: (name) => grants.get(name)?.status?.nodes?.[NODE],
  };
}

describe('agent: apply and remove', () => {
  it('installs the drops from its own config before anything is listed', async () => {
    const r = await rig({ synced: false, policies: [] });
    expect(r.firewall.config?.protectedPorts).toEqual([
      { port: 22, proto: 'tcp' },
      { port: 2222, proto: 'tcp' },
    ]);
    expect(r.firewall.log[0]).toBe('install 22/tcp,2222/tcp');
  });

  it('opens a good grant, reports Applied, extends it, and closes it when deleted', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-0a4d0005', r.clock));
    await r.tick();
    expect(r.firewall.entries.get('ssh-0a4d0005')).toMatchObject({ source: '10.77.0.5/32' });
    expect(r.nodeStatus('ssh-0a4d0005')).toMatchObject({ state: 'Applied' });

    const later = grant('ssh-0a4d0005', r.clock, {}, 50);
    r.clock.advance(20_000);
    r.grants.put({ ...later, status: r.grants.get('ssh-0a4d0005')!.status! });
    await r.tick();
    expect(r.firewall.entries.get('ssh-0a4d0005')!.expiresAt).toBe(Date.parse(later.spec.expiresAt));

    r.grants.remove('ssh-0a4d0005');
    await r.tick();
    expect(r.firewall.entries.has('ssh-0a4d0005')).toBe(false);
    expect(r.firewall.log).toContain('remove ssh-0a4d0005 revoked');
    expect(r.status.writes).toEqual(['ssh-0a4d0005 Applied']); // one write: later passes saw it already
  });

  it('ignores grants for other nodes, and removes one re-targeted away', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-0a4d0006', r.clock, { targets: { nodes: ['node-b'] }, observedBy: 'node-b' }));
    r.grants.put(grant('ssh-0a4d0007', r.clock));
    await r.tick();
    expect([...r.firewall.entries.keys()]).toEqual(['ssh-0a4d0007']);
    r.grants.put(grant('ssh-0a4d0007', r.clock, { targets: { nodes: ['node-b'] } }));
    await r.tick();
    expect(r.firewall.entries.size).toBe(0);
    expect(r.nodeStatus('ssh-0a4d0006')).toBeUndefined();
  });

  it('closes a grant at its expiresAt on the local timer, and one the controller marks terminal', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-0a4d0008', r.clock, {}, 30));
    r.grants.put(grant('ssh-0a4d0009', r.clock, {}, 60));
    await r.tick();
    await r.tick(29_000);
    expect(r.firewall.entries.has('ssh-0a4d0008')).toBe(true);
    await r.tick(1_000);
    expect(r.firewall.entries.has('ssh-0a4d0008')).toBe(false);
    expect(r.firewall.log).toContain('remove ssh-0a4d0008 expired');
    expect(r.nodeStatus('ssh-0a4d0008')).toMatchObject({ state: 'Removed', message: 'expired' });

    const revoked = structuredClone(r.grants.get('ssh-0a4d0009')!);
    revoked.status = { ...revoked.status, phase: 'Revoked' };
    r.grants.put(revoked);
    await r.tick();
    expect(r.firewall.entries.size).toBe(0);
    expect(r.nodeStatus('ssh-0a4d0009')).toMatchObject({ state: 'Removed', message: 'grant Revoked' });
  });

  it('a grant being deleted (finalizer pending) is closed and reported Removed', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-0a4d000a', r.clock));
    await r.tick();
    const deleting = structuredClone(r.grants.get('ssh-0a4d000a')!);
    deleting.metadata.deletionTimestamp = new Date(r.clock.now()).toISOString();
    r.grants.put(deleting);
    await r.tick();
    expect(r.firewall.entries.size).toBe(0);
    expect(r.nodeStatus('ssh-0a4d000a')).toMatchObject({
      state: 'Removed',
      message: 'grant is being deleted',
    });
  });
});

describe('agent: grants that exceed their policy are Failed and apply nothing', () => {
  const cases: [string, (c: FakeClock) => AccessGrant, RegExp][] = [
    [
      'a wider source',
      (c) => grant('wide', c, { source: '10.77.0.0/24' }),
      /^source 10\.77\.0\.0\/24 is not a single host$/,
    ],
    [
      'an extra port',
      (c) => grant('extra', c, { ports: ['22/tcp', '2222/tcp'] }),
      /^port 2222\/tcp is not granted by policy "ssh"$/,
    ],
    [
      'a longer duration',
      (c) => grant('long', c, {}, 3600),
      /^expiresAt \S+Z is further away than policy "ssh" allows \(60 s\)$/,
    ],
    [
      'a security group its policy does not list',
      (c) =>
        grant('other-sg', c, {
          targets: {
            nodes: [NODE],
            awsSecurityGroups: [{ groupId: 'sg-0123456789abcdef0', region: 'eu-west-1' }],
          },
        }),
      /^security group sg-0123456789abcdef0 is not one of policy "ssh"'s targets$/,
    ],
    [
      'an unknown policy',
      (c) => grant('unknown', c, { policyRef: { name: 'rdp' } }),
      /^policy "rdp" does not exist$/,
    ],
    [
      'a method that is not the policy kind',
      (c) => grant('method', c, { method: 'spa' }),
      /^method spa does not match policy "ssh" \(a knock policy\)$/,
    ],
    [
      'a Local policy applied on a node that did not see it',
      (c) => grant('other', c, { observedBy: 'node-b', targets: { nodes: ['node-b', NODE] } }),
      /^policy "ssh" opens only the node that saw the request \(node-b\), not node-a$/,
    ],
    [
      'a neverGrant source',
      (c) => grant('never', c, { source: '10.99.1.1/32' }),
      /^source 10\.99\.1\.1\/32: 10\.99\.1\.1 is never granted on this node$/,
    ],
    ['loopback', (c) => grant('loop', c, { source: '127.0.0.1/32' }), /is never granted on this node$/],
    [
      'a manual grant wider than the largest manual prefix',
      (c) => grant('manual-wide', c, { method: 'manual', policyRef: undefined, source: '10.77.0.0/29' }),
      /^source 10\.77\.0\.0\/29 is wider than the largest manual prefix \/30 of this node$/,
    ],
    [
      'a manual grant of an unprotected port',
      (c) => grant('manual-port', c, { method: 'manual', policyRef: undefined, ports: ['80/tcp'] }),
      /^port 80\/tcp is not protected on this node$/,
    ],
  ];
  for (const [what, make, reason] of cases) {
    it(what, async () => {
      const r = await rig();
      const g = make(r.clock);
      r.grants.put(g);
      await r.tick();
      expect(r.firewall.entries.size).toBe(0);
      expect(r.firewall.log.filter((l) => l.startsWith('add'))).toEqual([]);
      const s = r.nodeStatus(g.metadata.name);
      expect(s?.state).toBe('Failed');
      expect(s?.message).toMatch(reason);
      // Level-based and stable: later passes (events, resyncs) write nothing more.
      await r.tick(35_000);
      expect(r.status.writes.filter((w) => w.startsWith(`${g.metadata.name} `))).toHaveLength(1);
    });
  }

  it('a grant edited to exceed its policy is closed again and Failed', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-0a4d000b', r.clock));
    await r.tick();
    expect(r.firewall.entries.size).toBe(1);
    const edited = structuredClone(r.grants.get('ssh-0a4d000b')!);
    edited.spec.ports = ['22/tcp', '2222/tcp'];
    r.grants.put(edited);
    await r.tick();
    expect(r.firewall.entries.size).toBe(0);
    expect(r.nodeStatus('ssh-0a4d000b')).toMatchObject({ state: 'Failed' });
  });

  it('a manual grant within the prefix bound opens one entry per address', async () => {
    const r = await rig();
    r.grants.put(
      grant('manual-ok', r.clock, { method: 'manual', policyRef: undefined, source: '10.77.0.4/30' }),
    );
    await r.tick();
    expect(
      r.firewall
        .grants()
        .map((g) => `${g.name} ${g.source}`)
        .sort(),
    ).toEqual([
      'manual-ok..0 10.77.0.4/32',
      'manual-ok..1 10.77.0.5/32',
      'manual-ok..2 10.77.0.6/32',
      'manual-ok..3 10.77.0.7/32',
    ]);
    expect(r.nodeStatus('manual-ok')?.state).toBe('Applied');
    r.grants.remove('manual-ok');
    await r.tick();
    expect(r.firewall.entries.size).toBe(0);
  });
});

describe('agent: IPv6 and firewall refusals', () => {
  it('opens an IPv6 host grant and an IPv6 manual /126 as four canonical addresses', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-v6', r.clock, { source: 'FD00:77:0:0::5/128' }));
    r.grants.put(
      grant('manual-v6', r.clock, { method: 'manual', policyRef: undefined, source: 'fd00:77::8/126' }),
    );
    await r.tick();
    expect(
      r.firewall
        .grants()
        .map((g) => `${g.name} ${g.source}`)
        .sort(),
    ).toEqual([
      'manual-v6..0 fd00:77::8/128',
      'manual-v6..1 fd00:77::9/128',
      'manual-v6..2 fd00:77::a/128',
      'manual-v6..3 fd00:77::b/128',
      'ssh-v6 fd00:77::5/128',
    ]);
  });

  it('a grant the firewall itself refuses is Failed once, not retried', async () => {
    const r = await rig();
    const add = r.firewall.add.bind(r.firewall);
    let calls = 0;
    r.firewall.add = (g) => {
      calls++;
      return g.name === 'ssh-0a4d0020'
        ? Promise.reject(new FirewallInputError('grant ssh-0a4d0020: refused'))
        : add(g);
    };
    r.grants.put(grant('ssh-0a4d0020', r.clock));
    await r.tick(10_000);
    expect(r.nodeStatus('ssh-0a4d0020')).toMatchObject({
      state: 'Failed',
      message: 'firewall: grant ssh-0a4d0020: refused',
    });
    expect(calls).toBeLessThanOrEqual(2); // the event's pass and the one its status write causes
    expect(r.firewall.entries.size).toBe(0);
  });

  it('passes Audit mode and the config lists to the firewall as they are', async () => {
    const r = await rig({
      extraConfig:
        'mode: Audit\nalwaysAllow: ["10.1.0.0/16"]\nknockPorts: ["62201/udp"]\nconntrackFlush: true\n',
    });
    expect(r.firewall.config).toMatchObject({
      mode: 'Audit',
      alwaysAllow: ['10.1.0.0/16'],
      knockPorts: [{ port: 62201, proto: 'udp' }],
      conntrackFlush: true,
    });
  });
});

describe('agent: policies', () => {
  it('a deleted policy closes its grants (Failed: policy gone), others stay', async () => {
    const r = await rig({ policies: [policy('ssh'), policy('rdp', { ports: ['3389/tcp'] })] });
    r.grants.put(grant('ssh-0a4d000c', r.clock));
    r.grants.put(grant('rdp-0a4d000c', r.clock, { policyRef: { name: 'rdp' }, ports: ['3389/tcp'] }));
    await r.tick();
    expect(r.firewall.entries.size).toBe(2);
    r.policies.remove('rdp');
    await r.tick();
    expect([...r.firewall.entries.keys()]).toEqual(['ssh-0a4d000c']);
    expect(r.nodeStatus('rdp-0a4d000c')).toMatchObject({
      state: 'Failed',
      message: 'policy "rdp" does not exist',
    });
  });

  it('grants seen before any policy are decided as soon as a policy arrives (not at the next resync)', async () => {
    const r = await rig({ policies: [] });
    r.grants.put(grant('ssh-0a4d0016', r.clock));
    r.grants.put(grant('rdp-0a4d0016', r.clock, { policyRef: { name: 'rdp' } }));
    await r.tick();
    expect(r.firewall.entries.size).toBe(0);
    expect(r.status.writes).toEqual([]);
    r.policies.put(policy('ssh'));
    await r.tick();
    expect([...r.firewall.entries.keys()]).toEqual(['ssh-0a4d0016']);
    expect(r.nodeStatus('rdp-0a4d0016')).toMatchObject({
      state: 'Failed',
      message: 'policy "rdp" does not exist',
    });
  });

  it('a policy narrowed to fewer ports closes the grants it no longer allows', async () => {
    const r = await rig({ policies: [policy('ssh', { ports: ['22/tcp', '2222/tcp'] })] });
    r.grants.put(grant('ssh-0a4d000d', r.clock, { ports: ['2222/tcp'] }));
    await r.tick();
    expect(r.firewall.entries.size).toBe(1);
    r.policies.put(policy('ssh'));
    await r.tick();
    expect(r.firewall.entries.size).toBe(0);
  });

  it('an empty policy list keeps the last known state (drops and grants), and applies nothing new', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-0a4d000e', r.clock));
    await r.tick();
    r.policies.remove('ssh');
    r.grants.put(grant('ssh-0a4d000f', r.clock));
    await r.tick(31_000); // a periodic resync too
    expect([...r.firewall.entries.keys()]).toEqual(['ssh-0a4d000e']);
    expect(r.firewall.config?.protectedPorts).toHaveLength(2);
    expect(r.firewall.log.some((l) => l.startsWith('remove') || l === 'cleanup')).toBe(false);
    // Still closed on time.
    await r.tick(30_000);
    expect(r.firewall.entries.size).toBe(0);
  });
});

describe('agent: the API unreachable', () => {
  it('keeps expiring grants on time, and reports once the API is back', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-0a4d0010', r.clock, {}, 20));
    r.grants.put(grant('ssh-0a4d0011', r.clock, {}, 45));
    await r.tick();
    r.status.down = true;
    await r.tick(20_000);
    expect(r.firewall.entries.has('ssh-0a4d0010')).toBe(false);
    await r.tick(25_000);
    expect(r.firewall.entries.size).toBe(0);
    expect(r.nodeStatus('ssh-0a4d0010')?.state).toBe('Applied'); // not written yet
    expect(r.agent.state.statusBacklog).toBe(2);
    r.status.down = false;
    await r.tick(60_000); // the longest status backoff (30 s) at most
    expect(r.nodeStatus('ssh-0a4d0010')).toMatchObject({ state: 'Removed', message: 'expired' });
    expect(r.nodeStatus('ssh-0a4d0011')).toMatchObject({ state: 'Removed', message: 'expired' });
    expect(r.agent.state.statusBacklog).toBe(0);
  });

  it('opens nothing and closes nothing before both caches have listed', async () => {
    const r = await rig({ synced: false });
    await r.tick(31_000); // a resync before the lists: the last known state (nothing) is kept
    r.grants.put(grant('ssh-0a4d0012', r.clock));
    await r.tick(1_000);
    expect(r.firewall.entries.size).toBe(0);
    r.grants.sync();
    r.policies.sync();
    await r.tick(30_000); // the periodic resync notices
    expect(r.firewall.entries.size).toBe(1);
  });

  it('a firewall failure is reported Pending (not final) and retried with backoff until it applies', async () => {
    const r = await rig();
    // Fails twice: the pass of the event, and the one its own Pending status write causes.
    const add = r.firewall.add.bind(r.firewall);
    let failures = 2;
    r.firewall.add = (g) => (failures-- > 0 ? Promise.reject(new Error('nft: netlink busy')) : add(g));
    r.grants.put(grant('ssh-0a4d0013', r.clock));
    await r.tick();
    expect(r.firewall.entries.size).toBe(0);
    expect(r.nodeStatus('ssh-0a4d0013')).toMatchObject({
      state: 'Pending',
      message: 'firewall: nft: netlink busy (retrying)',
    });
    await r.tick(2_000);
    expect(r.firewall.entries.size).toBe(1);
    expect(r.nodeStatus('ssh-0a4d0013')).toMatchObject({ state: 'Applied' });
    expect(r.nodeStatus('ssh-0a4d0013')?.message).toBeUndefined();
  });
});

describe('agent: full resync', () => {
  it('a malformed grant in the cache is Failed and does not stop the others', async () => {
    const r = await rig({ synced: false });
    const broken = grant('broken', r.clock) as unknown as { spec: Record<string, unknown> };
    delete broken.spec.ports;
    r.grants.put(broken as unknown as AccessGrant);
    r.grants.put(grant('ssh-0a4d0017', r.clock));
    r.grants.sync();
    r.policies.sync();
    r.agent.state.resync();
    await r.tick();
    expect([...r.firewall.entries.keys()]).toEqual(['ssh-0a4d0017']);
    expect(r.nodeStatus('broken')).toMatchObject({ state: 'Failed', message: 'spec.ports: not a list' });
  });

  it('rewrites the whole desired state atomically on a timer, from the caches', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-0a4d0014', r.clock));
    await r.tick();
    // Something removed the kernel entry behind the agent's back.
    r.firewall.entries.clear();
    await r.tick(30_000);
    expect(r.firewall.log.filter((l) => l.startsWith('sync')).at(-1)).toBe('sync ssh-0a4d0014');
    expect(r.firewall.entries.has('ssh-0a4d0014')).toBe(true);
  });

  it('keeps no timers after stop', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-0a4d0015', r.clock));
    await r.tick();
    await r.agent.stop();
    expect(r.clock.pending()).toBe(0);
  });
});

describe('agent: uninstall (the marker seen)', () => {
  it('removes every object (retrying a failed cleanup), reports Removed, acknowledges once, and never touches the firewall again', async () => {
    const r = await rig();
    r.grants.put(grant('ssh-0a4d0020', r.clock));
    await r.tick();
    expect(r.nodeStatus('ssh-0a4d0020')).toMatchObject({ state: 'Applied' });
    const mark = r.firewall.log.length;
    const cleanup = r.firewall.cleanup.bind(r.firewall);
    let failures = 1;
    r.firewall.cleanup = async () => {
      if (failures-- > 0) throw new Error('nft: resource busy');
      return cleanup();
    };
    let acks = 0;
    const done = r.agent.uninstall(async () => void acks++);
    await r.tick(15_000); // past the retry's backoff
    await done;
    expect(r.firewall.log.slice(mark)).toEqual(['cleanup']);
    expect(r.firewall.installed).toBe(false);
    expect(r.firewall.entries.size).toBe(0);
    expect(acks).toBe(1);
    expect(r.nodeStatus('ssh-0a4d0020')).toMatchObject({
      state: 'Removed',
      message: 'knockgate uninstall: firewall objects removed',
    });

    // A grant arriving later, the resync timer (30 s), the first grant's expiry (60 s): nothing is
    // opened, closed or resynced — the firewall is never called again by this process.
    r.grants.put(grant('ssh-0a4d0021', r.clock));
    await r.tick(65_000);
    expect(r.firewall.log.slice(mark)).toEqual(['cleanup']);
    expect(r.firewall.entries.size).toBe(0);
    expect(r.nodeStatus('ssh-0a4d0021')).toBeUndefined(); // never applied here: nothing to report

    expect(r.agent.notReady()).toMatch(/being uninstalled/);
    // A second sighting (a relist of the marker) does nothing more.
    await r.agent.uninstall(async () => void acks++);
    expect(acks).toBe(1);
  });
});
