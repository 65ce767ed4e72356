// What the sniffer reads from the API: KnockPolicies (cluster-scoped), Nodes (this node's labels,
// and the nodes a Selector target names) and the Secrets of the release namespace (SPA keys). Each
// is a KubeInformer (list + watch, backoff, relist on 410, resync); every change calls onChange.
//
// RBAC this needs: list and watch on knockpolicies and nodes (cluster-wide), and on secrets in the
// release namespace only.

import type { KubernetesListObject } from '@kubernetes/client-node';
import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { KnockPolicy } from '../../api/types.js';
import { kubeRequest, type KubeTarget } from '../kube/connection.js';
import { KubeInformer, type CachedObject } from '../kube/informer.js';
import { ResourceClient } from '../kube/resource-client.js';
import type { NodeLike, SecretLike } from './selection.js';

export interface ClusterViewOptions {
  kubeConfig: KubeTarget;
  /** The release namespace: the only one whose Secrets are read. */
  namespace: string;
  clock: Clock;
  logger?: Logger;
  onChange: () => void;
  watchBackoffInitialMs?: number;
  watchBackoffMaxMs?: number;
  resyncIntervalMs?: number;
  random?: () => number;
}

type Cached<T> = T & CachedObject;

export class ClusterView {
  readonly policies: KubeInformer<Cached<KnockPolicy>>;
  readonly nodes: KubeInformer<Cached<NodeLike>>;
  readonly secrets: KubeInformer<Cached<SecretLike>>;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(opts: ClusterViewOptions) {
    const list =
      <L>(path: string) =>
      () =>
        kubeRequest<L>(opts.kubeConfig, { method: 'GET', path });
    const policyClient = new ResourceClient<KnockPolicy>(opts.kubeConfig, 'knockpolicies', 'knockpolicy', {
      clock: opts.clock,
    });
    const common = {
      kubeConfig: opts.kubeConfig,
      clock: opts.clock,
      logger: opts.logger,
      backoffInitialMs: opts.watchBackoffInitialMs,
      backoffMaxMs: opts.watchBackoffMaxMs,
      resyncIntervalMs: opts.resyncIntervalMs,
      random: opts.random,
    };
    this.policies = new KubeInformer<Cached<KnockPolicy>>({
      ...common,
      path: policyClient.path,
      resource: 'knockpolicies',
      list: () => policyClient.list(),
    });
    this.nodes = new KubeInformer<Cached<NodeLike>>({
      ...common,
      path: '/api/v1/nodes',
      resource: 'nodes',
      list: list<KubernetesListObject<Cached<NodeLike>>>('/api/v1/nodes'),
    });
    const ns = encodeURIComponent(opts.namespace);
    this.secrets = new KubeInformer<Cached<SecretLike>>({
      ...common,
      path: `/api/v1/namespaces/${ns}/secrets`,
      resource: `secrets in namespace ${opts.namespace}`,
      list: list<KubernetesListObject<Cached<SecretLike>>>(`/api/v1/namespaces/${ns}/secrets`),
    });
    for (const informer of this.all()) this.unsubscribe.push(informer.subscribe(() => opts.onChange()));
  }

  /** Start the three informers and wait for their first lists (rejects after `timeoutMs`). */
  async start(timeoutMs: number): Promise<void> {
    for (const informer of this.all()) informer.start();
    await Promise.all(this.all().map((informer) => informer.waitForSync(timeoutMs)));
  }

  get synced(): boolean {
    return this.all().every((informer) => informer.isSynced);
  }

  /** The first list/watch error still unresolved, if any (for health and messages). */
  lastError(): string | undefined {
    return this.all().find((informer) => informer.lastError)?.lastError?.message;
  }

  async stop(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    await Promise.all(this.all().map((informer) => informer.stop()));
  }

  private all(): KubeInformer<CachedObject>[] {
    return [this.policies, this.nodes, this.secrets] as KubeInformer<CachedObject>[];
  }
}
