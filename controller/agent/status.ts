// This node's entry in each grant's status.nodes, written apart from the firewall work so that a
// slow or unreachable API never delays opening or closing a door. Level-based: the wanted entry is
// compared with what the grant in the cache already says, and only a difference is written (a few
// grants in parallel, each grant once at a time, latest wish wins); a failed write stops the
// writers until a backoff on the clock has passed.

import type { Clock, TimerHandle } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { AccessGrant, NodeStatus, TargetState } from '../../api/types.js';
import { Backoff } from '../kube/backoff.js';
import { GrantGoneError, type NodeStatusWriter, type ObjectCache } from './sources.js';

export interface WantedStatus {
  state: TargetState;
  message?: string;
}

export const STATUS_RETRY = { initialMs: 1_000, maxMs: 30_000 } as const;
/** Writes in flight at once (each a small merge patch of one grant's status). */
export const STATUS_WRITES = { concurrency: 8 } as const;

/** True when the grant's status already shows `want` for `node`. */
export function shows(grant: AccessGrant | undefined, node: string, want: WantedStatus): boolean {
  const current = grant?.status?.nodes?.[node];
  return current !== undefined && current.state === want.state && current.message === want.message;
}

export class StatusReporter {
  private readonly pending = new Map<string, WantedStatus>();
  private readonly backoff: Backoff;
  private running: Promise<void> | undefined;
  private retryTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly node: string,
    private readonly grants: ObjectCache<AccessGrant>,
    private readonly writer: NodeStatusWriter,
    private readonly clock: Clock,
    private readonly logger: Logger,
    random?: () => number,
  ) {
    this.backoff = new Backoff({ ...STATUS_RETRY, random });
  }

  /** Make status.nodes[node] of grant `name` say `want` (a no-op when it already does). */
  want(name: string, want: WantedStatus): void {
    if (this.stopped) return;
    if (shows(this.grants.get(name), this.node, want)) {
      this.pending.delete(name);
      return;
    }
    this.pending.set(name, want);
    if (!this.retryTimer) this.kick();
  }

  /** Forget a grant that is gone. */
  forget(name: string): void {
    this.pending.delete(name);
  }

  get backlog(): number {
    return this.pending.size;
  }

  /** Resolves once no write is in flight (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  stop(): void {
    this.stopped = true;
    this.retryTimer?.cancel();
    this.pending.clear();
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      // A wish that arrived after the workers saw nothing left, before they ended.
      if (this.pending.size > 0 && !this.retryTimer) this.kick();
    });
  }

  /** `STATUS_WRITES.concurrency` writers; a failed write stops them all until its backoff ends. */
  private async drain(): Promise<void> {
    const inFlight = new Set<string>();
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!this.stopped && !failed) {
        let next: [string, WantedStatus] | undefined;
        for (const entry of this.pending) {
          if (inFlight.has(entry[0])) continue; // at most `concurrency` skipped
          next = entry;
          break;
        }
        if (!next) return;
        const [name, want] = next;
        if (shows(this.grants.get(name), this.node, want)) {
          this.pending.delete(name);
          continue;
        }
        const status: NodeStatus = { state: want.state, since: new Date(this.clock.now()).toISOString() };
        if (want.message !== undefined) status.message = want.message;
        inFlight.add(name);
        try {
          await this.writer.patch(name, this.node, status);
          // Written unless a newer wish arrived meanwhile.
          if (this.pending.get(name) === want) this.pending.delete(name);
          this.backoff.reset();
        } catch (err) {
          if (err instanceof GrantGoneError) {
            if (this.pending.get(name) === want) this.pending.delete(name);
            continue;
          }
          if (failed) return;
          failed = true;
          const wait = this.backoff.next();
          this.logger.warn(
            { event: 'status-write-failed', grant: name, retryInMs: wait },
            `status of ${name}: ${(err as Error).message}`,
          );
          this.retryTimer = this.clock.setTimeout(() => {
            this.retryTimer = undefined;
            this.kick();
          }, wait);
          return;
        } finally {
          inFlight.delete(name);
        }
      }
    };
    await Promise.all(Array.from({ length: STATUS_WRITES.concurrency }, () => worker()));
  }
}
