// Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does it:
//
// - every retryPeriod a candidate reads the Lease. It takes it when it does not exist, names no
//   holder, or has not changed for leaseDuration as this candidate observed it (the local time at
//   which the holder/renewTime last changed, so clocks of different machines are never compared).
//   The take-over is a replace carrying the read resourceVersion: of two candidates, one wins.
// - the leader renews every retryPeriod. It stops leading at once when a read shows another holder
//   (the Lease was taken over), and when no renewal has succeeded for renewDeadline — checked by a
//   timer and again by isLeader() itself, so a leader cut off from the API never acts on a Lease
//   that may already be someone else's.
// - stop({release: true}) gives the Lease up (empty holder), so a successor need not wait out the
//   lease duration; a killed leader's Lease simply expires.
//
// All timers run on the injectable clock.

import type { Clock, TimerHandle } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import { isConflict, type Lease, type LeaseClient, type LeaseSpec } from './lease-client.js';
import { microTime } from './microtime.js';

export const LEADER_DEFAULTS = {
  /** client-go's defaults (LeaseDuration 15 s, RenewDeadline 10 s, RetryPeriod 2 s). */
  leaseDurationSeconds: 15,
  renewDeadlineSeconds: 10,
  retryPeriodSeconds: 2,
} as const;

export interface LeaderElectorOptions {
  client: LeaseClient;
  /** This candidate (the pod name): spec.holderIdentity. */
  identity: string;
  clock: Clock;
  logger?: Logger;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  onStartedLeading(): void;
  onStoppedLeading(reason: string): void;
}

export class LeaderElector {
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private leading = false;
  /** Clock time at which the last successful acquire/renew was sent. */
  private renewedAt = -Infinity;
  /** The Lease record as last observed, and when (local clock) it last changed. */
  private observedRecord: string | undefined;
  private observedAt = 0;
  /** spec.holderIdentity of the Lease as last read ('' = nobody; undefined = never read). */
  private observedHolder: string | undefined;
  private loopTimer: TimerHandle | undefined;
  private deadlineTimer: TimerHandle | undefined;
  private attempt: Promise<void> | undefined;
  private running = false;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.leaseMs = (opts.leaseDurationSeconds ?? LEADER_DEFAULTS.leaseDurationSeconds) * 1000;
    this.renewDeadlineMs = (opts.renewDeadlineSeconds ?? LEADER_DEFAULTS.renewDeadlineSeconds) * 1000;
    this.retryMs = (opts.retryPeriodSeconds ?? LEADER_DEFAULTS.retryPeriodSeconds) * 1000;
    if (!(this.leaseMs > this.renewDeadlineMs && this.renewDeadlineMs > this.retryMs && this.retryMs > 0))
      throw new Error('leader election: want leaseDuration > renewDeadline > retryPeriod > 0');
  }

  get identity(): string {
    return this.opts.identity;
  }

  /** True while this candidate holds the Lease and its last renewal is within renewDeadline. */
  isLeader(): boolean {
    if (this.leading && this.opts.clock.now() >= this.renewedAt + this.renewDeadlineMs)
      this.lose(`no renewal for ${this.renewDeadlineMs / 1000} s`);
    return this.leading;
  }

  /** Who held the Lease at the last read ('' = nobody, undefined = not read yet). */
  holder(): string | undefined {
    return this.observedHolder;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  /** Stop campaigning; with `release`, give the Lease up so a successor takes over at once. */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.loopTimer?.cancel();
    await this.attempt;
    const wasLeading = this.isLeader();
    if (wasLeading) this.lose('stopped');
    if (wasLeading && opts.release) {
      try {
        const lease = await this.opts.client.get();
        if (lease?.spec.holderIdentity === this.opts.identity) {
          const now = this.opts.clock.now();
          await this.opts.client.replace(lease.metadata.resourceVersion, {
            ...lease.spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: microTime(now),
          });
        }
      } catch (err) {
        this.opts.logger?.warn(
          { event: 'lease-release-failed', lease: this.opts.client.where },
          `could not release the lease: ${(err as Error).message}`,
        );
      }
    }
  }

  // --- the loop ----------------------------------------------------------------------------------

  private tick(): void {
    if (!this.running) return;
    this.attempt = this.tryAcquireOrRenew()
      .catch((err: Error) => {
        this.opts.logger?.warn(
          { event: 'lease-error', lease: this.opts.client.where, leading: this.leading },
          err.message,
        );
      })
      .finally(() => {
        this.attempt = undefined;
        if (this.running) this.loopTimer = this.opts.clock.setTimeout(() => this.tick(), this.retryMs);
      });
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const started = this.opts.clock.now();
    const me = this.opts.identity;
    const lease = await this.opts.client.get();
    if (!this.running) return;
    const now = this.opts.clock.now();
    const spec: LeaseSpec = {
      holderIdentity: me,
      leaseDurationSeconds: this.leaseMs / 1000,
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    if (!lease) {
      await this.write(() => this.opts.client.create(spec), started);
      return;
    }
    this.observe(lease, now);
    const holder = lease.spec.holderIdentity ?? '';
    if (holder !== me) {
      if (this.leading) this.lose(`the lease was taken over by ${holder || 'nobody'}`);
      const duration = (lease.spec.leaseDurationSeconds ?? this.leaseMs / 1000) * 1000;
      if (holder !== '' && now < this.observedAt + duration) return; // held by a live leader
      spec.leaseTransitions = (lease.spec.leaseTransitions ?? 0) + 1;
    } else {
      spec.acquireTime = lease.spec.acquireTime ?? spec.acquireTime;
      spec.leaseTransitions = lease.spec.leaseTransitions ?? 0;
    }
    await this.write(() => this.opts.client.replace(lease.metadata.resourceVersion, spec), started);
  }

  private async write(send: () => Promise<Lease>, started: number): Promise<void> {
    let written: Lease;
    try {
      written = await send();
    } catch (err) {
      if (isConflict(err)) return; // someone else wrote it first: read again next period
      throw err;
    }
    if (!this.running) return;
    this.observe(written, this.opts.clock.now());
    this.renewedAt = started;
    if (!this.leading) {
      this.leading = true;
      this.opts.logger?.info(
        { event: 'leader-started', lease: this.opts.client.where, identity: this.opts.identity },
        `became the leader (${this.opts.client.where})`,
      );
      this.opts.onStartedLeading();
    }
    this.armDeadline();
  }

  private observe(lease: Lease, now: number): void {
    this.observedHolder = lease.spec.holderIdentity ?? '';
    const record = JSON.stringify([
      lease.spec.holderIdentity,
      lease.spec.renewTime,
      lease.spec.leaseDurationSeconds,
    ]);
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = now;
    }
  }

  private armDeadline(): void {
    this.deadlineTimer?.cancel();
    const at = this.renewedAt + this.renewDeadlineMs;
    this.deadlineTimer = this.opts.clock.setTimeout(
      () => void this.isLeader(),
      Math.max(0, at - this.opts.clock.now()),
    );
  }

  private lose(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.deadlineTimer?.cancel();
    this.opts.logger?.warn(
      { event: 'leader-stopped', lease: this.opts.client.where, identity: this.opts.identity, reason },
      `stopped leading: ${reason}`,
    );
    this.opts.onStoppedLeading(reason);
  }
}
