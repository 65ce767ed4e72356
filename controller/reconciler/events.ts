// Kubernetes Events (core/v1, what `kubectl describe accessgrant` and `kubectl get events` show) for
// what happens to a grant: Opened, Expired, Revoked, Refused, Failed, and SecurityGroupFailed (one
// per group and reason: a full group, an unknown group, a refused call). involvedObject is the grant.
//
// Level-based and idempotent: an Event is named after the grant's uid and the reason, so a
// reconcile that runs twice — or a new leader that sees the same state — creates it once (a 409 is
// "already recorded"). Only transitions younger than `recentMs` are recorded, so a new leader does
// not replay a day of history. A bounded set remembers what was recorded to save requests.

import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import { API_VERSION, type AccessGrant } from '../../api/types.js';
import { toKubeApiError } from '../kube/errors.js';

export type GrantEventReason =
  'Opened' | 'Expired' | 'Revoked' | 'Refused' | 'Failed' | 'SecurityGroupFailed';

const WARNING: ReadonlySet<GrantEventReason> = new Set(['Refused', 'Failed', 'SecurityGroupFailed']);
export const COMPONENT = 'knockgate-controller';
const REMEMBERED_MAX = 50_000;

export interface EventRecorderOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  clock: Clock;
  /** This controller instance (the pod name). */
  instance: string;
  /** Called before each write: throws when this instance must not act (not the leader). */
  guard: () => void;
  logger?: Logger;
  recentMs?: number;
  /** Called once per Event created (metrics). */
  onRecorded?: (reason: GrantEventReason) => void;
}

/**
 * The Event's name: <grant>.<uid prefix>.<reason>[.<detail>], at most 253 characters. `detail`
 * (e.g. "sg-0123.quotaexceeded") tells apart several Events of one reason for one grant.
 */
export function eventName(grant: AccessGrant, reason: GrantEventReason, detail?: string): string {
  const uid = (grant.metadata.uid ?? 'nouid').replace(/[^0-9a-f]/g, '').slice(0, 12) || 'nouid';
  const tail = detail
    ? `.${detail
        .toLowerCase()
        .replace(/[^a-z0-9.-]/g, '-')
        .slice(0, 80)}`
    : '';
  return `${grant.metadata.name.slice(0, 220 - tail.length)}.${uid}.${reason.toLowerCase()}${tail}`;
}

export class EventRecorder {
  private readonly api: CoreV1Api;
  private readonly recorded = new Set<string>();
  private readonly recentMs: number;

  constructor(private readonly opts: EventRecorderOptions) {
    this.api = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.recentMs = opts.recentMs ?? 3600_000;
  }

  /**
   * Record `reason` for `grant` once. `since` is when the transition happened; older than recentMs
   * is history, not news. Throws on API failure (the reconcile is retried).
   */
  async record(
    grant: AccessGrant,
    reason: GrantEventReason,
    message: string,
    since?: number,
    detail?: string,
  ): Promise<void> {
    const now = this.opts.clock.now();
    if (since !== undefined && now - since > this.recentMs) return;
    const name = eventName(grant, reason, detail);
    if (this.recorded.has(name)) return;
    const at = new Date(since ?? now);
    const body: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: this.opts.namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: 'AccessGrant',
        name: grant.metadata.name,
        uid: grant.metadata.uid,
        resourceVersion: grant.metadata.resourceVersion,
      },
      reason,
      message: message.slice(0, 1024),
      type: WARNING.has(reason) ? 'Warning' : 'Normal',
      source: { component: COMPONENT },
      reportingComponent: `knockgate.io/controller`,
      reportingInstance: this.opts.instance.slice(0, 128),
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    this.opts.guard();
    try {
      await this.api.createNamespacedEvent({ namespace: this.opts.namespace, body });
    } catch (raw) {
      const err = toKubeApiError(`create event ${this.opts.namespace}/${name}`, raw);
      if (err.status !== 409) throw err;
    }
    this.remember(name);
    this.opts.onRecorded?.(reason);
    this.opts.logger?.info(
      { event: 'k8s-event', reason, grant: grant.metadata.name, source: grant.spec.source },
      `${reason} ${grant.metadata.name}: ${message}`,
    );
  }

  private remember(name: string): void {
    if (this.recorded.size >= REMEMBERED_MAX) {
      const oldest = this.recorded.values().next().value;
      if (oldest !== undefined) this.recorded.delete(oldest);
    }
    this.recorded.add(name);
  }
}
