// Authentication (one bearer token per component) and authorization (RBAC-like rules) from a file:
//
//   users:
//     - name: system:serviceaccount:knockgate:sniffer
//       token: <bearer token>
//       rules:
//         - apiGroups: [knockgate.io]
//           resources: [accessgrants, accessgrants/status]   # "*" for all
//           verbs: [get, list, watch, create, patch]           # "*" for all
//           resourceNames: [one, two]                          # optional
//           namespaces: [knockgate]                            # optional (a Role); omitted = cluster-wide
//       groups: [system:serviceaccounts]                       # optional: request.userInfo.groups
//       extra:                                                 # optional: request.userInfo.extra
//         authentication.kubernetes.io/node-name: [node-a]
//
// `groups` and `extra` are what a bound service-account token carries (the node of the pod it was
// issued for is in extra["authentication.kubernetes.io/node-name"]); RBAC here ignores them, the
// ValidatingAdmissionPolicies (admission-policy.ts) see them as request.userInfo.
// Discovery, /version and /openapi are open to every authenticated user (system:discovery).
// Denials use the real server's messages (k8s.io/apiserver responsewriters.forbiddenMessage).

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ApiError, qualifiedResource } from './status.js';

export interface RbacRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
  namespaces?: string[];
}

export interface RbacUser {
  name: string;
  token: string;
  rules: RbacRule[];
  groups?: string[];
  /** userInfo.extra: each key a list of strings, as the authenticator sets them. */
  extra?: Record<string, string[]>;
}

export interface RequestAttributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

const strings = (v: unknown, where: string): string[] => {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
    throw new Error(`${where}: want a list of strings`);
  return v as string[];
};

/** Parse and check an RBAC file's content; throws one line naming the bad entry. */
export function parseRbac(text: string, source: string): RbacUser[] {
  const doc = parse(text) as { users?: unknown } | null;
  if (!doc || !Array.isArray(doc.users)) throw new Error(`${source}: want a top-level "users" list`);
  return doc.users.map((u: Record<string, unknown>, i: number) => {
    const where = `${source}: users[${i}]`;
    if (typeof u?.name !== 'string' || typeof u.token !== 'string' || u.token.length < 8)
      throw new Error(`${where}: needs "name" and a "token" of at least 8 characters`);
    const rules = (Array.isArray(u.rules) ? u.rules : []).map((r: Record<string, unknown>, j: number) => ({
      apiGroups: strings(r?.apiGroups, `${where}.rules[${j}].apiGroups`),
      resources: strings(r?.resources, `${where}.rules[${j}].resources`),
      verbs: strings(r?.verbs, `${where}.rules[${j}].verbs`),
      resourceNames:
        r?.resourceNames === undefined
          ? undefined
          : strings(r.resourceNames, `${where}.rules[${j}].resourceNames`),
      namespaces:
        r?.namespaces === undefined ? undefined : strings(r.namespaces, `${where}.rules[${j}].namespaces`),
    }));
    const user: RbacUser = { name: u.name, token: u.token, rules };
    if (u.groups !== undefined) user.groups = strings(u.groups, `${where}.groups`);
    if (u.extra !== undefined) {
      if (typeof u.extra !== 'object' || u.extra === null || Array.isArray(u.extra))
        throw new Error(`${where}.extra: want a map of lists of strings`);
      user.extra = Object.fromEntries(
        Object.entries(u.extra).map(([k, v]) => [k, strings(v, `${where}.extra.${k}`)]),
      );
    }
    return user;
  });
}

export function loadRbacFile(path: string): RbacUser[] {
  return parseRbac(readFileSync(path, 'utf8'), path);
}

const has = (list: string[], value: string) => list.includes('*') || list.includes(value);

export class Authorizer {
  private readonly byToken: Map<string, RbacUser>;

  constructor(readonly users: RbacUser[]) {
    this.byToken = new Map(users.map((u) => [u.token, u]));
  }

  /** The user of an `Authorization: Bearer ...` header; 401 otherwise. */
  authenticate(header: string | undefined): RbacUser {
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    const user = m && this.byToken.get(m[1]);
    if (!user) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    return user;
  }

  /** Whether one of the user's rules allows the request. */
  allows(user: RbacUser, a: RequestAttributes): boolean {
    const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    return user.rules.some(
      (r) =>
        has(r.apiGroups, a.group) &&
        has(r.resources, resource) &&
        has(r.verbs, a.verb) &&
        (!r.resourceNames?.length || (a.name !== undefined && r.resourceNames.includes(a.name))) &&
        (!r.namespaces || (a.namespace !== undefined && has(r.namespaces, a.namespace))),
    );
  }

  /** 403 in the real server's shape when no rule allows the request. */
  authorize(user: RbacUser, a: RequestAttributes): void {
    if (this.allows(user, a)) return;
    const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
    const why = `User "${user.name}" cannot ${a.verb} resource "${resource}" in API group "${a.group}" ${scope}`;
    const what = qualifiedResource(a.group, a.resource);
    const message = a.name ? `${what} "${a.name}" is forbidden: ${why}` : `${what} is forbidden: ${why}`;
    throw new ApiError(403, 'Forbidden', message, {
      name: a.name,
      group: a.group || undefined,
      kind: a.resource,
    });
  }
}
