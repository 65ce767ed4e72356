// `knockgate controller`: the cluster controller's composition.
//
// Informers (AccessGrants, KnockPolicies, ReplayClaims, Nodes) run in every replica, so a standby
// has a warm cache. Only the leader (Lease, controller/leader/) acts: each leadership term gets
// fresh work queues fed by the informers and seeded with every cached object (level-based: a new
// leader picks up from the API state, whatever its predecessor did or left half-done). The
// security-group reconciler (controller/aws/sg-reconciler.ts) is leader work too: one queue key per
// region, fed once the informers have synced. When the
// term ends — the Lease was taken over, a renewal deadline passed, or stop() — the queues drop
// everything at once, and every write checks the term first, so a reconcile still running when
// leadership is lost sends nothing more.

import { CoreV1Api, type KubeConfig, type KubernetesListObject } from '@kubernetes/client-node';
import type { Clock, TimerHandle } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { AccessGrant, KnockPolicy, ReplayClaim } from '../../api/types.js';
import { createAwsMetrics, type AwsMetrics } from '../aws/metrics.js';
import { regionsOf, SecurityGroupReconciler, type AwsSettings } from '../aws/sg-reconciler.js';
import { isTerminal } from '../grants/phase.js';
import { KubeInformer, type CachedObject } from '../kube/informer.js';
import { ResourceClient } from '../kube/resource-client.js';
import { LeaderElector } from '../leader/elector.js';
import { LeaseClient } from '../leader/lease-client.js';
import { ClaimReconciler } from './claim-reconciler.js';
import type { ControllerConfig } from './config.js';
import { EventRecorder } from './events.js';
import { GrantReconciler, RETENTION_KEY, type NodeLike } from './grant-reconciler.js';
import { registerControllerGauges, type ControllerMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';

export class NotLeaderError extends Error {
  constructor() {
    super('not the leader: write skipped');
  }
}

export interface ControllerManagerOptions {
  kubeConfig: KubeConfig;
  config: ControllerConfig;
  /** This replica (the pod name): the Lease holder identity and the Events' reportingInstance. */
  identity: string;
  clock: Clock;
  logger?: Logger;
  /** Keys reconciled at once per queue. Default 4. */
  workers?: number;
  /** Informer tuning (tests shorten these). */
  watchBackoffInitialMs?: number;
  watchBackoffMaxMs?: number;
  resyncIntervalMs?: number;
  /** How long a new leader waits for the informers' first lists. Default 30 s. */
  syncTimeoutMs?: number;
  metrics?: ControllerMetrics;
  /** --cluster-id, --aws-region, --aws-endpoint; undefined: security-group targets are NotConfigured. */
  aws?: AwsSettings;
}

type Grant = AccessGrant & CachedObject;
type Policy = KnockPolicy & CachedObject;
type Claim = ReplayClaim & CachedObject;
type Node = NodeLike & CachedObject;

interface Term {
  id: number;
  grantQueue: WorkQueue;
  claimQueue: WorkQueue;
  /** Keys are regions. */
  sgQueue: WorkQueue;
  sg: SecurityGroupReconciler;
  unsubscribe: (() => void)[];
  sweep?: TimerHandle;
  /** Every object cached at the term's start has been reconciled once (readiness). */
  reconciledOnce?: boolean;
}

/** Every live key is enqueued again this often (missed timers and events are caught up). */
const SWEEP_MS = 5 * 60_000;

export class ControllerManager {
  readonly grants: KubeInformer<Grant>;
  readonly policies: KubeInformer<Policy>;
  readonly claims: KubeInformer<Claim>;
  readonly nodes: KubeInformer<Node>;
  readonly elector: LeaderElector;
  private readonly grantClient: ResourceClient<AccessGrant>;
  private readonly claimClient: ResourceClient<ReplayClaim>;
  private term: Term | undefined;
  private terms = 0;
  private starting: Promise<void> | undefined;
  private stopped = false;
  private readonly awsMetrics: AwsMetrics | undefined;

  constructor(private readonly opts: ControllerManagerOptions) {
    const { kubeConfig, clock, logger } = opts;
    // One attempt per request: the work queue retries with backoff, re-checking leadership first.
    const retry = { clock, attempts: 1 };
    this.grantClient = new ResourceClient<AccessGrant>(kubeConfig, 'accessgrants', 'accessgrant', retry);
    const policyClient = new ResourceClient<KnockPolicy>(kubeConfig, 'knockpolicies', 'knockpolicy', retry);
    this.claimClient = new ResourceClient<ReplayClaim>(kubeConfig, 'replayclaims', 'replayclaim', retry);
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const informer = <T extends CachedObject>(path: string, resource: string, list: () => Promise<unknown>) =>
      new KubeInformer<T>({
        kubeConfig,
        path,
        resource,
        list: list as () => Promise<KubernetesListObject<T>>,
        clock,
        logger,
        backoffInitialMs: opts.watchBackoffInitialMs,
        backoffMaxMs: opts.watchBackoffMaxMs,
        resyncIntervalMs: opts.resyncIntervalMs,
      });
    this.grants = informer<Grant>(this.grantClient.path, 'accessgrants', () => this.grantClient.list());
    this.policies = informer<Policy>(policyClient.path, 'knockpolicies', () => policyClient.list());
    this.claims = informer<Claim>(this.claimClient.path, 'replayclaims', () => this.claimClient.list());
    this.nodes = informer<Node>('/api/v1/nodes', 'nodes', () => core.listNode());
    const le = opts.config.leaderElection;
    this.elector = new LeaderElector({
      client: new LeaseClient(kubeConfig, le.namespace, le.leaseName),
      identity: opts.identity,
      clock,
      logger,
      leaseDurationSeconds: le.leaseDurationSeconds,
      renewDeadlineSeconds: le.renewDeadlineSeconds,
      retryPeriodSeconds: le.retryPeriodSeconds,
      onStartedLeading: () => this.startTerm(),
      onStoppedLeading: () => void this.endTerm(),
    });
    this.awsMetrics = opts.metrics && opts.aws ? createAwsMetrics(opts.metrics.registry) : undefined;
    if (opts.metrics)
      registerControllerGauges(opts.metrics, {
        isLeader: () => this.elector.isLeader(),
        grants: () => this.grants.list(),
      });
  }

  /** Start the informers and campaign for the Lease. */
  start(): void {
    for (const i of [this.grants, this.policies, this.claims, this.nodes]) i.start();
    this.elector.start();
  }

  /**
   * Why the controller is not ready (/readyz), or undefined: ready once every informer has had its
   * first complete list and, on the leader, every cached object has been reconciled once. A standby
   * is ready too: its caches are warm and it takes over the moment it wins the Lease — holding it
   * unready would only stall a rollout on an election it is not meant to win.
   */
  notReady(): string | undefined {
    if (this.stopped) return 'stopping';
    const informers = [
      ['accessgrants', this.grants],
      ['knockpolicies', this.policies],
      ['replayclaims', this.claims],
      ['nodes', this.nodes],
    ] as const;
    const missing = informers.filter(([, i]) => !i.isSynced).map(([name]) => name);
    if (missing.length > 0) return `no complete list of ${missing.join(', ')} yet`;
    if (this.elector.isLeader() && !this.term?.reconciledOnce)
      return 'leader: the first reconcile of every cached object is still running';
    return undefined;
  }

  /**
   * What kind of ready (/readyz body "ok: ..."): the leader, or a standby and who leads — a
   * standby answers 200 (see notReady), and its body says it is not the one acting.
   */
  readyNote(): string {
    if (this.elector.isLeader()) return 'leader';
    const holder = this.elector.holder();
    if (holder === undefined) return 'standby: the Lease has not been read yet';
    if (holder === '') return 'standby: the Lease is free, campaigning';
    return `standby: the Lease is held by ${holder}`;
  }

  isLeader(): boolean {
    return this.elector.isLeader();
  }

  /** Stop acting and watching; with `release`, hand the Lease over at once (graceful shutdown). */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    await this.elector.stop(opts);
    await this.endTerm();
    await Promise.all([this.grants, this.policies, this.claims, this.nodes].map((i) => i.stop()));
  }

  /** Resolves once the current term's queues have nothing running (tests). */
  async idle(): Promise<void> {
    await this.starting;
    const t = this.term;
    if (t) await Promise.all([t.grantQueue.idle(), t.claimQueue.idle(), t.sgQueue.idle()]);
  }

  // --- leadership terms --------------------------------------------------------------------------

  private guard(termId: number): void {
    if (this.stopped || this.term?.id !== termId || !this.elector.isLeader()) throw new NotLeaderError();
  }

  private startTerm(): void {
    const id = ++this.terms;
    const { clock, logger, config, metrics } = this.opts;
    const guard = () => this.guard(id);
    const events = new EventRecorder({
      kubeConfig: this.opts.kubeConfig,
      namespace: config.eventsNamespace,
      clock,
      instance: this.opts.identity,
      logger,
      guard,
      onRecorded: (reason) => metrics?.events.inc({ reason }),
    });
    // What both grant reconcilers (phases; security groups) read, write and answer to.
    const grantWork = {
      grants: this.grants,
      policies: this.policies,
      nodes: this.nodes,
      client: this.grantClient,
      events,
      config,
      clock,
      logger,
      guard,
    };
    const grantReconciler = new GrantReconciler({ ...grantWork, metrics });
    const claimReconciler = new ClaimReconciler({
      claims: this.claims,
      client: this.claimClient,
      clock,
      logger,
      guard,
      metrics,
    });
    const sg = new SecurityGroupReconciler({ ...grantWork, aws: this.opts.aws, metrics: this.awsMetrics });
    const queue = (
      name: string,
      reconcile: (key: string) => ReturnType<GrantReconciler['reconcile']>,
      workers = this.opts.workers,
    ) =>
      new WorkQueue({
        name,
        reconcile,
        clock,
        logger,
        workers,
        onError: () => metrics?.reconcileErrors.inc({ queue: name }),
      });
    const term: Term = {
      id,
      grantQueue: queue('accessgrants', (k) => grantReconciler.reconcile(k)),
      claimQueue: queue('replayclaims', (k) => claimReconciler.reconcile(k)),
      // Regions pass side by side (each is one EC2 endpoint with its own request limit).
      sgQueue: queue('securitygroups', (k) => sg.reconcile(k), Math.max(1, Math.min(8, sg.regions.length))),
      sg,
      unsubscribe: [],
    };
    this.term = term;
    this.starting = this.seed(term).catch((err: Error) => {
      logger?.error({ event: 'controller-start-error' }, err.message);
    });
  }

  /** Subscribe the term's queues to the informers, then enqueue every cached object. */
  private async seed(term: Term): Promise<void> {
    const timeout = this.opts.syncTimeoutMs ?? 30_000;
    // The grants, policies and claims must be listed before anything is decided; the node list
    // only matters to Selector policies, whose grants wait for it (grant-reconciler.ts).
    for (;;) {
      try {
        await Promise.all([this.grants, this.policies, this.claims].map((i) => i.waitForSync(timeout)));
        break;
      } catch (err) {
        if (this.term !== term || this.stopped) return;
        this.opts.logger?.warn({ event: 'controller-sync-wait' }, `${(err as Error).message}; still waiting`);
      }
    }
    if (this.term !== term) return;
    const { grantQueue, claimQueue, sgQueue } = term;
    // A grant's regions are passed again when what they decide changes (spec, end, deletion), not
    // on the status writes of the passes themselves.
    const seen = new Map<string, string>();
    const sgRelevant = (g: Grant, deleted: boolean) => {
      const name = g.metadata.name;
      const sig = deleted
        ? ''
        : JSON.stringify([g.metadata.uid, g.spec, isTerminal(g), g.metadata.deletionTimestamp ?? null]);
      if (seen.get(name) === sig) return false;
      if (deleted) seen.delete(name);
      else seen.set(name, sig);
      return true;
    };
    for (const g of this.grants.list()) sgRelevant(g, false);
    term.unsubscribe.push(
      this.grants.subscribe((e) => {
        if (e.type === 'DELETED') grantQueue.forget(e.object.metadata.name);
        else grantQueue.add(e.object.metadata.name);
        if (e.type !== 'DELETED' && isTerminal(e.object)) grantQueue.add(RETENTION_KEY);
        if (sgRelevant(e.object, e.type === 'DELETED')) for (const r of regionsOf(e.object)) sgQueue.add(r);
      }),
      // A policy that appears, changes or goes re-checks the grants that name it.
      this.policies.subscribe((e) => {
        for (const g of this.grants.list())
          if (g.spec.policyRef?.name === e.object.metadata.name) {
            grantQueue.add(g.metadata.name);
            for (const r of regionsOf(g)) sgQueue.add(r);
          }
      }),
      this.claims.subscribe((e) => {
        if (e.type === 'DELETED') claimQueue.forget(e.object.metadata.name);
        else claimQueue.add(e.object.metadata.name);
      }),
    );
    this.enqueueAll(term);
    void Promise.all([grantQueue.idle(), claimQueue.idle(), sgQueue.idle()]).then(() => {
      term.reconciledOnce = true;
    });
    const sweep = () => {
      if (this.term !== term) return;
      this.enqueueAll(term);
      term.sweep = this.opts.clock.setTimeout(sweep, SWEEP_MS);
    };
    term.sweep = this.opts.clock.setTimeout(sweep, SWEEP_MS);
  }

  private enqueueAll(term: Term): void {
    for (const g of this.grants.list()) term.grantQueue.add(g.metadata.name);
    term.grantQueue.add(RETENTION_KEY);
    for (const c of this.claims.list()) term.claimQueue.add(c.metadata.name);
    // Every configured region is swept (this cluster's rules no live grant needs, expired ones
    // first), and every region a grant names is passed.
    const regions = new Set(term.sg.regions);
    for (const g of this.grants.list()) for (const r of regionsOf(g)) regions.add(r);
    for (const r of regions) term.sgQueue.add(r);
  }

  private async endTerm(): Promise<void> {
    const term = this.term;
    if (!term) return;
    this.term = undefined;
    term.sweep?.cancel();
    for (const u of term.unsubscribe) u();
    await Promise.all([term.grantQueue.stop(), term.claimQueue.stop(), term.sgQueue.stop()]);
  }
}
