// The controller's test bench: the Kubernetes API emulator and one or more ControllerManagers on
// one FakeClock, plus what the other components would do (create policies, grants and claims;
// a simulated agent writing status.nodes) as in-process writes on the emulator.

import { KubeConfig } from '@kubernetes/client-node';
import { FakeClock } from '../../api/clock.js';
import { createLogger } from '../../api/log.js';
import type { AccessGrant, KnockPolicy, ReplayClaim, TargetState } from '../../api/types.js';
import { API_VERSION } from '../../api/types.js';
import { defaultControllerConfig, type ControllerConfig } from '../../controller/reconciler/config.js';
import { ControllerManager, type ControllerManagerOptions } from '../../controller/reconciler/manager.js';
import type { ControllerMetrics } from '../../controller/reconciler/metrics.js';
import { CONTROLLER_CLUSTER_RULES, CONTROLLER_NAMESPACE_RULES } from '../../controller/reconciler/rbac.js';
import type { KubeObject } from '../emulators/kube-apiserver/storage.js';
import { startEmulatedCluster, type EmulatedCluster } from './kube-store-emulator.js';

/** The controller's service account (least privilege: controller/reconciler/rbac.ts). */
export const CONTROLLER_USER = 'system:serviceaccount:knockgate:controller';
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const ALL = { labelSelector: null, fieldSelector: null };
const WRITE = { fieldValidation: 'Strict' as const, dryRun: false };
const realSleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ControllerBench {
  clock = new FakeClock(T0);
  cluster!: EmulatedCluster;
  private readonly managers: ControllerManager[] = [];

  /**
   * The emulator with an admin user first, then one user per name in `controllers` holding exactly
   * the controller's RBAC (its cluster rules, and its namespace rules in "default").
   */
  async start(controllers: string[] = [CONTROLLER_USER]): Promise<void> {
    const admin = {
      name: 'admin',
      token: 'token-admin',
      rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
    };
    const rules = [
      ...CONTROLLER_CLUSTER_RULES,
      ...CONTROLLER_NAMESPACE_RULES.map((r) => ({ ...r, namespaces: ['default'] })),
    ];
    this.cluster = await startEmulatedCluster({
      clock: this.clock,
      users: [admin, ...controllers.map((name, i) => ({ name, token: `token-${i}-${name}`, rules }))],
    });
  }

  /** The emulator on the real clock, for a controller in another process. */
  async startRealTime(): Promise<void> {
    this.clock = new FakeClock(Date.now()); // only for the times written into objects
    this.cluster = await startEmulatedCluster();
  }

  async stop(): Promise<void> {
    for (const m of this.managers.splice(0)) await m.stop().catch(() => undefined);
    await this.cluster?.stop();
  }

  /**
   * The default config, with a Lease so long that the fake clock can jump hours while the leader
   * keeps it (the leader election tests set their own, realistic durations).
   */
  config(overrides: Partial<ControllerConfig> = {}): ControllerConfig {
    const base = defaultControllerConfig();
    base.leaderElection = {
      ...base.leaderElection,
      leaseDurationSeconds: 10_000_000,
      renewDeadlineSeconds: 9_000_000,
      retryPeriodSeconds: 1_000_000,
    };
    return { ...base, ...overrides };
  }

  manager(
    identity: string,
    config: ControllerConfig = this.config(),
    user = CONTROLLER_USER,
    metrics?: ControllerMetrics,
    extra: Partial<ControllerManagerOptions> = {},
  ): ControllerManager {
    const kubeConfig: KubeConfig = this.cluster.kubeConfigFor(user);
    const m = new ControllerManager({
      kubeConfig,
      config,
      identity,
      clock: this.clock,
      watchBackoffInitialMs: 50,
      watchBackoffMaxMs: 400,
      resyncIntervalMs: 0,
      metrics,
      ...extra,
      ...(process.env.KG_TEST_LOG
        ? { logger: createLogger({ level: 'debug', destination: process.stderr }) }
        : {}),
    });
    this.managers.push(m);
    m.start();
    return m;
  }

  /** Wait (real time, bounded) for `cond`; the fake clock does not move. */
  async until<T>(cond: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = cond();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await realSleep(20);
    }
  }

  /** Move the fake clock in steps of `stepMs` until `cond` holds (each step lets requests finish). */
  async advanceUntil(cond: () => boolean, stepMs: number, maxSteps: number, what: string): Promise<number> {
    const start = this.clock.now();
    for (let i = 0; i < maxSteps; i++) {
      if (cond()) return this.clock.now() - start;
      this.clock.advance(stepMs);
      for (let j = 0; j < 10 && !cond(); j++) await realSleep(15);
    }
    if (cond()) return this.clock.now() - start;
    throw new Error(`${what}: not reached after ${(maxSteps * stepMs) / 1000} s of fake time`);
  }

  // --- objects on the server ---------------------------------------------------------------------

  private type(group: string, version: string, plural: string) {
    return this.cluster.server.api.type(group, version, plural)!;
  }

  private get grantsType() {
    return this.type('knockgate.io', 'v1alpha1', 'accessgrants');
  }

  createPolicy(name: string, grant: Partial<KnockPolicy['spec']['grant']> = {}): KnockPolicy {
    const policy: KnockPolicy = {
      apiVersion: API_VERSION,
      kind: 'KnockPolicy',
      metadata: { name },
      spec: {
        knock: { sequence: ['7000/tcp', '8000/tcp', '9000/tcp'] },
        grant: { ports: ['22/tcp'], durationSeconds: 60, ...grant },
      },
    };
    const res = this.cluster.server.api.create(
      this.type('knockgate.io', 'v1alpha1', 'knockpolicies'),
      undefined,
      policy,
      WRITE,
    );
    return res.object as unknown as KnockPolicy;
  }

  deletePolicy(name: string): void {
    this.cluster.server.api.delete(this.type('knockgate.io', 'v1alpha1', 'knockpolicies'), undefined, name, {
      dryRun: false,
      propagationPolicy: 'Background',
    });
  }

  /** A knock grant of `policy` seen by `node`, for `seconds` from now (fake clock). */
  knockGrant(
    policy: KnockPolicy,
    source: string,
    opts: { seconds?: number; ports?: string[]; nodes?: string[]; observedBy?: string } = {},
  ): AccessGrant {
    const hex = source
      .split('.')
      .map((o) => Number(o).toString(16).padStart(2, '0'))
      .join('');
    return {
      apiVersion: API_VERSION,
      kind: 'AccessGrant',
      metadata: {
        name: `${policy.metadata.name}-${hex}`,
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: 'KnockPolicy',
            name: policy.metadata.name,
            uid: policy.metadata.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        source: `${source}/32`,
        ports: opts.ports ?? ['22/tcp'],
        expiresAt: new Date(this.clock.now() + (opts.seconds ?? 60) * 1000).toISOString(),
        policyRef: { name: policy.metadata.name },
        method: 'knock',
        observedBy: opts.observedBy ?? 'node-a',
        targets: { nodes: opts.nodes ?? ['node-a'] },
      },
    };
  }

  manualGrant(
    name: string,
    source: string,
    seconds: number,
    targets: AccessGrant['spec']['targets'],
  ): AccessGrant {
    return {
      apiVersion: API_VERSION,
      kind: 'AccessGrant',
      metadata: { name },
      spec: {
        source,
        ports: ['22/tcp'],
        expiresAt: new Date(this.clock.now() + seconds * 1000).toISOString(),
        method: 'manual',
        targets,
      },
    };
  }

  createGrant(grant: AccessGrant): AccessGrant {
    return this.cluster.server.api.create(this.grantsType, undefined, structuredClone(grant), WRITE)
      .object as unknown as AccessGrant;
  }

  grant(name: string): AccessGrant | undefined {
    try {
      return this.cluster.server.api.get(this.grantsType, undefined, name) as unknown as AccessGrant;
    } catch {
      return undefined;
    }
  }

  grantNames(): string[] {
    return (this.cluster.server.api.list(this.grantsType, undefined, ALL).items as KubeObject[])
      .map((o) => o.metadata.name as string)
      .sort();
  }

  /** What an agent does: merge-patch its own key of status.nodes. */
  report(grant: string, node: string, state: TargetState, message?: string): void {
    this.cluster.server.api.patch(
      this.grantsType,
      undefined,
      grant,
      'application/merge-patch+json',
      {
        status: {
          nodes: {
            [node]: {
              state,
              since: new Date(this.clock.now()).toISOString(),
              ...(message ? { message } : {}),
            },
          },
        },
      },
      'status',
      WRITE,
    );
  }

  /** `kubectl delete accessgrant NAME` (without waiting): sets deletionTimestamp while finalizers remain. */
  deleteGrant(name: string): void {
    this.cluster.server.api.delete(this.grantsType, undefined, name, { dryRun: false });
  }

  createClaim(name: string, expiresInSeconds: number): ReplayClaim {
    const claim: ReplayClaim = {
      apiVersion: API_VERSION,
      kind: 'ReplayClaim',
      metadata: { name },
      spec: { expiresAt: new Date(this.clock.now() + expiresInSeconds * 1000).toISOString() },
    };
    return this.cluster.server.api.create(
      this.type('knockgate.io', 'v1alpha1', 'replayclaims'),
      undefined,
      claim,
      WRITE,
    ).object as unknown as ReplayClaim;
  }

  claimNames(): string[] {
    return (
      this.cluster.server.api.list(this.type('knockgate.io', 'v1alpha1', 'replayclaims'), undefined, ALL)
        .items as KubeObject[]
    )
      .map((o) => o.metadata.name as string)
      .sort();
  }

  /** core/v1 Events in `namespace` as "reason kind/name". */
  events(namespace = 'default'): { reason: string; type: string; object: string; message: string }[] {
    const items = this.cluster.server.api.list(this.type('', 'v1', 'events'), namespace, ALL)
      .items as KubeObject[];
    return items.map((e) => {
      const ev = e as unknown as {
        reason: string;
        type: string;
        message: string;
        involvedObject: { kind: string; name: string };
      };
      return {
        reason: ev.reason,
        type: ev.type,
        object: `${ev.involvedObject.kind}/${ev.involvedObject.name}`,
        message: ev.message,
      };
    });
  }

  /** Requests the server refused for lack of permission (the controller's RBAC must suffice). */
  forbidden(): string[] {
    return this.cluster.server.requests.filter((r) => r.status === 403).map((r) => `${r.method} ${r.url}`);
  }

  hasEvent(reason: string, grant: string): boolean {
    return this.events().some((e) => e.reason === reason && e.object === `AccessGrant/${grant}`);
  }

  lease(namespace = 'default', name = 'knockgate-controller'): { spec: Record<string, unknown> } | undefined {
    try {
      return this.cluster.server.api.get(
        this.type('coordination.k8s.io', 'v1', 'leases'),
        namespace,
        name,
      ) as unknown as {
        spec: Record<string, unknown>;
      };
    } catch {
      return undefined;
    }
  }

  /** Another client takes the Lease over (what a new leader elsewhere would write). */
  takeOverLease(holder: string, namespace = 'default', name = 'knockgate-controller'): void {
    const now = new Date(this.clock.now()).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    this.cluster.server.api.patch(
      this.type('coordination.k8s.io', 'v1', 'leases'),
      namespace,
      name,
      'application/merge-patch+json',
      { spec: { holderIdentity: holder, renewTime: now, acquireTime: now } },
      undefined,
      WRITE,
    );
  }
}
