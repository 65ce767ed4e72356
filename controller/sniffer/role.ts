// `knockgate sniffer`: one node's sniffer on Kubernetes. It parses hostile traffic and holds the
// least: it reads policies, Nodes and the release namespace's Secrets, creates ReplayClaims and
// AccessGrants, extends the grants it made, and writes no firewall rule and calls no cloud API.
//
//   start():  informers for KnockPolicies, Nodes and Secrets, wait for their first lists → the
//             policies whose nodeSelector matches this node run in the engine → capture.
//   change:   any informer event (coalesced) recomputes the policy set, level-based: the engine
//             keeps unchanged policies (knocks in progress), rebuilds changed ones, and rebuilds an
//             SPA policy whose Secret changed (a rotated key is used without a restart).
//   decision: policy still runs here → grant built (ownerReference, targets resolved) → local
//             replay memory (a replayed packet costs no API call) → caps (live grants per policy,
//             grant writes per second) → ReplayClaim (409 = used on some node: refused) →
//             GrantStore.extend (creates, extends this node's live grant, or makes a new one
//             under the name's next generation when the name holds history: kube/generations.ts).
//   uninstall: once the marker ConfigMap is seen (controller/uninstall/marker.ts) every decision is
//             refused (reason "uninstalling") for the rest of the process life: no grant is written
//             while `knockgate uninstall` revokes them all.
//   API down: the claim or the grant cannot be written, so nothing is opened; it says so in one
//             log line per refusal (rate limited), a metric, and api_up = 0 until a write succeeds.
//
// Work on one grant name is serialized; different grants go to the API concurrently.

import type { KubeTarget } from '../kube/connection.js';
import type { Clock, TimerHandle } from '../../api/clock.js';
import { AlreadyExistsError } from '../../api/store.js';
import type { Logger } from '../../api/log.js';
import type { AccessGrant, KnockPolicy } from '../../api/types.js';
import type { AccessDecision, InboundPacket, Refusal, Verdict } from '../../sniffer/decision.js';
import { createEngine, type Engine } from '../../sniffer/engine.js';
import type { Sniffer, SnifferOptions } from '../../sniffer/capture/sniffer.js';
import { defaultRouteInterfaces } from '../../sniffer/capture/routes.js';
import { MemoryReplayStore } from '../../sniffer/replay-memory.js';
import { spaKeysFromSecretData } from '../../sniffer/spa/keys.js';
import { createSpaVerifier } from '../../sniffer/spa/verifier.js';
import { auditGrant, auditRefusal } from '../grants/audit.js';
import { buildGrant, GrantBuildError } from '../grants/build.js';
import { expiresAtMs } from '../grants/phase.js';
import { GrantValidationError } from '../grants/validate.js';
import { KubeApiError } from '../kube/errors.js';
import { KubeGrantStore } from '../kube/grant-store.js';
import { KubeReplayStore } from '../kube/replay-store.js';
import { MarkerWatch } from '../uninstall/marker.js';
import { KeyedQueue } from '../standalone/queues.js';
import { RateLimitedLog } from '../standalone/rate-limited-log.js';
import { GrantCaps } from './caps.js';
import { ClusterView } from './cluster-view.js';
import { SNIFFER_DEFAULTS } from './limits.js';
import type { SnifferMetrics } from './metrics.js';
import { addGateCounts, emptyGateCounts } from '../../sniffer/capture/spa-gate.js';
import {
  clusterNeverGrant,
  resolveTargets,
  secretFingerprint,
  secretStrings,
  selectPolicies,
} from './selection.js';

export class SnifferStartError extends Error {}

export interface SnifferRoleOptions {
  kubeConfig: KubeTarget;
  /** The release namespace: where keySecretRef Secrets are read. */
  namespace: string;
  /** This node's name (the Node object; spec.observedBy). */
  node: string;
  clock: Clock;
  logger: Logger;
  metrics?: SnifferMetrics;
  /** Starts the capture. Absent: no capture; packets come through handlePacket() (tests). */
  startSniffer?: (opts: SnifferOptions) => Sniffer;
  /** Capture interfaces; default: the policies' spec.interface, else the default-route interfaces. */
  interfaces?: string[];
  bufferBytes?: number;
  maxLiveGrantsPerPolicy?: number;
  grantsPerSecond?: number;
  grantsBurst?: number;
  initialSyncTimeoutMs?: number;
  healthIntervalMs?: number;
  /** Kubernetes client tuning (defaults: controller/kube/limits.ts). */
  requestAttempts?: number;
  requestBackoffInitialMs?: number;
  requestBackoffMaxMs?: number;
  watchBackoffInitialMs?: number;
  watchBackoffMaxMs?: number;
  resyncIntervalMs?: number;
  random?: () => number;
}

/** What became of one decision. */
export type Outcome =
  | { kind: 'granted'; grant: AccessGrant; extended: boolean }
  | { kind: 'refused'; policy?: string; reason: string; message: string };

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The API did not answer (refused, reset, timed out) or answered that it cannot serve now. */
function isUnavailable(err: unknown): err is KubeApiError {
  return err instanceof KubeApiError && (err.status === 0 || err.status === 429 || err.status >= 500);
}

export class SnifferRole {
  private readonly view: ClusterView;
  private readonly marker: MarkerWatch;
  private readonly engine: Engine;
  private readonly grants: KubeGrantStore;
  private readonly claims: KubeReplayStore;
  private readonly localReplay: MemoryReplayStore;
  private readonly caps: GrantCaps;
  private readonly perGrant = new KeyedQueue();
  private readonly refusalLog: RateLimitedLog;
  private readonly log: Logger;
  private readonly clock: Clock;
  private active = new Map<string, KnockPolicy>();
  /** Every node's addresses and pod CIDRs, rebuilt when the Nodes change. */
  private neverGrant = clusterNeverGrant([]);
  private keyFingerprints = new Map<string, string>();
  private problems = new Set<string>();
  private nodeMissing = false;
  private applyScheduled = false;
  private apiUp = true;
  private watchError: string | undefined;
  private healthTimer: TimerHandle | undefined;
  private sniffer: Sniffer | undefined;
  /** Why the capture is not open (opening it failed, or it stopped), until it opens again. */
  private captureError: string | undefined;
  private snifferInterfaces: string[] = [];
  /** Native SPA gate counts of sniffers closed by an interface change. */
  private readonly closedGateCounts = emptyGateCounts();
  private readonly inFlight = new Set<Promise<unknown>>();
  private started = false;
  private stopped = false;

  constructor(private readonly opts: SnifferRoleOptions) {
    this.clock = opts.clock;
    this.log = opts.logger;
    opts.metrics?.setCaptureDropsSource(() => this.sniffer?.drops() ?? []);
    const gateCounts = () => {
      const total = emptyGateCounts();
      addGateCounts(total, this.closedGateCounts);
      const live = this.sniffer?.spaGateCounts?.();
      if (live) addGateCounts(total, live);
      return total;
    };
    opts.metrics?.spaGateRefused.setSource(gateCounts);
    opts.metrics?.packets.setSources({ knockSteps: () => this.engine.knockSteps?.() ?? 0, gateCounts });
    const kube = {
      kubeConfig: opts.kubeConfig,
      clock: opts.clock,
      requestAttempts: opts.requestAttempts,
      requestBackoffInitialMs: opts.requestBackoffInitialMs,
      requestBackoffMaxMs: opts.requestBackoffMaxMs,
      random: opts.random,
    };
    this.grants = new KubeGrantStore({ ...kube, logger: opts.logger });
    this.claims = new KubeReplayStore({ ...kube, node: opts.node });
    this.localReplay = new MemoryReplayStore(opts.clock, SNIFFER_DEFAULTS.maxLocalReplayClaims);
    this.caps = new GrantCaps({
      clock: opts.clock,
      maxLiveGrantsPerPolicy: opts.maxLiveGrantsPerPolicy ?? SNIFFER_DEFAULTS.maxLiveGrantsPerPolicy,
      grantsPerSecond: opts.grantsPerSecond ?? SNIFFER_DEFAULTS.grantsPerSecond,
      grantsBurst: opts.grantsBurst ?? SNIFFER_DEFAULTS.grantsBurst,
    });
    this.refusalLog = new RateLimitedLog(opts.clock, SNIFFER_DEFAULTS.refusalLogsPerSecond);
    this.engine = createEngine({
      policies: [],
      clock: opts.clock,
      spaVerifierFor: (policy) => this.verifierFor(policy),
    });
    this.view = new ClusterView({
      kubeConfig: opts.kubeConfig,
      namespace: opts.namespace,
      clock: opts.clock,
      logger: opts.logger,
      onChange: () => this.scheduleApply(),
      watchBackoffInitialMs: opts.watchBackoffInitialMs,
      watchBackoffMaxMs: opts.watchBackoffMaxMs,
      resyncIntervalMs: opts.resyncIntervalMs,
      random: opts.random,
    });
    this.marker = new MarkerWatch({
      kubeConfig: opts.kubeConfig,
      namespace: opts.namespace,
      clock: opts.clock,
      logger: opts.logger,
      onUninstall: () => undefined, // the latch itself is all: decide() reads it
      backoffInitialMs: opts.watchBackoffInitialMs,
      backoffMaxMs: opts.watchBackoffMaxMs,
      resyncIntervalMs: opts.resyncIntervalMs,
      random: opts.random,
    });
    opts.metrics?.apiUp.set(1);
  }

  /** The uninstall marker was seen: no grant is written again by this process. */
  get uninstalling(): boolean {
    return this.marker.latched;
  }

  /** Read the cluster, run the matching policies, start capturing. Throws SnifferStartError. */
  async start(): Promise<void> {
    if (this.started) throw new SnifferStartError('the sniffer is already started');
    this.started = true;
    // Not waited for: a marker the sniffer cannot read yet must not keep it from starting.
    this.marker.start();
    try {
      await this.view.start(this.opts.initialSyncTimeoutMs ?? SNIFFER_DEFAULTS.initialSyncTimeoutMs);
    } catch (err) {
      await this.stop();
      throw new SnifferStartError(
        `cannot read policies, nodes and secrets from the Kubernetes API: ${(err as Error).message}`,
      );
    }
    try {
      this.apply(true);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.opts.metrics?.watchUp.set(1);
    this.armHealth();
    this.log.info(
      {
        event: 'started',
        node: this.opts.node,
        namespace: this.opts.namespace,
        policies: [...this.active.keys()],
        interfaces: this.sniffer?.interfaces() ?? [],
      },
      `knockgate sniffer on node ${this.opts.node}: ${this.active.size} policies, capturing on ${
        this.sniffer?.interfaces().join(', ') || 'nothing'
      }`,
    );
  }

  /**
   * Why the sniffer is not ready (/readyz), or undefined: ready once its policies, nodes and key
   * Secrets have been listed and, when a policy applies to this node, the capture is open.
   */
  notReady(): string | undefined {
    if (this.stopped) return 'stopping';
    if (!this.started || !this.view.synced) return 'no complete list of policies, nodes and secrets yet';
    // Lost sync: the sniffer keeps running its last known policies (a grant it cannot write opens
    // nothing), but it may miss a new or changed policy or key, so it does not claim to be ready.
    if (this.watchError !== undefined)
      return `watching policies, nodes and secrets fails (${this.watchError}): running the last known policies`;
    // (Without startSniffer packets come through handlePacket(): there is no capture to wait for.)
    if (this.opts.startSniffer && this.active.size > 0 && (!this.sniffer || this.captureError !== undefined))
      return `capture is not open for ${this.active.size} policies: ${this.captureError ?? 'not started'}`;
    return undefined;
  }

  /** Stop capturing and watching; wait for decisions in flight. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.healthTimer?.cancel();
    this.closeSniffer();
    await Promise.all([this.view.stop(), this.marker.stop()]);
    await Promise.allSettled([...this.inFlight]);
    await this.perGrant.idle();
    await this.grants.close();
    this.engine.dispose();
  }

  /** Policies running on this node now, by name. */
  activePolicies(): string[] {
    return [...this.active.keys()];
  }

  /** Policies matching this node that cannot run, one line each. */
  policyProblems(): string[] {
    return [...this.problems];
  }

  /** The engine's ports (what the capture filter lets through). */
  ports(): string[] {
    return this.engine.ports().map((p) => `${p.port}/${p.proto}`);
  }

  /** One packet through the engine, as the capture delivers it; resolves with every outcome. */
  handlePacket(packet: InboundPacket): Promise<Outcome[]> {
    return Promise.all(this.engine.handle(packet).map((v) => this.onVerdict(v, packet)));
  }

  // --- policies ----------------------------------------------------------------------------------

  private scheduleApply(): void {
    if (this.applyScheduled || this.stopped) return;
    this.applyScheduled = true;
    queueMicrotask(() => {
      this.applyScheduled = false;
      this.apply(false);
    });
  }

  /** Recompute the policy set from the caches (level-based) and bring engine and capture to it. */
  private apply(starting: boolean): void {
    if (this.stopped || !this.view.synced) return;
    const node = this.view.nodes.get(this.opts.node);
    if (!node !== this.nodeMissing) {
      this.nodeMissing = !node;
      if (!node)
        this.log.warn(
          { event: 'node-missing', node: this.opts.node },
          `Node ${this.opts.node} not found: its labels are unknown, so no policy runs here`,
        );
      else if (!starting)
        this.log.info({ event: 'node-found', node: this.opts.node }, `Node ${this.opts.node} found`);
    }
    const { policies, invalid } = selectPolicies(this.view.policies.list(), node);
    this.neverGrant = clusterNeverGrant(this.view.nodes.list());

    // A changed Secret rebuilds the verifiers of the policies that use it; other policies keep
    // their state (the engine keeps a handler whose spec is unchanged).
    const fingerprints = new Map<string, string>();
    const rotated = new Set<string>();
    for (const p of policies) {
      if (!p.spec.spa) continue;
      const fp = secretFingerprint(this.view.secrets.get(p.spec.spa.keySecretRef.name));
      const before = this.keyFingerprints.get(p.metadata.name);
      if (before !== undefined && before !== fp) rotated.add(p.metadata.name);
      fingerprints.set(p.metadata.name, fp);
    }
    this.keyFingerprints = fingerprints;
    if (rotated.size > 0) this.engine.setPolicies(policies.filter((p) => !rotated.has(p.metadata.name)));
    this.engine.setPolicies(policies);
    for (const name of rotated)
      this.log.info(
        { event: 'keys-changed', policy: name },
        `policy "${name}": its Secret changed, keys reloaded`,
      );

    const problems = [...invalid, ...this.engine.problems().map((p) => p.message)];
    const running = policies.filter((p) => !this.engine.problems().some((q) => q.policy === p.metadata.name));
    for (const line of problems)
      if (!this.problems.has(line)) this.log.error({ event: 'policy-problem' }, line);
    this.problems = new Set(problems);

    const next = new Map(running.map((p) => [p.metadata.name, p]));
    for (const name of this.active.keys()) if (!next.has(name)) this.caps.forgetPolicy(name);
    const changed = !sameList([...this.active.keys()], [...next.keys()]);
    this.active = next;
    if (changed && !starting)
      this.log.info(
        { event: 'policies', node: this.opts.node, policies: [...next.keys()] },
        `node ${this.opts.node} runs ${next.size} policies: ${[...next.keys()].join(', ') || 'none'}`,
      );
    this.opts.metrics?.activePolicies.set(next.size);
    this.opts.metrics?.policyProblems.set(problems.length);
    this.refreshCapture(starting);
  }

  /** The SPA verifier of `policy` with its keys from its Secret. Throws (the engine leaves it out). */
  private verifierFor(policy: KnockPolicy) {
    const ref = policy.spec.spa!.keySecretRef.name;
    const secret = this.view.secrets.get(ref);
    if (!secret) throw new Error(`Secret ${this.opts.namespace}/${ref} not found`);
    try {
      return createSpaVerifier(policy, spaKeysFromSecretData(secretStrings(secret)), { clock: this.clock });
    } catch (err) {
      throw new Error(`Secret ${this.opts.namespace}/${ref}: ${(err as Error).message}`);
    }
  }

  /**
   * Interfaces to capture on: the option; else the policies' own spec.interface, plus the
   * default-route interfaces when some policy names none; else [] (startSniffer: the default route).
   */
  private captureInterfaces(): string[] {
    if (this.opts.interfaces?.length) return [...this.opts.interfaces].sort();
    const named = new Set<string>();
    let unnamed = false;
    for (const p of this.active.values()) {
      if (p.spec.interface) named.add(p.spec.interface);
      else unnamed = true;
    }
    if (named.size > 0 && unnamed) for (const i of defaultRouteInterfaces()) named.add(i);
    return [...named].sort();
  }

  private closeSniffer(): void {
    const counts = this.sniffer?.spaGateCounts?.();
    if (counts) addGateCounts(this.closedGateCounts, counts);
    this.sniffer?.close();
    this.sniffer = undefined;
  }

  private refreshCapture(starting: boolean): void {
    const start = this.opts.startSniffer;
    if (!start) return;
    const wanted = this.captureInterfaces();
    try {
      if (this.sniffer && sameList(wanted, this.snifferInterfaces)) {
        this.sniffer.refresh();
        this.captureOpened();
        return;
      }
      this.closeSniffer();
      this.sniffer = start({
        engine: this.engine,
        clock: this.clock,
        interfaces: wanted,
        ...(this.opts.bufferBytes !== undefined ? { bufferBytes: this.opts.bufferBytes } : {}),
        onVerdict: (verdict, packet) => void this.onVerdict(verdict, packet),
        onError: (err) => this.log.error({ event: 'verdict-error' }, (err as Error).message),
        onCaptureError: (err) => this.captureStopped(err.message),
      });
      this.snifferInterfaces = wanted;
      this.captureOpened();
    } catch (err) {
      // An interface given on the command line that cannot be captured on is fatal at start; one
      // named by a policy is that policy's problem, logged, and retried at the next change.
      if (starting && this.opts.interfaces?.length)
        throw new SnifferStartError(`capture: ${(err as Error).message}`);
      this.captureFailed((err as Error).message);
    }
  }

  /** Opening or refreshing the capture failed, or an open capture stopped: logged, and /readyz says so. */
  private captureFailed(message: string): void {
    // Logged once per new reason, not at every retry.
    if (this.captureError !== message) this.log.error({ event: 'capture-error' }, `capture: ${message}`);
    this.captureError = message;
  }

  /**
   * An open capture stopped (its interface went away, a socket error): closed (after the native
   * callback has returned), and reopened by the health check until it opens again.
   */
  private captureStopped(message: string): void {
    this.captureFailed(message);
    setImmediate(() => {
      if (this.captureError === message && !this.stopped) this.closeSniffer();
    });
  }

  private captureOpened(): void {
    if (this.captureError === undefined) return;
    this.captureError = undefined;
    this.log.info(
      { event: 'capture-open' },
      `capture open again on ${this.sniffer?.interfaces().join(', ') || 'nothing'}`,
    );
  }

  /**
   * While a watch fails the sniffer keeps its last policies and keys (a grant it cannot write is
   * refused anyway); the metric and one log line per change say so.
   */
  private armHealth(): void {
    if (this.stopped) return;
    this.healthTimer = this.clock.setTimeout(() => {
      this.checkHealth();
      this.armHealth();
    }, this.opts.healthIntervalMs ?? SNIFFER_DEFAULTS.healthIntervalMs);
  }

  private checkHealth(): void {
    // A capture that failed or stopped is retried here too, not only at the next policy change.
    if (this.captureError !== undefined && this.active.size > 0) this.refreshCapture(false);
    const error = this.view.lastError();
    if ((error === undefined) === (this.watchError === undefined)) return;
    const was = this.watchError;
    this.watchError = error;
    this.opts.metrics?.watchUp.set(error ? 0 : 1);
    if (error)
      this.log.error(
        { event: 'watch-down' },
        `cannot watch the Kubernetes API (${error}): running the last known policies; grants that cannot be written open nothing`,
      );
    else if (was) this.log.info({ event: 'watch-up' }, 'the Kubernetes API watches are current again');
  }

  // --- decisions ---------------------------------------------------------------------------------

  private onVerdict(verdict: Verdict, packet: InboundPacket): Promise<Outcome> {
    const packets = this.opts.metrics?.packets;
    if (verdict.kind === 'refused') {
      // A refusal verdict comes from an SPA verifier (a knock door's only one is its own failure).
      const policy = verdict.policy === undefined ? undefined : this.active.get(verdict.policy);
      packets?.decided(policy && !policy.spec.spa ? 'knock' : 'spa', false);
      return Promise.resolve(this.refused(verdict, packet.src));
    }
    const work = this.decide(verdict)
      .catch((err: Error) => {
        this.log.error({ event: 'decision-error', policy: verdict.policy }, err.message);
        return this.refused(
          { kind: 'refused', policy: verdict.policy, reason: 'internal-error', message: err.message },
          verdict.source,
        );
      })
      .then((outcome) => {
        packets?.decided(verdict.method, outcome.kind === 'granted');
        return outcome;
      });
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
    return work;
  }

  /** Turn one decision into a created or extended AccessGrant, or a refusal. Never throws. */
  async decide(decision: AccessDecision): Promise<Outcome> {
    const where = `policy "${decision.policy}"`;
    const address = decision.source.split('/')[0]!;
    if (this.uninstalling)
      return this.refuse(
        decision,
        'uninstalling',
        `${where}: knockgate is being uninstalled, nothing opened`,
      );
    const policy = this.active.get(decision.policy);
    if (!policy)
      return this.refuse(decision, 'policy-gone', `${where} no longer runs on node ${this.opts.node}`);
    if (this.neverGrant.has(address))
      return this.refuse(
        decision,
        'never-grant',
        `${where}: ${address} is a node or pod address, never granted`,
      );
    let grant: AccessGrant;
    try {
      grant = buildGrant(decision, {
        clock: this.clock,
        node: this.opts.node,
        targets: resolveTargets(policy, this.opts.node, this.view.nodes.list()),
        policyUid: policy.metadata.uid,
        nameWithNode: (policy.spec.grant.targets?.node?.mode ?? 'Local') === 'Local',
      });
    } catch (err) {
      if (err instanceof GrantBuildError) return this.refuse(decision, 'invalid', err.message);
      throw err;
    }
    if (decision.claim) {
      // Seen on this node already: refused without asking the API (a replay flood costs nothing).
      let local: 'claimed' | 'replay';
      try {
        local = this.localReplay.claimSync(decision.claim.digest, decision.claim.expiresAt);
      } catch (err) {
        return this.refuse(decision, 'replay-store', `${where}: ${(err as Error).message}`);
      }
      if (local === 'replay')
        return this.refuse(decision, 'replay', `${where}: SPA packet from ${address} was already used`);
    }
    // The caps are taken before queueing, so a flood for one grant name cannot pile up behind a
    // slow API: what waits in the queue has paid a token.
    const name = grant.metadata.name;
    const knownLive = this.caps.holds(decision.policy, name);
    const cap = this.caps.reserve(decision.policy, name);
    if (cap) {
      this.opts.metrics?.capped.inc({ policy: decision.policy, cap });
      const message =
        cap === 'rate-limited'
          ? `${where}: grant writes over the rate limit (${this.opts.grantsPerSecond ?? SNIFFER_DEFAULTS.grantsPerSecond}/s); nothing opened for ${grant.spec.source}`
          : `${where}: ${this.caps.liveCount(decision.policy)} live grants already (the cap); nothing opened for ${grant.spec.source}`;
      return this.refuse(decision, cap, message);
    }
    return this.perGrant.run(name, () => this.write(decision, grant, knownLive));
  }

  private async write(decision: AccessDecision, grant: AccessGrant, knownLive: boolean): Promise<Outcome> {
    const where = `policy "${decision.policy}"`;
    const name = grant.metadata.name;
    let operation = 'create replayclaim';
    try {
      if (decision.claim) {
        const claimed = await this.claims.claim(
          decision.claim.digest,
          decision.claim.expiresAt,
          decision.policy,
        );
        if (claimed === 'replay') {
          this.caps.release(decision.policy, name);
          this.apiAnswered();
          return this.refuse(
            decision,
            'replay',
            `${where}: SPA packet from ${grant.spec.source.split('/')[0]} was already used (ReplayClaim exists)`,
          );
        }
      }
      operation = 'write accessgrant';
      if (this.uninstalling) {
        // Latched while this decision waited for its claim: still nothing written.
        this.caps.release(decision.policy, name);
        return this.refuse(
          decision,
          'uninstalling',
          `${where}: knockgate is being uninstalled, nothing opened`,
        );
      }
      const stored = await this.writeGrant(grant, knownLive);
      this.caps.commit(decision.policy, name, expiresAtMs(stored));
      this.apiAnswered();
      const extended =
        (stored.metadata.generation ?? 1) > 1 || stored.spec.expiresAt !== grant.spec.expiresAt;
      this.opts.metrics?.granted.inc({
        policy: decision.policy,
        method: decision.method,
        extended: String(extended),
      });
      auditGrant(this.log, extended ? 'extend' : 'open', stored);
      const wanted = grant.spec.targets?.nodes?.includes(this.opts.node) === true;
      if (wanted && !stored.spec.targets?.nodes?.includes(this.opts.node))
        // Local-mode names carry the node, so this takes a policy whose targets changed while the
        // grant lived (e.g. Selector → another node set): the stored grant keeps its targets, and
        // this node's firewall stays closed for the source until it expires. Said, not hidden.
        this.log.warn(
          { event: 'not-targeted', grant: name, observedBy: stored.spec.observedBy, node: this.opts.node },
          `grant ${name} targets ${stored.spec.targets?.nodes?.join(', ') || 'no node'}, not node ${this.opts.node}: this node stays closed for ${stored.spec.source}`,
        );
      return { kind: 'granted', grant: stored, extended };
    } catch (err) {
      this.caps.release(decision.policy, name);
      if (err instanceof GrantValidationError)
        return this.refuse(decision, 'invalid', `${where}: ${err.message}`);
      this.opts.metrics?.apiErrors.inc({ operation });
      if (isUnavailable(err)) {
        this.apiFailed();
        return this.refuse(
          decision,
          'api-unavailable',
          `${where}: Kubernetes API unavailable, nothing opened for ${grant.spec.source} (${err.message})`,
          'error',
        );
      }
      return this.refuse(
        decision,
        'api-error',
        `${where}: nothing opened for ${grant.spec.source}: ${operation}: ${(err as Error).message}`,
        'error',
      );
    }
  }

  /**
   * Create, or extend (GrantStore.extend: a live grant gets the later expiry; a name held by history
   * or another node's grant gets the next generation). A grant this sniffer does not hold is most
   * likely new: a create is one request, and only its 409 falls back to extend (read, then patch or
   * create a generation).
   */
  private async writeGrant(grant: AccessGrant, knownLive: boolean): Promise<AccessGrant> {
    if (knownLive) return this.grants.extend(grant);
    try {
      return await this.grants.create(grant);
    } catch (err) {
      if (err instanceof AlreadyExistsError) return this.grants.extend(grant);
      throw err;
    }
  }

  private apiAnswered(): void {
    if (this.apiUp) return;
    this.apiUp = true;
    this.opts.metrics?.apiUp.set(1);
    this.log.info({ event: 'api-up' }, 'the Kubernetes API answers again: grants are written again');
  }

  private apiFailed(): void {
    this.opts.metrics?.apiUp.set(0);
    this.apiUp = false;
  }

  private refuse(
    decision: AccessDecision,
    reason: string,
    message: string,
    level: 'info' | 'error' = 'info',
  ): Outcome {
    return this.refused(
      { kind: 'refused', policy: decision.policy, reason, message },
      decision.source,
      level,
    );
  }

  /** Count every refusal; log it unless over the log rate (then the next line says how many). */
  private refused(refusal: Refusal, source: string, level: 'info' | 'error' = 'info'): Outcome {
    this.opts.metrics?.refusals.inc({ policy: refusal.policy ?? '', reason: refusal.reason });
    if (this.refusalLog.allow()) {
      const suppressed = this.refusalLog.takeSuppressed();
      if (suppressed > 0)
        this.log.info(
          { event: 'refuse-suppressed', count: suppressed },
          `${suppressed} more refusals not logged`,
        );
      if (level === 'error')
        this.log.error(
          { event: 'refuse', reason: refusal.reason, policy: refusal.policy, source },
          refusal.message,
        );
      else auditRefusal(this.log, refusal, source);
    }
    return {
      kind: 'refused',
      ...(refusal.policy !== undefined ? { policy: refusal.policy } : {}),
      reason: refusal.reason,
      message: refusal.message,
    };
  }
}
