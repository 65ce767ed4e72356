// The agent's Kubernetes side: informers (list+watch, backoff, resync) over AccessGrants and
// KnockPolicies, and the writer of this node's status.nodes entry (a merge patch of the status
// subresource holding only that key, so agents never conflict and need no read first).
//
// and a cache of this node's own Node object (list+watch with fieldSelector metadata.name=NODE), whose
// labels decide Selector-mode grants.
//
// RBAC this needs (rbac.ts, AGENT_CLUSTER_RULES): get, list, watch on accessgrants and
// knockpolicies; patch on accessgrants/status; get, list, watch on its own node.

import { CoreV1Api, type KubeConfig, type KubernetesListObject } from '@kubernetes/client-node';
import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { AccessGrant, KnockPolicy, NodeStatus } from '../../api/types.js';
import { KubeApiError } from '../kube/errors.js';
import { KubeInformer, type CachedObject } from '../kube/informer.js';
import { applyRequestTimeout, requestTimeoutOf } from '../kube/request.js';
import { ResourceClient } from '../kube/resource-client.js';
import { GrantGoneError, type NodeObject, type NodeStatusWriter } from './sources.js';

export interface AgentKubeTuning {
  watchBackoffInitialMs?: number;
  watchBackoffMaxMs?: number;
  /** Informer relist period (0 = none). */
  informerResyncMs?: number;
  requestAttempts?: number;
  requestBackoffInitialMs?: number;
  requestBackoffMaxMs?: number;
}

export interface AgentKube {
  grants: KubeInformer<AccessGrant & CachedObject>;
  policies: KubeInformer<KnockPolicy & CachedObject>;
  /** This node's Node object (created on first call; started with the others). */
  node(name: string): KubeInformer<NodeObject & CachedObject>;
  status: NodeStatusWriter;
  /** Both watches listed and no list/watch error since. */
  apiUp(): boolean;
  start(): void;
  stop(): Promise<void>;
}

export function agentKube(
  kubeConfig: KubeConfig,
  clock: Clock,
  logger: Logger,
  tuning: AgentKubeTuning = {},
  random?: () => number,
): AgentKube {
  // Every request bounded (loadKubeConfig does this already; a KubeConfig made elsewhere gets the default).
  if (requestTimeoutOf(kubeConfig) === undefined) applyRequestTimeout(kubeConfig);
  const retry = {
    clock,
    attempts: tuning.requestAttempts,
    initialMs: tuning.requestBackoffInitialMs,
    maxMs: tuning.requestBackoffMaxMs,
    random,
  };
  const grantClient = new ResourceClient<AccessGrant>(kubeConfig, 'accessgrants', 'accessgrant', retry);
  const policyClient = new ResourceClient<KnockPolicy>(kubeConfig, 'knockpolicies', 'knockpolicy', retry);
  const informerOpts = {
    kubeConfig,
    clock,
    logger,
    backoffInitialMs: tuning.watchBackoffInitialMs,
    backoffMaxMs: tuning.watchBackoffMaxMs,
    resyncIntervalMs: tuning.informerResyncMs,
    random,
  };
  const grants = new KubeInformer<AccessGrant & CachedObject>({
    ...informerOpts,
    path: grantClient.path,
    list: () => grantClient.list(),
    resource: 'accessgrants',
  });
  const policies = new KubeInformer<KnockPolicy & CachedObject>({
    ...informerOpts,
    path: policyClient.path,
    list: () => policyClient.list(),
    resource: 'knockpolicies',
  });
  const status: NodeStatusWriter = {
    async patch(name: string, node: string, s: NodeStatus): Promise<void> {
      // message: null deletes an old message (a merge patch keeps fields it does not name).
      const entry = { state: s.state, since: s.since, message: s.message ?? null };
      try {
        await grantClient.mergePatchStatus(name, { status: { nodes: { [node]: entry } } });
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404)
          throw new GrantGoneError(`accessgrant ${name} is gone`);
        throw err;
      }
    },
  };
  const core = kubeConfig.makeApiClient(CoreV1Api);
  let nodeInformer: KubeInformer<NodeObject & CachedObject> | undefined;
  let started = false;
  return {
    grants,
    policies,
    node(name: string) {
      if (nodeInformer) return nodeInformer;
      // One object, by name: what RBAC's resourceNames allows for list and watch.
      const fieldSelector = `metadata.name=${name}`;
      nodeInformer = new KubeInformer<NodeObject & CachedObject>({
        ...informerOpts,
        path: '/api/v1/nodes',
        fieldSelector,
        list: () =>
          core.listNode({ fieldSelector }) as unknown as Promise<
            KubernetesListObject<NodeObject & CachedObject>
          >,
        resource: `nodes/${name}`,
      });
      if (started) nodeInformer.start();
      return nodeInformer;
    },
    status,
    apiUp: () =>
      grants.isSynced &&
      policies.isSynced &&
      grants.lastError === undefined &&
      policies.lastError === undefined,
    start() {
      started = true;
      grants.start();
      policies.start();
      nodeInformer?.start();
    },
    async stop() {
      await Promise.all([grants.stop(), policies.stop(), nodeInformer?.stop()]);
    },
  };
}
