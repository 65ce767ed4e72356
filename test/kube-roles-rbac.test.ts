// The roles' RBAC rules as data (controller/sniffer/rbac.ts, controller/agent/rbac.ts,
// controller/reconciler/rbac.ts) against the API emulator's RBAC: the sniffer's rules allow its
// whole grant path — create, extend a live grant (get+patch), a new grant under the next generation
// when the name holds an Expired one (get, then create) — and a delete of a grant is the API
// server's 403 in one line.

import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../api/clock.js';
import type { AccessGrant } from '../api/types.js';
import { AGENT_CLUSTER_RULES, AGENT_NAMESPACE_RULES, agentRules } from '../controller/agent/rbac.js';
import { buildGrant } from '../controller/grants/build.js';
import { KubeApiError } from '../controller/kube/errors.js';
import { KubeGrantStore } from '../controller/kube/grant-store.js';
import { SNIFFER_CLUSTER_RULES, SNIFFER_NAMESPACE_RULES } from '../controller/sniffer/rbac.js';
import { startEmulatedCluster, type EmulatedCluster } from './helpers/kube-store-emulator.js';

const NS = 'knockgate';
const SNIFFER = 'system:serviceaccount:knockgate:sniffer';
const WRITE = { fieldValidation: 'Strict' as const, dryRun: false };

let cluster: EmulatedCluster | undefined;
const stores: KubeGrantStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  await cluster?.stop();
  cluster = undefined;
});

async function setup(): Promise<EmulatedCluster> {
  const token = () => randomBytes(16).toString('hex');
  const namespaced = SNIFFER_NAMESPACE_RULES.map((r) => ({ ...r, namespaces: [NS] }));
  cluster = await startEmulatedCluster({
    namespaces: [NS],
    users: [
      { name: 'admin', token: token(), rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] },
      { name: SNIFFER, token: token(), rules: [...SNIFFER_CLUSTER_RULES, ...namespaced] },
    ],
  });
  return cluster;
}

function store(c: EmulatedCluster, user: string): KubeGrantStore {
  const s = new KubeGrantStore({
    kubeConfig: c.kubeConfigFor(user),
    clock: systemClock,
    requestBackoffInitialMs: 20,
    requestBackoffMaxMs: 100,
  });
  stores.push(s);
  return s;
}

function knockGrant(seconds = 60): AccessGrant {
  return buildGrant(
    {
      kind: 'grant',
      policy: 'ssh',
      method: 'knock',
      source: '10.88.0.7',
      ports: ['22/tcp'],
      durationSeconds: seconds,
    },
    { clock: systemClock, node: 'node-a' },
  );
}

/** What the controller does at expiresAt: phase Expired (a history entry, kept for retention). */
function markExpired(c: EmulatedCluster, name: string): void {
  const type = c.server.api.type('knockgate.io', 'v1alpha1', 'accessgrants')!;
  c.server.api.patch(
    type,
    undefined,
    name,
    'application/merge-patch+json',
    { status: { phase: 'Expired' } },
    'status',
    WRITE,
  );
}

function serverGrant(c: EmulatedCluster, name: string): AccessGrant {
  const type = c.server.api.type('knockgate.io', 'v1alpha1', 'accessgrants')!;
  return c.server.api.get(type, undefined, name) as unknown as AccessGrant;
}

describe("the sniffer's RBAC (controller/sniffer/rbac.ts)", () => {
  it('says get on accessgrants beyond create and patch, and no delete', () => {
    const grants = SNIFFER_CLUSTER_RULES.find((r) => r.resources.includes('accessgrants'))!;
    expect([...grants.verbs].sort()).toEqual(['create', 'get', 'patch']);
    // Nothing it does not need: no list/watch of grants, no status writes, Secrets only in a Role.
    expect(SNIFFER_CLUSTER_RULES.some((r) => r.resources.includes('accessgrants/status'))).toBe(false);
    expect(SNIFFER_CLUSTER_RULES.some((r) => r.resources.includes('secrets'))).toBe(false);
    expect(SNIFFER_NAMESPACE_RULES.map((r) => r.resources).flat()).toEqual(['secrets', 'configmaps']);
    // ConfigMaps: the uninstall marker only, read only.
    expect(SNIFFER_NAMESPACE_RULES[1]).toEqual({
      apiGroups: [''],
      resources: ['configmaps'],
      verbs: ['get', 'list', 'watch'],
      resourceNames: ['knockgate-uninstall'],
    });
  });

  it('with its rules: create, extend a live grant, replace an Expired one (a new uid)', async () => {
    const c = await setup();
    const s = store(c, SNIFFER);
    const first = await s.create(knockGrant(60));
    const name = first.metadata.name;
    const extended = await s.extend(knockGrant(120));
    expect(extended.metadata.uid).toBe(first.metadata.uid);
    expect(Date.parse(extended.spec.expiresAt)).toBeGreaterThan(Date.parse(first.spec.expiresAt));
    markExpired(c, name);
    const replaced = await s.extend(knockGrant(60));
    expect(replaced.metadata.name).toBe(`${name}.1`);
    expect(replaced.metadata.uid).not.toBe(first.metadata.uid);
    expect(serverGrant(c, name).status?.phase).toBe('Expired');
  });

  it('gets the 403 on deleting a grant, which stays', async () => {
    const c = await setup();
    const s = store(c, SNIFFER);
    const { metadata } = await s.create(knockGrant(60));
    const err = await s.delete(metadata.name).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(403);
    expect((err as Error).message).toBe(
      `delete accessgrant ${metadata.name}: accessgrants.knockgate.io "${metadata.name}" is forbidden: User "${SNIFFER}" cannot delete resource "accessgrants" in API group "knockgate.io" at the cluster scope (HTTP 403)`,
    );
    expect(serverGrant(c, metadata.name).metadata.uid).toBe(metadata.uid);
  });
});

describe("the agent's RBAC (controller/agent/rbac.ts)", () => {
  it('reads grants and policies, patches only grant status, reads only its own Node', () => {
    expect(AGENT_CLUSTER_RULES.flatMap((r) => r.verbs)).not.toContain('create');
    expect(AGENT_CLUSTER_RULES.flatMap((r) => r.verbs)).not.toContain('delete');
    const patch = AGENT_CLUSTER_RULES.filter((r) => r.verbs.includes('patch'));
    expect(patch.flatMap((r) => r.resources)).toEqual(['accessgrants/status']);
    const node = agentRules('node-a').find((r) => r.resources.includes('nodes'))!;
    expect(node).toEqual({
      apiGroups: [''],
      resources: ['nodes'],
      verbs: ['get', 'list', 'watch'],
      resourceNames: ['node-a'],
    });
    // In the release namespace: the uninstall marker only (its acknowledgement is a patch).
    expect(AGENT_NAMESPACE_RULES).toEqual([
      {
        apiGroups: [''],
        resources: ['configmaps'],
        verbs: ['get', 'list', 'watch', 'patch'],
        resourceNames: ['knockgate-uninstall'],
      },
    ]);
  });
});
