// `knockgate standalone`: one host's sniffer, grant store and firewall in one process.
//
//   start():  lock the state dir → load grants and used SPA digests → install the firewall and
//             reconcile it with the live grants (expired or unknown entries removed, live ones
//             reapplied) → expiry engine (marks overdue grants Expired, runs their close) →
//             control socket → capture. Nothing is captured before the firewall is reconciled.
//   decision: neverGrant check → replay claim (SPA, one-time knocks: decided in memory, its write
//             overlapping the kernel change and finished before the grant is recorded; fail closed
//             when the store cannot answer or write) → cap on live grants → firewall → store (one
//             write, Active when nothing else waits; an extension is stored first) → start command
//             (its failure makes the grant Failed and closes it again) → Active.
//             A policy with awsSecurityGroups targets also puts the grant's rules in those groups
//             (controller/aws/group-target.ts, the controller's RegionSync); an AWS failure makes the
//             grant Failed with the reason, and whatever it opened is closed again.
//   close:    expiry, revoke: firewall entry and security-group rules removed, then the stop command.
//   resync:   every resyncIntervalMs the firewall is rewritten from the live grants in the store,
//             and every region's rules are listed again and brought to the live grants (at start
//             this revokes the rules of grants that expired while the daemon was down).
//   reload(): a new config replaces policies, keys, hooks and settings, or is refused as a whole.
//   stop():   capture off, timers off, long-lived firewall processes closed; the kernel state stays
//             (every entry carries its own expiry) so a stopped daemon leaves ports protected.
//             Security-group rules stay too, as the kernel entries do (AWS calls in flight finish
//             first): their knockgate.io/expires-at tag is their end, enforced by the next start
//             (or by `knockgate sweep` from a cron job while the host is down).
//
// Work on one grant name is serialized. The firewall orders its own operations and batches
// concurrent per-grant changes into one kernel change, so the daemon calls it without a queue.

import { hostname } from 'node:os';
import type { Server } from 'node:net';
import type { CidrSet } from '../../api/addresses.js';
import { hostCidr } from '../../api/addresses.js';
import type { Clock, TimerHandle } from '../../api/clock.js';
import type { LoadedConfig } from '../../api/config/load.js';
import type { Logger } from '../../api/log.js';
import type { Hooks } from '../../api/standalone.js';
import type { PortRef } from '../../api/ports.js';
import type {
  AccessGrant,
  AccessGrantStatus,
  Condition,
  KnockPolicy,
  SecurityGroupStatus,
} from '../../api/types.js';
import type { AccessDecision, InboundPacket, Verdict } from '../../sniffer/decision.js';
import { createEngine, type Engine } from '../../sniffer/engine.js';
import type { Sniffer, SnifferOptions } from '../../sniffer/capture/sniffer.js';
import { createSpaVerifier } from '../../sniffer/spa/verifier.js';
import { spaKeysFromSecretData } from '../../sniffer/spa/keys.js';
import type { SecurityGroupTarget } from '../aws/group-target.js';
import { ExpiryEngine } from '../expiry/engine.js';
import { reconcileOnStart } from '../expiry/reconcile.js';
import { MaxGrantsError, type Firewall, type RemoveReason } from '../firewall/types.js';
import { auditGrant, auditRefusal } from '../grants/audit.js';
import { buildGrant, GrantBuildError } from '../grants/build.js';
import { expiresAtMs, isLive } from '../grants/phase.js';
import { LocalGrantStore } from '../local/grant-store.js';
import { LocalReplayStore } from '../local/replay-store.js';
import { StateDir } from '../local/state-dir.js';
import { neverGrantSet } from './admission.js';
import { listenControlSocket, type ControlReply, type ControlRequest } from './control-socket.js';
import { firewallConfig, firewallGrant } from './firewall-view.js';
import { grantHookCommand, runGrantHook } from './grant-hooks.js';
import { Gate, KeyedQueue } from './queues.js';
import { RateLimitedLog } from './rate-limited-log.js';
import { StageTimer } from './stage-timer.js';
import type { StandaloneMetrics } from './metrics.js';

export const STANDALONE_TIMING = {
  /** The firewall is rewritten from the store this often (kube-proxy's syncPeriod). */
  resyncIntervalMs: 60_000,
  /** Refusal log lines per second at most; the rest are counted. */
  refusalLogsPerSecond: 20,
} as const;

export class StartError extends Error {}

export interface StandaloneOptions {
  config: LoadedConfig;
  stateDir: string;
  firewall: Firewall;
  startSniffer: (opts: SnifferOptions) => Sniffer;
  clock: Clock;
  logger: Logger;
  metrics?: StandaloneMetrics;
  /** Capture interfaces; default: settings.interfaces, else the default-route interfaces. */
  interfaces?: string[];
  bufferBytes?: number;
  /** spec.observedBy of the grants. Default: the host name. */
  node?: string;
  resyncIntervalMs?: number;
  /** Listen on <state-dir>/control.sock for `knockgate revoke`. Default true. */
  controlSocket?: boolean;
  /** The security-group target; required when a policy has awsSecurityGroups targets. */
  securityGroups?: SecurityGroupTarget;
}

/** The regions the policies' awsSecurityGroups targets name. */
export function configRegions(config: LoadedConfig): string[] {
  return [
    ...new Set(
      config.policies.flatMap((p) => (p.spec.grant.targets?.awsSecurityGroups ?? []).map((g) => g.region)),
    ),
  ];
}

/** Null when the config can run with (or without) a security-group target, else the one-line reason. */
export function awsTargetProblem(config: LoadedConfig, haveTarget: boolean): string | null {
  if (haveTarget) return null;
  const p = config.policies.find((x) => (x.spec.grant.targets?.awsSecurityGroups ?? []).length > 0);
  if (!p) return null;
  const g = p.spec.grant.targets!.awsSecurityGroups![0]!;
  return `policy "${p.metadata.name}" targets security group ${g.groupId} (${g.region}): --cluster-id is required (the knockgate.io/cluster tag of the rules it adds; no default)`;
}

/** The SPA verifier of `policy` with its keys from `config`. Throws (the engine leaves it out). */
function verifierFor(config: LoadedConfig, policy: KnockPolicy, clock: Clock) {
  const ref = policy.spec.spa!.keySecretRef.name;
  const data = config.secrets[ref];
  if (!data) throw new Error(`no keys named "${ref}"`);
  return createSpaVerifier(policy, spaKeysFromSecretData(data), { clock });
}

/** Throws StartError naming the first policy of `engine` that cannot run. */
function checkEngine(engine: Engine): void {
  const problem = engine.problems()[0];
  if (problem) throw new StartError(`policy "${problem.policy}": ${problem.message}`);
}

/** Check that every policy of `config` can run, with a throwaway engine. Throws StartError. */
function checkConfig(config: LoadedConfig, clock: Clock): PortRef[] {
  const engine = createEngine({
    policies: config.policies,
    clock,
    spaVerifierFor: (policy) => verifierFor(config, policy, clock),
  });
  try {
    checkEngine(engine);
    return engine.ports();
  } finally {
    engine.dispose();
  }
}

export class StandaloneDaemon {
  private config: LoadedConfig;
  private engine: Engine;
  private neverGrant: CidrSet;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly node: string;
  private readonly perGrant = new KeyedQueue();
  private readonly refusals: RateLimitedLog;
  private state: StateDir | undefined;
  private store: LocalGrantStore | undefined;
  private replay: LocalReplayStore | undefined;
  private expiry: ExpiryEngine | undefined;
  private sniffer: Sniffer | undefined;
  private control: Server | undefined;
  private resyncTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly opts: StandaloneOptions) {
    this.config = opts.config;
    this.clock = opts.clock;
    this.log = opts.logger;
    this.node = opts.node ?? hostname();
    const awsProblem = awsTargetProblem(opts.config, opts.securityGroups !== undefined);
    if (awsProblem) throw new StartError(awsProblem);
    // Verifiers read the current config, so a reload's new keys reach policies rebuilt after it.
    this.engine = createEngine({
      policies: opts.config.policies,
      clock: opts.clock,
      spaVerifierFor: (policy) => verifierFor(this.config, policy, this.clock),
    });
    try {
      checkEngine(this.engine);
    } catch (err) {
      this.engine.dispose();
      throw err;
    }
    this.neverGrant = neverGrantSet(opts.config.settings.neverGrant);
    this.refusals = new RateLimitedLog(opts.clock, STANDALONE_TIMING.refusalLogsPerSecond);
  }

  get grantStore(): LocalGrantStore {
    if (!this.store) throw new Error('the daemon is not started');
    return this.store;
  }

  /** Bring everything up; on failure, whatever was brought up is taken down again and it throws. */
  async start(): Promise<void> {
    try {
      await this.startInOrder();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startInOrder(): Promise<void> {
    const { config, clock, log: logger } = this;
    this.state = await StateDir.open(this.opts.stateDir);
    this.store = await LocalGrantStore.open(this.state, { clock, logger });
    this.replay = await LocalReplayStore.open(this.state, { clock, logger });

    await this.opts.firewall.install(firewallConfig(config.settings, this.engine.ports()));
    const { live, expired } = reconcileOnStart(await this.store.list(), clock);
    await this.resync();
    logger.info(
      { event: 'reconcile', live: live.length, expired: expired.length, backend: this.opts.firewall.backend },
      `reconciled the ${this.opts.firewall.backend} firewall: ${live.length} live grants reapplied`,
    );

    this.expiry = new ExpiryEngine({
      store: this.store,
      clock,
      logger,
      onExpire: (grant) => {
        const lagMs = this.clock.now() - expiresAtMs(grant);
        if (Number.isFinite(lagMs)) this.opts.metrics?.expiryLag.observe(Math.max(0, lagMs) / 1000);
        return this.closeGrant(grant, 'expired');
      },
    });
    await this.expiry.start();
    this.armResync();

    if (this.opts.controlSocket !== false)
      this.control = await listenControlSocket(this.opts.stateDir, (req) => this.onControl(req));

    this.sniffer = this.opts.startSniffer({
      engine: this.engine,
      clock,
      interfaces: this.opts.interfaces ?? config.settings.interfaces,
      ...(this.opts.bufferBytes !== undefined ? { bufferBytes: this.opts.bufferBytes } : {}),
      onVerdict: (verdict, packet, capturedAtMs) => this.onVerdict(verdict, packet, capturedAtMs),
      onError: (err) => logger.error({ event: 'verdict-error' }, (err as Error).message),
    });
    const sniffer = this.sniffer;
    this.opts.metrics?.spaGateRefused.setSource(() => sniffer.spaGateCounts?.());
    this.opts.metrics?.setCaptureDropsSource(() => this.sniffer?.drops() ?? []);
    this.opts.metrics?.setActiveGrantsSource(() => this.activeByTarget());
    this.opts.metrics?.packets.setSources({
      knockSteps: () => this.engine.knockSteps?.() ?? 0,
      gateCounts: () => sniffer.spaGateCounts?.(),
    });
    logger.info(
      {
        event: 'started',
        mode: config.settings.mode,
        interfaces: this.sniffer.interfaces(),
        policies: config.policies.map((p) => p.metadata.name),
        protectedPorts: config.settings.protectedPorts,
      },
      `knockgate standalone (${config.format} config, ${config.settings.mode}) capturing on ${this.sniffer.interfaces().join(', ') || 'nothing'}`,
    );
  }

  /** Stop capturing and timers; wait for work in flight; keep the kernel state. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.sniffer?.close();
    this.resyncTimer?.cancel();
    this.expiry?.stop();
    if (this.control) await new Promise<void>((resolve) => this.control!.close(() => resolve()));
    await this.expiry?.settled();
    await this.perGrant.idle();
    await this.opts.securityGroups?.close();
    await this.opts.firewall.close().catch(() => undefined);
    this.engine.dispose();
    await this.replay?.close();
    await this.store?.close();
    await this.state?.close();
  }

  /**
   * Replace the config (SIGHUP). The new one must build an engine and install on the firewall, or
   * nothing changes. The backend cannot change without a restart.
   */
  async reload(next: LoadedConfig): Promise<void> {
    if (next.settings.backend !== this.config.settings.backend)
      throw new StartError(
        `backend ${next.settings.backend} needs a restart (running ${this.config.settings.backend})`,
      );
    const awsProblem = awsTargetProblem(next, this.opts.securityGroups !== undefined);
    if (awsProblem) throw new StartError(awsProblem);
    const knockPorts = checkConfig(next, this.clock);
    const keysChanged = JSON.stringify(next.secrets) !== JSON.stringify(this.config.secrets);
    await this.opts.firewall.install(firewallConfig(next.settings, knockPorts));
    this.config = next;
    this.neverGrant = neverGrantSet(next.settings.neverGrant);
    // The engine keeps unchanged policies' state (knocks in progress); new keys need new verifiers.
    if (keysChanged) this.engine.setPolicies([]);
    this.engine.setPolicies(next.policies);
    this.sniffer?.refresh();
    await this.resync();
    this.log.info(
      { event: 'reloaded', policies: next.policies.map((p) => p.metadata.name) },
      `reloaded: ${next.policies.length} policies`,
    );
  }

  /** Close every live grant of `source` (and `policy`) now. Resolves to the grants' names. */
  async revoke(source: string, policy?: string): Promise<string[]> {
    const cidr = hostCidr(source).toLowerCase();
    const now = this.clock.now();
    const targets = (await this.grantStore.list()).filter(
      (g) =>
        g.spec.source === cidr &&
        isLive(g, now) &&
        (policy === undefined || g.spec.policyRef?.name === policy),
    );
    await Promise.all(
      targets.map((g) =>
        this.perGrant.run(g.metadata.name, async () => {
          const current = await this.grantStore.get(g.metadata.name);
          if (!current || !isLive(current, this.clock.now())) return;
          const marked = await this.grantStore.updateStatus(
            current.metadata.name,
            this.status('Revoked', 'Revoked', 'revoked by knockgate revoke', 'Removed'),
          );
          auditGrant(this.log, 'revoke', marked);
          await this.closeGrant(marked, 'revoked');
        }),
      ),
    );
    return targets.map((g) => g.metadata.name);
  }

  // --- decisions -------------------------------------------------------------------------------

  private onVerdict(verdict: Verdict, packet: InboundPacket, capturedAtMs?: number): void {
    if (verdict.kind === 'refused') {
      this.opts.metrics?.refusals.inc({ policy: verdict.policy ?? '', reason: verdict.reason });
      // A refusal verdict comes from an SPA verifier (a knock door's only one is its own failure).
      const policy = this.config.policies.find((p) => p.metadata.name === verdict.policy);
      this.opts.metrics?.packets.decided(policy && !policy.spec.spa ? 'knock' : 'spa', false);
      if (this.refusals.allow()) {
        const suppressed = this.refusals.takeSuppressed();
        if (suppressed > 0)
          this.log.info(
            { event: 'refuse-suppressed', count: suppressed },
            `${suppressed} more refusals not logged`,
          );
        auditRefusal(this.log, verdict, packet.src);
      }
      return;
    }
    void this.decide(verdict, capturedAtMs).catch((err: Error) => {
      this.opts.metrics?.packets.decided(verdict.method, false);
      this.log.error({ event: 'decision-error', policy: verdict.policy }, err.message);
    });
  }

  private refuse(decision: AccessDecision, reason: string, message: string): void {
    this.opts.metrics?.refusals.inc({ policy: decision.policy, reason });
    this.opts.metrics?.packets.decided(decision.method, false);
    auditRefusal(this.log, { kind: 'refused', policy: decision.policy, reason, message }, decision.source);
  }

  /**
   * Turn one decision into an open (or extended) grant, or a refusal. `capturedAtMs` (when the
   * kernel received the deciding packet, wall-clock ms) starts the stage timings logged at debug
   * level (`grant-timing`).
   */
  async decide(decision: AccessDecision, capturedAtMs?: number): Promise<void> {
    const trace = new StageTimer(capturedAtMs);
    const where = `policy "${decision.policy}"`;
    const address = decision.source.split('/')[0]!;
    if (this.neverGrant.has(address))
      return this.refuse(decision, 'never-grant', `${where}: ${address} is never granted on this host`);
    let grant: AccessGrant;
    try {
      grant = buildGrant(decision, { clock: this.clock, node: this.node, targets: this.targetsOf(decision) });
    } catch (err) {
      if (err instanceof GrantBuildError) return this.refuse(decision, 'invalid', err.message);
      throw err;
    }
    // The replay claim is decided in memory now (a concurrent replay of the packet is refused at
    // once); its write waits until the kernel has the grant (`kernelDone`: open() opens it there, or
    // before it waits for the claim, and the finally below on every other path), because the
    // write's syscalls and the disk's journal would otherwise take the two cores' time from the
    // kernel change. open() waits for the write before the grant is recorded (see there why that is
    // safe across a crash).
    let claimWritten: Promise<Error | undefined> | undefined;
    let kernelDone: Gate | undefined; // only a claimed packet has a write to hold back
    if (decision.claim) {
      kernelDone = new Gate();
      let claimed: ReturnType<LocalReplayStore['claimNow']>;
      try {
        claimed = this.replay!.claimNow(
          decision.claim.digest,
          decision.claim.expiresAt,
          decision.policy,
          kernelDone.opened,
        );
        trace.mark('replayClaimMs');
      } catch (err) {
        return this.refuse(
          decision,
          'replay-store',
          `${where}: replay store unavailable: ${(err as Error).message}`,
        );
      }
      if (claimed.result === 'replay')
        return this.refuse(decision, 'replay', `${where}: SPA packet from ${address} was already used`);
      claimWritten = trace.span('replayWriteMs', claimed.durable).then(
        () => undefined,
        (err: Error) => err,
      );
    }
    try {
      await this.perGrant.run(grant.metadata.name, () =>
        this.open(grant, decision, trace, kernelDone, claimWritten),
      );
    } finally {
      kernelDone?.open();
    }
  }

  /**
   * `claimWritten`: the replay claim's durable write (SPA, one-time knocks), settling to its error.
   * A new grant on this host's firewall goes to the kernel without waiting for it; everything else
   * waits for it first. Either way nothing is recorded before the claim is on disk, and a claim that
   * cannot be written closes again whatever was opened. Across a crash this is safe: the kernel
   * element is the only trace of a grant before its record, and a restart rewrites the whole table
   * from the recorded grants (install, then resync), so an element whose claim never reached the
   * disk is removed with it. Such a packet may then open once more after the restart, as if it had
   * arrived only then; what a replay can never do is open a second time while the first open is
   * still in force (in memory here, on disk once recorded).
   */
  private async open(
    grant: AccessGrant,
    decision: AccessDecision,
    trace: StageTimer,
    kernelDone: Gate | undefined,
    claimWritten?: Promise<Error | undefined>,
  ): Promise<void> {
    const store = this.grantStore;
    const name = grant.metadata.name;
    trace.mark('queueMs');
    const before = await store.get(name);
    trace.mark('storeReadMs');
    const extending = before !== undefined && isLive(before, this.clock.now());
    const onFirewall = this.appliesHere(grant);
    const fw = this.opts.firewall.stats();
    if (onFirewall && !extending && fw.grants >= fw.maxGrants) {
      this.opts.metrics?.maxGrantsRefused.inc();
      return this.refuse(
        decision,
        'max-grants',
        `policy "${decision.policy}": ${fw.maxGrants} grants are open (--max-grants); refusing ${grant.spec.source}`,
      );
    }
    const audit = this.config.settings.mode === 'Audit';
    const fastPath = onFirewall && !extending;
    if (!fastPath && claimWritten) {
      kernelDone?.open();
      const claimError = await claimWritten;
      if (claimError) return this.refuse(decision, 'replay-store', this.claimProblem(decision, claimError));
    }
    let stored: AccessGrant;
    if (fastPath) {
      // A new grant: the kernel first, nothing durable before it (the entry carries its own end,
      // and a restart removes entries no stored grant accounts for), then one write records it.
      try {
        await trace.span(
          'firewallMs',
          this.opts.firewall.add(firewallGrant(grant), () => {
            trace.reached('kernelAtMs');
            kernelDone?.open();
          }),
        );
      } catch (err) {
        if (err instanceof MaxGrantsError) this.opts.metrics?.maxGrantsRefused.inc();
        kernelDone?.open();
        await claimWritten; // nothing recorded before the claim (the packet is used either way)
        return this.fail(await store.extend(grant), `firewall: ${(err as Error).message}`);
      }
      kernelDone?.open(); // onApplied has opened it; again in case an add resolved without it
      const claimError = await claimWritten;
      if (claimError) return this.unclaimed(grant, decision, claimError);
      // With nothing left to run before it is Active (no start command, no security groups), the
      // grant is written as Active in that same write: one fsync per open, not two.
      const done = this.activeOnOpen(grant) ? this.status('Active', 'Applied', 'open', 'Applied') : undefined;
      try {
        stored = await trace.span('storeWriteMs', store.extend(grant, done));
      } catch (err) {
        return this.unrecorded(grant, err as Error);
      }
      if (done) return this.opened(grant.metadata.name, stored, decision, trace, false);
    } else {
      // An extension is applied as stored (ports merged); a grant for no firewall here only stored.
      stored = await trace.span('storeWriteMs', store.extend(grant));
      try {
        if (onFirewall) await this.opts.firewall.add(firewallGrant(stored));
      } catch (err) {
        if (err instanceof MaxGrantsError) this.opts.metrics?.maxGrantsRefused.inc();
        return this.fail(stored, `firewall: ${(err as Error).message}`);
      }
    }
    const groups = await this.openGroups(stored, audit);
    if (groups.problem !== undefined) return this.fail(stored, groups.problem, groups.groups);
    if (!extending) {
      if (audit) {
        const command = grantHookCommand(this.hooksOf(stored), 'start', stored);
        if (command !== undefined)
          this.log.info(
            { event: 'audit', grant: name, command },
            `audit mode: would run the start command for ${name}: ${command}`,
          );
      } else {
        const hook = await runGrantHook(this.hooksOf(stored), 'start', stored, this.log);
        if (!hook.ok) return this.fail(stored, hook.message!);
      }
      await store.updateStatus(name, this.status('Active', 'Applied', 'open', 'Applied', groups.groups));
      trace.mark('statusWriteMs');
    }
    this.opened(name, stored, decision, trace, extending);
  }

  /** Whether a new grant is Active as soon as the firewall has it: no command or group to wait for. */
  private activeOnOpen(grant: AccessGrant): boolean {
    if ((grant.spec.targets?.awsSecurityGroups ?? []).length > 0) return false;
    return grantHookCommand(this.hooksOf(grant), 'start', grant) === undefined;
  }

  private claimProblem(decision: AccessDecision, err: Error): string {
    return `policy "${decision.policy}": replay store unavailable: ${err.message}`;
  }

  /**
   * The firewall opened a grant whose replay claim could not be written: it is closed again before
   * anything records it (a packet whose use is not on disk must not stay open), and refused.
   */
  private async unclaimed(grant: AccessGrant, decision: AccessDecision, err: Error): Promise<void> {
    const closed = await this.closeAgain(grant.metadata.name);
    this.refuse(decision, 'replay-store', `${this.claimProblem(decision, err)}; ${closed}`);
  }

  /** Remove an element opened without a record; says how that went, for the error line. */
  private async closeAgain(name: string): Promise<string> {
    try {
      await this.opts.firewall.remove({ name }, 'revoked');
      return 'closed again';
    } catch (again) {
      return `and closing it failed too: ${(again as Error).message}`;
    }
  }

  /**
   * The firewall opened a grant the store could not record: it is closed again (never open without
   * a record), and the failure is one error line.
   */
  private async unrecorded(grant: AccessGrant, err: Error): Promise<void> {
    const name = grant.metadata.name;
    const closed = await this.closeAgain(name);
    this.opts.metrics?.failed.inc({ policy: grant.spec.policyRef?.name ?? '' });
    this.log.error(
      { event: 'failed', grant: name, source: grant.spec.source, reason: 'not-recorded' },
      `grant ${name} could not be recorded (${err.message}); ${closed}`,
    );
  }

  /** Timings, metrics and the audit line of a grant that is open (or extended). */
  private opened(
    name: string,
    stored: AccessGrant,
    decision: AccessDecision,
    trace: StageTimer,
    extending: boolean,
  ): void {
    const audit = this.config.settings.mode === 'Audit';
    const stages = trace.stages();
    this.log.debug({ event: 'grant-timing', grant: name, ...stages }, `grant ${name} stage timings`);
    if (!extending)
      this.opts.metrics?.openLatency.observe(
        ((stages['captureToDecisionMs'] ?? 0) + (stages['decisionToDoneMs'] ?? 0)) / 1000,
      );
    this.opts.metrics?.opened.inc({
      policy: decision.policy,
      method: decision.method,
      extended: String(extending),
    });
    this.opts.metrics?.packets.decided(decision.method, true);
    auditGrant(
      this.log,
      extending ? 'extend' : 'open',
      stored,
      audit ? 'audit mode: nothing is enforced' : undefined,
    );
  }

  /**
   * The grant's security-group rules (none, or only logged in Audit mode). `problem` when a group
   * could not be opened: the grant fails then, and fail() takes away what the other groups got.
   */
  private async openGroups(
    grant: AccessGrant,
    audit: boolean,
  ): Promise<{ groups?: Record<string, SecurityGroupStatus>; problem?: string }> {
    const refs = grant.spec.targets?.awsSecurityGroups ?? [];
    if (refs.length === 0) return {};
    if (audit) {
      this.log.info(
        { event: 'audit', grant: grant.metadata.name, securityGroups: refs },
        `audit mode: would add rules for ${grant.spec.source} to ${refs.map((r) => `${r.groupId} (${r.region})`).join(', ')}`,
      );
      return {};
    }
    const sg = await this.opts.securityGroups!.add(grant);
    return sg.problem === undefined
      ? { groups: sg.groups }
      : { groups: sg.groups, problem: `aws: ${sg.problem}` };
  }

  /** A grant that could not be opened: Failed with the reason, and nothing left open. */
  private async fail(
    grant: AccessGrant,
    reason: string,
    groups?: Record<string, SecurityGroupStatus>,
  ): Promise<void> {
    await this.grantStore.updateStatus(
      grant.metadata.name,
      this.status('Failed', 'Failed', reason, 'Failed', groups),
    );
    await Promise.all([
      this.opts.firewall.remove({ name: grant.metadata.name }, 'revoked'),
      this.opts.securityGroups?.remove(grant.metadata.name),
    ]);
    this.opts.metrics?.failed.inc({ policy: grant.spec.policyRef?.name ?? '' });
    this.opts.metrics?.packets.decided(grant.spec.method === 'spa' ? 'spa' : 'knock', false);
    this.log.error(
      { event: 'failed', grant: grant.metadata.name, reason },
      `grant ${grant.metadata.name} failed: ${reason}`,
    );
  }

  /** Remove the firewall entry and security-group rules, then run the stop command (once the door is shut). */
  private async closeGrant(grant: AccessGrant, reason: RemoveReason): Promise<void> {
    await Promise.all([
      this.opts.firewall.remove({ name: grant.metadata.name }, reason),
      this.opts.securityGroups?.remove(grant.metadata.name),
    ]);
    if (this.config.settings.mode === 'Audit') return;
    await runGrantHook(this.hooksOf(grant), 'stop', grant, this.log);
  }

  /**
   * A policy whose grants target no node (`targets.node.mode: None`: a knockd door that only runs
   * its command, an access.conf stanza without OPEN_PORTS) runs its commands and opens nothing here.
   */
  private targetsOf(decision: AccessDecision): AccessGrant['spec']['targets'] {
    const policy = this.config.policies.find((p) => p.metadata.name === decision.policy);
    const targets = policy?.spec.grant.targets;
    const groups = targets?.awsSecurityGroups ?? [];
    return {
      nodes: targets?.node?.mode === 'None' ? [] : [this.node],
      ...(groups.length > 0 ? { awsSecurityGroups: groups.map((g) => ({ ...g })) } : {}),
    };
  }

  /** Active, unexpired grants by what they open: this host ("node"), security groups, neither. */
  private async activeByTarget(): Promise<Record<'node' | 'securityGroup' | 'none', number>> {
    const counts = { node: 0, securityGroup: 0, none: 0 };
    const now = this.clock.now();
    for (const g of await this.grantStore.list()) {
      if (g.status?.phase !== 'Active' || !isLive(g, now)) continue;
      const here = this.appliesHere(g);
      const groups = (g.spec.targets?.awsSecurityGroups?.length ?? 0) > 0;
      if (here) counts.node++;
      if (groups) counts.securityGroup++;
      if (!here && !groups) counts.none++;
    }
    return counts;
  }

  /** Does the grant open this host's firewall? */
  private appliesHere(grant: AccessGrant): boolean {
    return grant.spec.targets?.nodes?.includes(this.node) ?? true;
  }

  private hooksOf(grant: AccessGrant): Hooks | undefined {
    const policy = grant.spec.policyRef?.name;
    return policy === undefined ? undefined : this.config.hooks[policy];
  }

  private status(
    phase: 'Active' | 'Failed' | 'Revoked',
    reason: string,
    message: string,
    nodeState: 'Applied' | 'Failed' | 'Removed',
    securityGroups?: Record<string, SecurityGroupStatus>,
  ): AccessGrantStatus {
    const since = new Date(this.clock.now()).toISOString();
    const condition: Condition = {
      type: 'Ready',
      status: phase === 'Active' ? 'True' : 'False',
      reason,
      message,
      lastTransitionTime: since,
    };
    return {
      phase,
      message,
      conditions: [condition],
      nodes: { [this.node]: { state: nodeState, since } },
      ...(securityGroups && Object.keys(securityGroups).length > 0 ? { securityGroups } : {}),
    };
  }

  // --- resync and control ----------------------------------------------------------------------

  /** Rewrite the firewall's grants from the live grants in the store (one atomic apply). */
  async resync(): Promise<void> {
    const now = this.clock.now();
    const live = (await this.grantStore.list()).filter((g) => isLive(g, now));
    const here = live.filter((g) => this.appliesHere(g));
    await Promise.all([this.opts.firewall.sync(here.map(firewallGrant)), this.resyncGroups(live)]);
    this.opts.metrics?.activeGrants.set(live.length);
  }

  /** Every region listed again and brought to the live grants; what could not be done is logged. */
  private async resyncGroups(live: AccessGrant[]): Promise<void> {
    const target = this.opts.securityGroups;
    if (!target || this.config.settings.mode === 'Audit') return;
    const results = await target.sync(live, configRegions(this.config));
    for (const [region, res] of results) {
      const failed = [...res.rules].filter(([, o]) => o.state === 'Failed');
      if (failed.length > 0 && !res.listError)
        this.log.error(
          { event: 'aws-error', region, rules: failed.map(([k]) => k) },
          `security groups in ${region}: ${failed.length} rule(s) of live grants not applied: ${failed[0]![1].reason}: ${failed[0]![1].message}`,
        );
    }
  }

  private armResync(): void {
    if (this.stopped) return;
    const every = this.opts.resyncIntervalMs ?? STANDALONE_TIMING.resyncIntervalMs;
    this.resyncTimer = this.clock.setTimeout(() => {
      void this.resync()
        .catch((err: Error) =>
          this.log.error({ event: 'resync-error' }, `firewall resync failed: ${err.message}`),
        )
        .finally(() => this.armResync());
    }, every);
  }

  private async onControl(req: ControlRequest): Promise<ControlReply> {
    const revoked = await this.revoke(req.source, req.policy);
    return { ok: true, revoked };
  }
}
