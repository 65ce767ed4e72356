// One node agent against the in-process Kubernetes API emulator, as its own least-privileged user
// (agentRules), with an in-memory firewall: the rig the agent's Kubernetes tests share. The admin
// user writes policies, grants and Nodes straight into the emulator's store.

import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { systemClock } from '../../api/clock.js';
import type { AccessGrant, KnockPolicy, NodeStatus } from '../../api/types.js';
import { NodeAgent } from '../../controller/agent/agent.js';
import { parseAgentConfig } from '../../controller/agent/config.js';
import { agentKube } from '../../controller/agent/kube.js';
import type { AgentMetrics } from '../../controller/agent/metrics.js';
import { agentRules } from '../../controller/agent/rbac.js';
import { FakeFirewall } from './fake-firewall.js';
import { startEmulatedCluster, type EmulatedCluster } from './kube-store-emulator.js';

export const NODE = 'node-a';
export const WRITE = { fieldValidation: 'Strict' as const, dryRun: false };
export const agentLogger = pino({ level: process.env.AGENT_LOG ?? 'silent' });
/** Short waits so that real-time fault tests stay fast. */
export const QUICK = {
  watchBackoffInitialMs: 50,
  watchBackoffMaxMs: 400,
  requestBackoffInitialMs: 20,
  requestBackoffMaxMs: 200,
};

/** The agent's config file for NODE protecting `ports`. */
export function agentConfig(ports: string[]): string {
  return `apiVersion: knockgate.io/v1alpha1
kind: AgentConfig
nodeName: ${NODE}
protectedPorts: ${JSON.stringify(ports)}
resyncIntervalSeconds: 5
`;
}

export interface AgentRigOptions {
  /** The agent's user name in the emulator (it holds agentRules(NODE)). */
  agentUser: string;
  config: string;
  /** Nodes created before the agent starts, with their labels. */
  nodes?: Record<string, Record<string, string>>;
  metrics?: AgentMetrics;
  /** Start the agent before returning (default true). */
  start?: boolean;
  bookmarkIntervalMs?: number;
}

export interface AgentRig {
  c: EmulatedCluster;
  firewall: FakeFirewall;
  agent: NodeAgent;
  putPolicy(p: KnockPolicy): void;
  putGrant(g: AccessGrant): void;
  putNode(name: string, labels: Record<string, string>): void;
  labelNode(name: string, labels: Record<string, string>): void;
  deletePolicy(name: string): void;
  deleteGrant(name: string): void;
  /** This node's entry in the grant's status.nodes (undefined: no grant or no entry). */
  nodeStatus(name: string): NodeStatus | undefined;
  /** The firewall's remove and cleanup calls, in order. */
  removals(): string[];
  /** Stop the agent, then the emulator. */
  stop(): Promise<void>;
}

export async function startAgentRig(opts: AgentRigOptions): Promise<AgentRig> {
  const c = await startEmulatedCluster({
    ...(opts.bookmarkIntervalMs !== undefined ? { bookmarkIntervalMs: opts.bookmarkIntervalMs } : {}),
    users: [
      {
        name: 'admin',
        token: randomBytes(16).toString('hex'),
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
      },
      { name: opts.agentUser, token: randomBytes(16).toString('hex'), rules: agentRules(NODE) },
    ],
  });
  const api = c.server.api;
  const types = {
    grants: api.type('knockgate.io', 'v1alpha1', 'accessgrants')!,
    policies: api.type('knockgate.io', 'v1alpha1', 'knockpolicies')!,
    nodes: api.type('', 'v1', 'nodes')!,
  };
  const putNode = (name: string, labels: Record<string, string>) =>
    void api.create(
      types.nodes,
      undefined,
      { apiVersion: 'v1', kind: 'Node', metadata: { name, labels } },
      WRITE,
    );
  for (const [name, labels] of Object.entries(opts.nodes ?? {})) putNode(name, labels);
  const firewall = new FakeFirewall();
  const agent = new NodeAgent({
    config: parseAgentConfig('agent.yaml', opts.config),
    firewall,
    sources: agentKube(c.kubeConfigFor(opts.agentUser), systemClock, agentLogger, QUICK),
    clock: systemClock,
    logger: agentLogger,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  if (opts.start ?? true) await agent.start();
  const get = (name: string) => {
    try {
      return api.get(types.grants, undefined, name) as unknown as AccessGrant;
    } catch {
      return undefined;
    }
  };
  return {
    c,
    firewall,
    agent,
    putPolicy: (p) => void api.create(types.policies, undefined, structuredClone(p), WRITE),
    putGrant: (g) => void api.create(types.grants, undefined, structuredClone(g), WRITE),
    putNode,
    labelNode: (name, labels) =>
      void api.patch(
        types.nodes,
        undefined,
        name,
        'application/merge-patch+json',
        { metadata: { labels } },
        undefined,
        WRITE,
      ),
    deletePolicy: (name) => void api.delete(types.policies, undefined, name, { dryRun: false }),
    deleteGrant: (name) => void api.delete(types.grants, undefined, name, { dryRun: false }),
    nodeStatus: (name) => get(name)?.status?.nodes?.[NODE],
    removals: () => firewall.log.filter((l) => l.startsWith('remove') || l.startsWith('cleanup')),
    stop: async () => {
      await agent.stop();
      await c.stop();
    },
  };
}
