// `knockgate agent`: the node agent of a cluster (a DaemonSet with NET_ADMIN that never parses a
// packet). The composition of its pieces:
//
//   start(): follow the grant and policy caches → wait (bounded) for their first complete lists →
//            install the firewall from the agent's own config (protected ports, alwaysAllow, mode)
//            → one full resync from the caches → then grant by grant (reconciler.ts). Without the
//            lists in time it installs anyway: drops in place, no grant opened until they arrive.
//   stop():  timers and watches off, work in flight finished, the firewall's processes closed; the
//            kernel state stays (every entry carries its own expiry), so ports stay protected.
//   uninstall(): the uninstall marker was seen (controller/uninstall/marker.ts): the reconciler
//            stops touching the firewall for good, every object knockgate owns on this node is
//            removed (firewall.cleanup(), what `standalone --cleanup` does; retried until it
//            succeeds), the grants' entries say Removed, and the node's acknowledgement is written.
//            Nothing is installed again by this process: a restarted agent starts afresh.
//
// While the API server is unreachable the caches keep their last state, the local expiry timers
// keep closing doors on time, and the informers' relists reconcile everything when it returns.

import type { Clock, TimerHandle } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { AccessGrant, KnockPolicy } from '../../api/types.js';
import type { Firewall, FirewallConfig } from '../firewall/types.js';
import { Backoff, sleep } from '../kube/backoff.js';
import { KUBE_STORE_DEFAULTS } from '../kube/limits.js';
import { neverGrantSet } from '../standalone/admission.js';
import type { AgentConfig } from './config.js';
import { AgentReconciler } from './reconciler.js';
import {
  countAudit,
  instrumentFirewall,
  instrumentStatusWriter,
  registerAgentGauges,
  type AgentMetrics,
} from './metrics.js';
import type { NodeObject, NodeStatusWriter, ObjectCache } from './sources.js';

export interface AgentSources {
  grants: ObjectCache<AccessGrant>;
  policies: ObjectCache<KnockPolicy>;
  /**
   * A cache of this node's own Node object (by name), started with the sources. Without it the
   * node's labels are never known and Selector-mode grants stay Pending (fail closed).
   */
  node?(name: string): ObjectCache<NodeObject>;
  status: NodeStatusWriter;
  /** True while the grant and policy watches are current (metrics); default: both listed. */
  apiUp?(): boolean;
  start(): void;
  stop(): Promise<void>;
}

export interface AgentOptions {
  config: AgentConfig;
  firewall: Firewall;
  sources: AgentSources;
  clock: Clock;
  logger: Logger;
  /** How long one wait for the first lists lasts before it is logged and retried. */
  initialSyncTimeoutMs?: number;
  /** How long start() waits for the first lists before installing without them (0 = not at all). */
  startupListWaitMs?: number;
  random?: () => number;
  /** Counted here: firewall operations, status writes, audit events; gauges read at scrape time. */
  metrics?: AgentMetrics;
}

export const AGENT_TIMING = {
  /** A restarted agent waits this long for its lists before it installs the firewall without them. */
  startupListWaitMs: 10_000,
} as const;

export function agentFirewallConfig(config: AgentConfig): FirewallConfig {
  return {
    protectedPorts: config.protectedPorts,
    knockPorts: config.knockPorts,
    alwaysAllow: config.alwaysAllow,
    mode: config.mode,
    conntrackFlush: config.conntrackFlush,
    ...(config.maxGrants !== undefined ? { maxGrants: config.maxGrants } : {}),
  };
}

export class NodeAgent {
  private reconciler: AgentReconciler | undefined;
  private stopped = false;
  private onStopped!: () => void;
  private readonly stoppedSignal = new Promise<void>((resolve) => (this.onStopped = resolve));
  private installed = false;
  private readonly firewall: Firewall;
  private readonly status: NodeStatusWriter;
  private uninstalling: Promise<void> | undefined;
  private onStartSettled!: () => void;
  private readonly startSettled = new Promise<void>((resolve) => (this.onStartSettled = resolve));

  constructor(private readonly opts: AgentOptions) {
    const { metrics, sources } = opts;
    this.firewall = metrics ? instrumentFirewall(opts.firewall, metrics) : opts.firewall;
    this.status = metrics ? instrumentStatusWriter(sources.status, metrics) : sources.status;
    if (metrics)
      registerAgentGauges(metrics, {
        applied: () => this.reconciler?.appliedNames().length ?? 0,
        apiUp: () => (sources.apiUp ? sources.apiUp() : sources.grants.isSynced && sources.policies.isSynced),
      });
  }

  /**
   * Why the agent is not ready (/readyz), or undefined: ready once its firewall is installed and the
   * grant and policy caches have had their first complete lists.
   */
  notReady(): string | undefined {
    if (this.stopped) return 'stopping';
    if (this.uninstalling) return 'knockgate is being uninstalled: the firewall objects are removed';
    if (!this.installed) return 'the firewall is not installed yet';
    const { grants, policies } = this.opts.sources;
    const missing = [grants.isSynced ? '' : 'accessgrants', policies.isSynced ? '' : 'knockpolicies'].filter(
      Boolean,
    );
    if (missing.length > 0) return `no complete list of ${missing.join(' and ')} yet`;
    return undefined;
  }

  get node(): string {
    return this.opts.config.nodeName;
  }

  /** The reconciler (tests, metrics). */
  get state(): AgentReconciler {
    if (!this.reconciler) throw new Error('the agent is not started');
    return this.reconciler;
  }

  /**
   * Follow the API, install the firewall, reconcile. The first lists are awaited (bounded) before
   * the install so that a restarted agent rewrites the kernel with its grants right after the
   * drops, instead of closing every door until the lists arrive. Throws when the firewall cannot
   * be installed (stop() then stops the sources).
   */
  async start(): Promise<void> {
    try {
      await this.startNow();
    } finally {
      this.onStartSettled();
    }
  }

  /**
   * knockgate is being uninstalled: remove every firewall object knockgate owns on this node, then
   * `acknowledge` (the marker's data.<node>), both retried with backoff until they succeed or the
   * agent stops. Waits for start() to finish first (an install in progress is removed after it).
   * Idempotent; resolves when acknowledged (or stopped).
   */
  uninstall(acknowledge: () => Promise<void>): Promise<void> {
    this.uninstalling ??= this.uninstallNow(acknowledge);
    return this.uninstalling;
  }

  /** True once uninstall() was called (/readyz says so from then on). */
  get isUninstalling(): boolean {
    return this.uninstalling !== undefined;
  }

  private async uninstallNow(acknowledge: () => Promise<void>): Promise<void> {
    const { logger, config } = this.opts;
    await this.startSettled;
    if (this.stopped) return;
    await this.reconciler?.uninstall();
    const removed = await this.untilDone('firewall cleanup', () => this.firewall.cleanup());
    if (!removed) return;
    this.installed = false;
    this.reconciler?.reportRemoved();
    logger.warn(
      { event: 'uninstall-removed', node: config.nodeName },
      `uninstalling: every knockgate firewall object on node ${config.nodeName} removed; nothing is installed again until restarted`,
    );
    if (!(await this.untilDone('uninstall acknowledgement', acknowledge))) return;
    logger.info({ event: 'uninstall-acknowledged', node: config.nodeName }, 'uninstall acknowledged');
  }

  /** Run `fn` until it succeeds (true) or the agent stops (false), with backoff between tries. */
  private async untilDone(what: string, fn: () => Promise<void>): Promise<boolean> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 10_000, random: this.opts.random });
    while (!this.stopped) {
      try {
        await fn();
        return true;
      } catch (err) {
        const wait = backoff.next();
        this.opts.logger.error(
          { event: 'uninstall-error', retryInMs: wait },
          `uninstalling: ${what}: ${(err as Error).message}`,
        );
        await Promise.race([sleep(this.opts.clock, wait), this.stoppedSignal]);
      }
    }
    return false;
  }

  private async startNow(): Promise<void> {
    const { config, sources, clock, logger } = this.opts;
    const firewall = this.firewall;
    const nodes = sources.node?.(config.nodeName);
    sources.start();
    const wait = this.opts.startupListWaitMs ?? AGENT_TIMING.startupListWaitMs;
    if (wait > 0) {
      await Promise.all([sources.grants.waitForSync(wait), sources.policies.waitForSync(wait)]).catch(
        (err: Error) =>
          logger.warn(
            { event: 'not-synced' },
            `no complete list yet (${err.message}): installing the drops, no grant opened until the lists arrive`,
          ),
      );
    }
    if (this.stopped) return;
    await firewall.install(agentFirewallConfig(config));
    this.installed = true;
    const metrics = this.opts.metrics;
    this.reconciler = new AgentReconciler({
      node: config.nodeName,
      grants: sources.grants,
      policies: sources.policies,
      ...(nodes ? { nodes } : {}),
      status: this.status,
      firewall,
      clock,
      logger,
      neverGrant: neverGrantSet(config.neverGrant),
      protectedPorts: config.protectedPorts,
      largestManualPrefix: config.largestManualPrefix,
      clockSkewMs: config.clockSkewMs,
      resyncIntervalMs: config.resyncIntervalMs,
      ...(this.opts.random ? { random: this.opts.random } : {}),
      ...(metrics
        ? { onAudit: (event, reason, grant) => countAudit(metrics, event, reason, grant, clock.now()) }
        : {}),
    });
    this.reconciler.start();
    // With the lists in: return once their whole state is applied (statuses follow on their own).
    // Bounded: a first resync that fails (maxGrants, the kernel) is retried in the background.
    if (this.reconciler.ready) {
      let timer: TimerHandle | undefined;
      const timeout = new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, wait)));
      await Promise.race([this.reconciler.firstSync, this.stoppedSignal, timeout]);
      timer?.cancel();
    } else void this.awaitFirstLists();
    logger.info(
      {
        event: 'started',
        node: config.nodeName,
        mode: config.mode,
        backend: firewall.backend,
        protectedPorts: config.protectedPorts.map((p) => `${p.port}/${p.proto}`),
        grants: this.reconciler.appliedNames().length,
      },
      `knockgate agent on node ${config.nodeName} (${config.mode}, ${firewall.backend})`,
    );
  }

  /** Stop following the API; the kernel state stays. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.onStopped();
    this.reconciler?.stop();
    // Stopped sources fail their sync waiters, which ends awaitFirstLists (not awaited: a source
    // need not answer a waiter at all).
    await this.opts.sources.stop();
    await this.reconciler?.idle();
    await this.firewall.close().catch(() => undefined);
  }

  private async awaitFirstLists(): Promise<void> {
    const { sources, logger } = this.opts;
    const timeout = this.opts.initialSyncTimeoutMs ?? KUBE_STORE_DEFAULTS.initialSyncTimeoutMs;
    while (!this.stopped) {
      try {
        await Promise.all([sources.grants.waitForSync(timeout), sources.policies.waitForSync(timeout)]);
        if (this.stopped) return;
        logger.info({ event: 'synced' }, 'grants and policies listed: reconciling');
        this.reconciler?.resync();
        return;
      } catch (err) {
        if (this.stopped) return;
        logger.warn(
          { event: 'not-synced' },
          `no complete list yet (${(err as Error).message}): drops in place, no grant opened`,
        );
      }
    }
  }
}
