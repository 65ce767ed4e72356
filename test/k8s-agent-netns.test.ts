// The node agent end to end on one emulated node: the API emulator, the real nftables firewall in a
// network namespace ("srv", via commandPrefix), and real TCP connects from a granted client ("cli")
// and a host that is never granted ("third"). A grant opens the protected port for its source only;
// deletion and expiry close it; a grant that exceeds its policy opens nothing; a restarted agent
// keeps the door of a live grant open.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../api/clock.js';
import type { AccessGrant, KnockPolicy } from '../api/types.js';
import { NodeAgent } from '../controller/agent/agent.js';
import { parseAgentConfig } from '../controller/agent/config.js';
import { agentKube } from '../controller/agent/kube.js';
import { createFirewall } from '../controller/firewall/firewall.js';
import type { Firewall } from '../controller/firewall/types.js';
import { startEmulatedCluster, type EmulatedCluster } from './helpers/kube-store-emulator.js';
import { makeLab, PORTS, silentLogger, type Lab } from './helpers/firewall-scenarios.js';
import { skipWithoutNetns, waitFor } from './helpers/netns.js';

const NODE = 'srv-node';
const WRITE = { fieldValidation: 'Strict' as const, dryRun: false };
const QUICK = {
  watchBackoffInitialMs: 50,
  watchBackoffMaxMs: 400,
  requestBackoffInitialMs: 20,
  requestBackoffMaxMs: 200,
};
const CONFIG = `apiVersion: knockgate.io/v1alpha1
kind: AgentConfig
nodeName: ${NODE}
protectedPorts: ["${PORTS.service}/tcp"]
knockPorts: ["${PORTS.knockTcp}/tcp"]
backend: nftables
resyncIntervalSeconds: 5
`;

describe.skipIf(skipWithoutNetns('agent nftables e2e'))('agent with nftables in a namespace', () => {
  let lab: Lab;
  let cluster: EmulatedCluster;
  let agent: NodeAgent | undefined;
  let cli4: string;
  let srv4: string;
  const firewalls: Firewall[] = [];

  const firewall = () => {
    const fw = createFirewall({
      backend: 'nftables',
      logger: silentLogger,
      clock: systemClock,
      commandPrefix: ['ip', 'netns', 'exec', lab.srv.netns],
    });
    firewalls.push(fw);
    return fw;
  };
  const startAgent = async () => {
    const a = new NodeAgent({
      config: parseAgentConfig('agent.yaml', CONFIG),
      firewall: firewall(),
      sources: agentKube(cluster.kubeConfig, systemClock, silentLogger, QUICK),
      clock: systemClock,
      logger: silentLogger,
    });
    await a.start();
    return a;
  };
  const api = () => ({
    grants: cluster.server.api.type('knockgate.io', 'v1alpha1', 'accessgrants')!,
    policies: cluster.server.api.type('knockgate.io', 'v1alpha1', 'knockpolicies')!,
  });
  const putGrant = (g: AccessGrant) => void cluster.server.api.create(api().grants, undefined, g, WRITE);
  const deleteGrant = (name: string) =>
    void cluster.server.api.delete(api().grants, undefined, name, { dryRun: false });
  const nodeState = (name: string) =>
    (cluster.server.api.get(api().grants, undefined, name) as unknown as AccessGrant).status?.nodes?.[NODE];
  const connect = (from: 'cli' | 'third') =>
    (from === 'cli' ? lab.cliProbe : lab.thirdProbe).connect(
      from === 'cli' ? srv4 : lab.srvFromThird[4],
      PORTS.service,
    );
  const grant = (name: string, over: Partial<AccessGrant['spec']> = {}, seconds = 300): AccessGrant => ({
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'AccessGrant',
    metadata: { name },
    spec: {
      source: `${cli4}/32`,
      ports: [`${PORTS.service}/tcp`],
      expiresAt: new Date(Date.now() + seconds * 1000).toISOString(),
      policyRef: { name: 'ssh' },
      method: 'knock',
      observedBy: NODE,
      targets: { nodes: [NODE] },
      ...over,
    },
  });

  beforeAll(async () => {
    lab = await makeLab();
    cli4 = lab.cli.addr4.srv!;
    srv4 = lab.srvFromCli[4];
    cluster = await startEmulatedCluster({
      users: [
        {
          name: 'agent',
          token: randomBytes(16).toString('hex'),
          rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
        },
      ],
    });
    const policy: KnockPolicy = {
      apiVersion: 'knockgate.io/v1alpha1',
      kind: 'KnockPolicy',
      metadata: { name: 'ssh' },
      spec: {
        knock: { sequence: [`${PORTS.knockTcp}/tcp`, '7001/tcp'] },
        grant: {
          ports: [`${PORTS.service}/tcp`],
          durationSeconds: 300,
          targets: { node: { mode: 'Local' } },
        },
      },
    };
    cluster.server.api.create(api().policies, undefined, policy, WRITE);
    agent = await startAgent();
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    // What the agents installed goes, with every process of theirs closed.
    for (const fw of firewalls) await fw.close().catch(() => undefined);
    if (lab) {
      const fw = createFirewall({
        backend: 'nftables',
        logger: silentLogger,
        clock: systemClock,
        commandPrefix: ['ip', 'netns', 'exec', lab.srv.netns],
      });
      await fw.cleanup().catch(() => undefined);
      await fw.close();
    }
    await cluster?.stop();
    await lab?.net.destroy();
  }, 60_000);

  it('the protected port is dropped before any grant', async () => {
    await waitFor(
      async () => (await lab.srv.run('nft', ['list', 'table', 'inet', 'knockgate'])).stdout.includes('2222'),
      {
        what: 'the knockgate table',
      },
    );
    expect(await connect('cli')).toBe('timeout');
  });

  it('a grant opens the port for its source only; deleting it closes it', async () => {
    putGrant(grant('ssh-cli'));
    await waitFor(async () => (await connect('cli')) === 'ok', { what: 'cli let in' });
    expect(nodeState('ssh-cli')?.state).toBe('Applied');
    expect(await connect('third')).toBe('timeout');
    deleteGrant('ssh-cli');
    await waitFor(async () => (await connect('cli')) === 'timeout', { what: 'cli shut out again' });
  });

  it('a grant that exceeds its policy opens nothing and is Failed', async () => {
    putGrant(grant('ssh-too-long', {}, 3600));
    await waitFor(() => nodeState('ssh-too-long')?.state === 'Failed', { what: 'Failed' });
    expect(nodeState('ssh-too-long')?.message).toMatch(/is further away than policy "ssh" allows \(300 s\)/);
    expect(await connect('cli')).toBe('timeout');
    deleteGrant('ssh-too-long');
  });

  it('a grant closes at its expiry', async () => {
    putGrant(grant('ssh-short', {}, 4));
    await waitFor(async () => (await connect('cli')) === 'ok', { what: 'cli let in' });
    await waitFor(async () => (await connect('cli')) === 'timeout', {
      what: 'closed at expiry',
      timeoutMs: 15_000,
    });
    await waitFor(() => nodeState('ssh-short')?.state === 'Removed', { what: 'Removed reported' });
    deleteGrant('ssh-short');
  });

  it('a stopped agent leaves the door of a live grant open; a restarted one keeps it and still closes on delete', async () => {
    putGrant(grant('ssh-restart'));
    await waitFor(async () => (await connect('cli')) === 'ok', { what: 'cli let in' });
    await agent!.stop();
    agent = undefined;
    expect(await connect('cli')).toBe('ok'); // the kernel state stays
    agent = await startAgent();
    // start() returns after the install and the first full resync from the lists: open already.
    expect(agent.state.resyncs).toBeGreaterThan(0);
    expect(await connect('cli')).toBe('ok');
    deleteGrant('ssh-restart');
    await waitFor(async () => (await connect('cli')) === 'timeout', { what: 'closed on delete' });
  });
});
