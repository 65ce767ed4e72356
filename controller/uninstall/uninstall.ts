// `knockgate uninstall`: what the Helm chart's pre-delete hook Job runs, so that `helm uninstall`
// leaves nothing open and nothing stuck — no grant rule on any node, no security-group rule of this
// cluster's grants, no finalizer.
//
//   1. the marker (marker.ts) is created (idempotent): sniffers stop writing grants, agents remove
//      every firewall object knockgate owns on their node and acknowledge (data.<node>: removed).
//   2. every AccessGrant is deleted. Deletion is how a grant is revoked in a cluster: the
//      controller's finalizer (knockgate.io/revoke) holds the object, marks it Revoked, and is cleared
//      only once its nodes and security groups report Removed (the security-group reconciler revokes
//      the rule) — so "gone" is the controller's word that its cloud rules are removed. A grant a
//      sniffer wrote before it latched is deleted by the next round. There is no separate "revoke
//      first, delete later": a Revoked grant that stays would hold its finalizer for nothing.
//   3. wait, bounded by the timeout, until no grant is left and every node expected to run an agent
//      has acknowledged: the nodes named by --node, the Nodes matching --node-selector, and every
//      existing Node any grant named (spec.targets.nodes, status.nodes; a node deleted from the
//      cluster runs no agent). A node that acknowledged without being expected is listed too.
//   4. the marker is deleted. When the deadline passes first, the marker stays (the roles stay
//      latched; running the command again picks up where this one stopped) and the error names
//      what is left.

import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { AccessGrant } from '../../api/types.js';
import { sleep } from '../kube/backoff.js';
import { KubeApiError } from '../kube/errors.js';
import { withRetries, type RetryPolicy } from '../kube/request.js';
import { ResourceClient } from '../kube/resource-client.js';
import { FINALIZER } from '../reconciler/grant-reconciler.js';
import { REMOVED, UNINSTALL_MARKER } from './marker-name.js';

export interface UninstallOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Label selector of the Nodes that run an agent ("" = every Node); undefined: not listed. */
  nodeSelector?: string;
  /** Nodes that run an agent, by name. */
  nodes?: string[];
  timeoutMs: number;
  /** Between two rounds of listing grants and reading acknowledgements. */
  pollMs?: number;
  clock: Clock;
  logger: Logger;
}

export interface UninstallSummary {
  /** Grants this command deleted (revoked), by name. */
  revoked: string[];
  /** Of those, the ones whose security-group targets had a rule (Applied, Pending or covered). */
  withSecurityGroupRules: string[];
  /** Security-group rules (group, grant) the controller had to remove before clearing a finalizer. */
  securityGroupTargets: number;
  /** Grants deleted without the controller's finalizer (nothing confirmed their targets closed). */
  unfinalized: string[];
  /** Nodes that acknowledged every firewall object removed. */
  nodes: string[];
  /** Whether the marker existed already (an earlier run that stopped). */
  resumed: boolean;
}

/** The deadline passed: `left` names what is still there. */
export class UninstallIncompleteError extends Error {
  constructor(
    message: string,
    readonly left: string[],
  ) {
    super(message);
  }
}

/** A request the command may not make (RBAC) or that the API refuses as malformed: no point waiting. */
function fatal(err: unknown): boolean {
  return err instanceof KubeApiError && [400, 401, 403, 422].includes(err.status);
}

/** Nodes a grant names: its targets, and whoever wrote an entry in its status. */
function grantNodes(g: AccessGrant): string[] {
  return [...(g.spec?.targets?.nodes ?? []), ...Object.keys(g.status?.nodes ?? {})];
}

function hasRule(state: string | undefined): boolean {
  return state === 'Applied' || state === 'Pending' || state === 'CoveredByExistingRule';
}

export async function uninstall(opts: UninstallOptions): Promise<UninstallSummary> {
  const { clock, logger, namespace } = opts;
  const retry: RetryPolicy = { clock };
  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  const grants = new ResourceClient<AccessGrant>(opts.kubeConfig, 'accessgrants', 'accessgrant', retry);
  const deadline = clock.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 1000;
  const marker = `configmap ${namespace}/${UNINSTALL_MARKER}`;

  // 1. The marker.
  let resumed = false;
  try {
    await withRetries(
      `create ${marker}`,
      () =>
        core.createNamespacedConfigMap({
          namespace,
          body: {
            metadata: { name: UNINSTALL_MARKER, labels: { 'app.kubernetes.io/managed-by': 'knockgate' } },
            data: {},
          },
        }),
      retry,
    );
    logger.info({ event: 'marker-created' }, `${marker} created: every role is uninstalling`);
  } catch (err) {
    if (!(err instanceof KubeApiError && err.status === 409)) throw err;
    resumed = true;
    logger.info({ event: 'marker-exists' }, `${marker} exists already: resuming`);
  }

  const expected = new Set(opts.nodes ?? []);
  // A node a grant names but that is no Node any more (scaled away) runs no agent: not waited for.
  const existing = new Set(
    (await withRetries('list nodes', () => core.listNode({}), retry)).items.map(
      (n) => n.metadata?.name ?? '',
    ),
  );
  if (opts.nodeSelector !== undefined) {
    const list = await withRetries(
      `list nodes${opts.nodeSelector ? ` (${opts.nodeSelector})` : ''}`,
      () => core.listNode(opts.nodeSelector ? { labelSelector: opts.nodeSelector } : {}),
      retry,
    );
    for (const n of list.items) if (n.metadata?.name) expected.add(n.metadata.name);
  }

  const revoked = new Set<string>();
  /** By uid: a grant a sniffer wrote again under the same name before it latched is a new one. */
  const deleted = new Set<string>();
  const withRules = new Set<string>();
  const unfinalized = new Set<string>();
  let sgTargets = 0;
  let acked = new Set<string>();
  let left: AccessGrant[] = [];
  let lastError: string | undefined;

  // 2 and 3: rounds until nothing is left or the deadline passes.
  for (;;) {
    try {
      left = (await withRetries('list accessgrants', () => grants.list(), retry)).items;
      for (const g of left) {
        for (const n of grantNodes(g)) if (existing.has(n)) expected.add(n);
        const name = g.metadata.name;
        const uid = g.metadata.uid ?? name;
        if (g.metadata.deletionTimestamp || deleted.has(uid)) continue;
        const groups = Object.values(g.status?.securityGroups ?? {}).filter((s) => hasRule(s.state)).length;
        try {
          await grants.delete(name, g.metadata.uid ? { uid: g.metadata.uid } : undefined);
        } catch (err) {
          if (err instanceof KubeApiError && (err.status === 404 || err.status === 409)) continue;
          throw err;
        }
        deleted.add(uid);
        revoked.add(name);
        if (groups > 0) {
          withRules.add(name);
          sgTargets += groups;
        }
        const nodeApplied = Object.values(g.status?.nodes ?? {}).some((s) => hasRule(s.state));
        if (!g.metadata.finalizers?.includes(FINALIZER) && (groups > 0 || nodeApplied)) unfinalized.add(name);
        logger.info({ event: 'revoke', grant: name }, `revoked accessgrant ${name} (deleted)`);
      }
      const cm = (await withRetries(
        `get ${marker}`,
        () => core.readNamespacedConfigMap({ name: UNINSTALL_MARKER, namespace }),
        retry,
      )) as V1ConfigMap;
      acked = new Set(
        Object.entries(cm.data ?? {})
          .filter(([, v]) => v === REMOVED)
          .map(([k]) => k),
      );
      lastError = undefined;
      const waitingNodes = [...expected].filter((n) => !acked.has(n));
      if (left.length === 0 && waitingNodes.length === 0) break;
    } catch (err) {
      if (fatal(err)) throw err;
      lastError = (err as Error).message;
      logger.warn({ event: 'uninstall-retry' }, lastError);
    }
    if (clock.now() >= deadline) {
      const what = leftOver(left, expected, acked);
      if (lastError) what.push(`last error: ${lastError}`);
      throw new UninstallIncompleteError(
        `uninstall incomplete after ${Math.round(opts.timeoutMs / 1000)} s: ${what.join('; ')} (${marker} left in place: run again, or delete it to cancel)`,
        what,
      );
    }
    await sleep(clock, Math.min(pollMs, Math.max(0, deadline - clock.now())));
  }

  // 4. The marker goes last: the roles stay latched until they restart (a new install).
  try {
    await withRetries(
      `delete ${marker}`,
      () => core.deleteNamespacedConfigMap({ name: UNINSTALL_MARKER, namespace }),
      retry,
    );
  } catch (err) {
    if (!(err instanceof KubeApiError && err.status === 404)) throw err;
  }
  return {
    revoked: [...revoked].sort(),
    withSecurityGroupRules: [...withRules].sort(),
    securityGroupTargets: sgTargets,
    unfinalized: [...unfinalized].sort(),
    nodes: [...acked].sort(),
    resumed,
  };
}

/** What is still there: grants (and whom their finalizer waits for), nodes without acknowledgement. */
function leftOver(left: AccessGrant[], expected: Set<string>, acked: Set<string>): string[] {
  const what: string[] = [];
  if (left.length > 0) {
    const described = left.slice(0, 10).map((g) => {
      const waiting = [
        ...Object.entries(g.status?.nodes ?? {})
          .filter(([, s]) => hasRule(s.state))
          .map(([n]) => `node ${n}`),
        ...Object.entries(g.status?.securityGroups ?? {})
          .filter(([, s]) => hasRule(s.state))
          .map(([id]) => `security group ${id}`),
      ];
      const held = g.metadata.finalizers?.length ? ` held by ${g.metadata.finalizers.join(', ')}` : '';
      return `${g.metadata.name}${held}${waiting.length ? ` (waiting for ${waiting.join(', ')})` : ''}`;
    });
    if (left.length > 10) described.push(`${left.length - 10} more`);
    what.push(`${left.length} accessgrant(s) left: ${described.join(', ')}`);
  }
  const silent = [...expected].filter((n) => !acked.has(n)).sort();
  if (silent.length > 0) what.push(`no acknowledgement from node(s) ${silent.join(', ')}`);
  return what;
}

/** The summary lines the command prints. */
export function formatSummary(s: UninstallSummary, namespace: string): string {
  const lines = [
    `${s.resumed ? 'resumed' : 'started'}: configmap ${namespace}/${UNINSTALL_MARKER} (deleted at the end)`,
    `revoked ${s.revoked.length} accessgrant(s)${s.revoked.length ? `: ${s.revoked.join(', ')}` : ''}`,
    `security-group rules removed by the controller before it let go: ${s.securityGroupTargets} (of ${s.withSecurityGroupRules.length} grant(s))`,
    `firewall objects removed on ${s.nodes.length} node(s)${s.nodes.length ? `: ${s.nodes.join(', ')}` : ''}`,
  ];
  if (s.unfinalized.length > 0)
    lines.push(
      `warning: deleted without the controller's finalizer (nothing confirmed their security-group rules gone; knockgate sweep revokes expired ones): ${s.unfinalized.join(', ')}`,
    );
  return `${lines.join('\n')}\n`;
}
