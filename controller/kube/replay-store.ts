// KubeReplayStore: the ReplayStore of the Kubernetes roles, over ReplayClaim custom objects.
//
// A claim is a create of a ReplayClaim named by the digest itself (lowercase hex, a valid object
// name), with spec.expiresAt. The API server creates a name at most once, so of any number of
// sniffers on any nodes claiming one digest at the same time exactly one gets 201 ('claimed'); every
// other gets 409 ('replay'). Claims outlive grants; the controller deletes them after expiresAt.
//
// A 409 on a claim whose expiresAt has passed (not yet collected) is not a replay: that claim is
// deleted (preconditions: its uid and resourceVersion, so a concurrent re-claim is never removed) and
// the create is tried again. Throttling and server errors are retried a few times (request.ts);
// when the API still cannot answer, claim() throws and the caller refuses the packet (fail closed).
// A create whose answer was lost and that is retried may find its own claim: that is reported as
// 'replay', which refuses the packet — never a double grant.

import type { KubeTarget } from './connection.js';
import { systemClock, type Clock } from '../../api/clock.js';
import type { ClaimResult, ReplayStore } from '../../api/store.js';
import { API_VERSION, type ReplayClaim } from '../../api/types.js';
import { KubeApiError } from './errors.js';
import { KUBE_STORE_DEFAULTS } from './limits.js';
import { ResourceClient } from './resource-client.js';

const DIGEST_RE = /^[0-9a-f]{16,128}$/;

export interface KubeReplayStoreOptions {
  kubeConfig: KubeTarget;
  clock?: Clock;
  /** This node: spec.claimedBy. */
  node?: string;
  requestAttempts?: number;
  requestBackoffInitialMs?: number;
  requestBackoffMaxMs?: number;
  conflictAttempts?: number;
  random?: () => number;
}

export class KubeReplayStore implements ReplayStore {
  private readonly client: ResourceClient<ReplayClaim>;
  private readonly clock: Clock;
  private readonly attempts: number;

  constructor(private readonly opts: KubeReplayStoreOptions) {
    this.clock = opts.clock ?? systemClock;
    this.attempts = opts.conflictAttempts ?? KUBE_STORE_DEFAULTS.conflictAttempts;
    this.client = new ResourceClient<ReplayClaim>(opts.kubeConfig, 'replayclaims', 'replayclaim', {
      clock: this.clock,
      attempts: opts.requestAttempts,
      initialMs: opts.requestBackoffInitialMs,
      maxMs: opts.requestBackoffMaxMs,
      random: opts.random,
    });
  }

  async claim(digest: string, expiresAt: Date, policy?: string): Promise<ClaimResult> {
    if (!DIGEST_RE.test(digest))
      throw new Error('replay claim: digest is not 16-128 lowercase hex characters');
    const end = expiresAt.getTime();
    if (!Number.isFinite(end)) throw new Error('replay claim: expiresAt is not a valid time');
    const claim: ReplayClaim = {
      apiVersion: API_VERSION,
      kind: 'ReplayClaim',
      metadata: { name: digest },
      spec: {
        expiresAt: new Date(end).toISOString(),
        ...(policy !== undefined ? { policyRef: { name: policy } } : {}),
        ...(this.opts.node !== undefined ? { claimedBy: this.opts.node } : {}),
      },
    };
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      try {
        await this.client.create(digest, claim);
        return 'claimed';
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 409)) throw err;
      }
      const existing = await this.client.get(digest);
      if (!existing) continue; // collected in the meantime: claim again
      const existingEnd = Date.parse(existing.spec?.expiresAt);
      if (!(Number.isFinite(existingEnd) && existingEnd <= this.clock.now())) return 'replay';
      // An expired claim nobody collected yet: remove exactly that one, then claim again.
      try {
        await this.client.delete(digest, {
          uid: existing.metadata.uid,
          resourceVersion: existing.metadata.resourceVersion,
        });
      } catch (err) {
        if (!(err instanceof KubeApiError && (err.status === 404 || err.status === 409))) throw err;
      }
    }
    throw new KubeApiError(
      `create replayclaim ${digest}: still contended after ${this.attempts} attempts`,
      409,
      'Conflict',
      undefined,
    );
  }
}
