// The uninstall marker: ConfigMap `knockgate-uninstall` in the release namespace, created by
// `knockgate uninstall` (the Helm chart's pre-delete hook). Every role that sees it latches
// "uninstalling" for the rest of its process life: the sniffer writes no grant, the agent removes
// every firewall object knockgate owns on its node and acknowledges by a merge patch of its own key
// (data.<node>: removed), the controller keeps reconciling (revoked grants lose their
// security-group rules and finalizers). A latch, not a mode: a marker deleted later (the command's
// last step) must not make a half-uninstalled agent reinstall its drops.
//
// Watched by name (list+watch with fieldSelector metadata.name=knockgate-uninstall, authorized as a
// request for that name), so the roles' RBAC names the one ConfigMap (rbac.ts).

import type { KubernetesListObject, V1ConfigMap } from '@kubernetes/client-node';
import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import { kubeRequest, MERGE_PATCH, type KubeTarget } from '../kube/connection.js';
import { KubeInformer, type CachedObject } from '../kube/informer.js';
import { withRetries, type RetryPolicy } from '../kube/request.js';
import { REMOVED, UNINSTALL_MARKER } from './marker-name.js';

export { REMOVED, UNINSTALL_MARKER };

type Marker = V1ConfigMap & CachedObject;

export interface MarkerWatchOptions {
  kubeConfig: KubeTarget;
  namespace: string;
  clock: Clock;
  logger: Logger;
  /** Called once, the first time the marker is seen (and never again in this process). */
  onUninstall: () => void;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  resyncIntervalMs?: number;
  random?: () => number;
}

/** Follows the marker; stop() ends the watch (the latch, once fired, stays). */
export class MarkerWatch {
  private readonly informer: KubeInformer<Marker>;
  private fired = false;
  private stopped = false;

  constructor(private readonly opts: MarkerWatchOptions) {
    const fieldSelector = `metadata.name=${UNINSTALL_MARKER}`;
    const path = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/configmaps`;
    this.informer = new KubeInformer<Marker>({
      kubeConfig: opts.kubeConfig,
      path,
      fieldSelector,
      list: () =>
        kubeRequest<KubernetesListObject<Marker>>(opts.kubeConfig, {
          method: 'GET',
          path,
          query: { fieldSelector },
        }),
      resource: `configmaps/${UNINSTALL_MARKER}`,
      clock: opts.clock,
      logger: opts.logger,
      backoffInitialMs: opts.backoffInitialMs,
      backoffMaxMs: opts.backoffMaxMs,
      resyncIntervalMs: opts.resyncIntervalMs,
      random: opts.random,
    });
  }

  get latched(): boolean {
    return this.fired;
  }

  start(): void {
    this.informer.subscribe((e) => {
      if (e.type !== 'DELETED') this.fire();
    });
    this.informer.start();
    // The first list is state, not a change: look at it once it is in (retried while it is not).
    void (async () => {
      while (!this.stopped) {
        try {
          await this.informer.waitForSync(60_000);
          if (this.informer.get(UNINSTALL_MARKER)) this.fire();
          return;
        } catch (err) {
          if (this.stopped) return;
          this.opts.logger.warn(
            { event: 'uninstall-marker-unreadable' },
            `cannot read configmap ${this.opts.namespace}/${UNINSTALL_MARKER} yet: ${(err as Error).message}`,
          );
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
  }

  private fire(): void {
    if (this.fired || this.stopped) return;
    this.fired = true;
    this.opts.logger.warn(
      { event: 'uninstalling', marker: `${this.opts.namespace}/${UNINSTALL_MARKER}` },
      `configmap ${this.opts.namespace}/${UNINSTALL_MARKER} exists: knockgate is being uninstalled`,
    );
    this.opts.onUninstall();
  }
}

/** data.<node>: removed in the marker (a merge patch of that key only: agents never conflict). */
export async function acknowledgeRemoved(
  kubeConfig: KubeTarget,
  namespace: string,
  node: string,
  retry: RetryPolicy,
): Promise<void> {
  await withRetries(
    `patch configmap ${namespace}/${UNINSTALL_MARKER}`,
    () =>
      kubeRequest(kubeConfig, {
        method: 'PATCH',
        path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${UNINSTALL_MARKER}`,
        body: { data: { [node]: REMOVED } },
        contentType: MERGE_PATCH,
      }),
    retry,
  );
}
