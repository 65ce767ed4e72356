// The chart as Helm renders it (test infrastructure): `helm template` of charts/knockgate with the
// real Helm (helm.ts), and what the rendered RBAC grants each ServiceAccount, as the API emulator's
// users hold it. The chart test and the end-to-end cluster harness both take their RBAC from here,
// so the end-to-end tests run with the rules a user's cluster gets, not a copy of them.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { RbacRule, RbacUser } from '../emulators/kube-apiserver/rbac.js';
import { CHART, helm } from './helm.js';

export type Doc = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [k: string]: unknown;
};

/** The release name the tests render with: objects are named kg-knockgate-<role>. */
export const RELEASE = 'kg';

/**
 * `helm template kg charts/knockgate --namespace <namespace> <args>`: the rendered documents.
 * Throws with Helm's stderr when it fails or warns. `home` holds Helm's state (a temporary one when
 * omitted).
 */
export async function renderChart(namespace: string, args: string[] = [], home?: string): Promise<Doc[]> {
  const dir = home ?? mkdtempSync(join(tmpdir(), 'kg-helm-'));
  try {
    const r = await helm(['template', RELEASE, CHART, '--namespace', namespace, ...args], { home: dir });
    if (r.status !== 0 || r.stderr !== '')
      throw new Error(`helm template (exit ${r.status}): ${r.stderr.trim()}`);
    return parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as Doc)
      .filter(Boolean);
  } finally {
    if (!home) rmSync(dir, { recursive: true, force: true });
  }
}

/** The user name a ServiceAccount's tokens authenticate as. */
export const serviceAccountUser = (namespace: string, name: string) =>
  `system:serviceaccount:${namespace}:${name}`;

/** Per ServiceAccount user: the rules its (Cluster)RoleBindings grant, a RoleBinding's in its namespace. */
export function renderedRules(docs: Doc[]): Map<string, RbacRule[]> {
  const roles = new Map(
    docs
      .filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role')
      .map((d) => [`${d.kind}/${d.metadata.name}`, (d.rules ?? []) as RbacRule[]]),
  );
  const users = new Map<string, RbacRule[]>();
  for (const b of docs.filter((d) => d.kind === 'ClusterRoleBinding' || d.kind === 'RoleBinding')) {
    const ref = b.roleRef as { kind: string; name: string };
    const rules = roles.get(`${ref.kind}/${ref.name}`);
    if (!rules) throw new Error(`${b.kind} ${b.metadata.name}: no rendered ${ref.kind} ${ref.name}`);
    for (const s of b.subjects as { name: string; namespace: string }[]) {
      const user = serviceAccountUser(s.namespace, s.name);
      const scoped =
        b.kind === 'RoleBinding' ? rules.map((r) => ({ ...r, namespaces: [b.metadata.namespace!] })) : rules;
      users.set(user, [...(users.get(user) ?? []), ...scoped]);
    }
  }
  return users;
}

/** Emulator users from the rendered RBAC: one per ServiceAccount, each with a fresh token. */
export function chartUsers(docs: Doc[]): RbacUser[] {
  return [...renderedRules(docs)].map(([name, rules]) => ({
    name,
    token: randomBytes(16).toString('hex'),
    rules,
  }));
}

/** The cluster admin (Helm's and the tests' own user). */
export const adminUser = (): RbacUser => ({
  name: 'admin',
  token: randomBytes(16).toString('hex'),
  rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
});
