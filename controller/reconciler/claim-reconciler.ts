// Garbage collection of ReplayClaims: a claim is deleted once its spec.expiresAt has passed (the
// packet it records is too old to be accepted anyway), and not before — claims outlive the grants
// they led to, so a deleted grant never makes its packet usable again. The delete carries the
// claim's uid: a claim re-created under the same digest meanwhile is never removed.

import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { ReplayClaim } from '../../api/types.js';
import { KubeApiError } from '../kube/errors.js';
import type { CachedObject, KubeInformer } from '../kube/informer.js';
import type { ResourceClient } from '../kube/resource-client.js';
import type { ControllerMetrics } from './metrics.js';
import type { ReconcileResult } from './queue.js';

export interface ClaimReconcilerOptions {
  claims: KubeInformer<ReplayClaim & CachedObject>;
  client: ResourceClient<ReplayClaim>;
  clock: Clock;
  logger?: Logger;
  guard: () => void;
  metrics?: ControllerMetrics;
}

export class ClaimReconciler {
  constructor(private readonly opts: ClaimReconcilerOptions) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const claim = this.opts.claims.get(key);
    if (!claim) return;
    const now = this.opts.clock.now();
    const end = Date.parse(claim.spec?.expiresAt ?? '');
    // An unreadable expiresAt is kept (fail closed: deleting it could re-enable a packet).
    if (!Number.isFinite(end)) return;
    if (now < end) return { requeueAfterMs: end - now };
    this.opts.guard();
    try {
      await this.opts.client.delete(key, { uid: claim.metadata.uid });
      this.opts.metrics?.deleted.inc({ kind: 'replayclaim', reason: 'expired' });
      this.opts.logger?.debug({ event: 'claim-deleted', claim: key }, `deleted expired replay claim ${key}`);
    } catch (err) {
      if (!(err instanceof KubeApiError && (err.status === 404 || err.status === 409))) throw err;
    }
  }
}
