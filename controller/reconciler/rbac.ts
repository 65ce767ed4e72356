// What the controller may do in the API, as ClusterRole/Role rules (the chart renders them; the
// tests run the controller as a user holding exactly these). Least privilege: it never creates
// grants or claims, reads no Secrets, and writes Leases and Events only in its own namespace.

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** Cluster-wide (ClusterRole). */
export const CONTROLLER_CLUSTER_RULES: PolicyRule[] = [
  // Phases, conditions, the finalizer, retention deletes.
  {
    apiGroups: ['knockgate.io'],
    resources: ['accessgrants'],
    verbs: ['get', 'list', 'watch', 'patch', 'delete'],
  },
  { apiGroups: ['knockgate.io'], resources: ['accessgrants/status'], verbs: ['patch'] },
  // Grants are checked against their live policy.
  { apiGroups: ['knockgate.io'], resources: ['knockpolicies'], verbs: ['get', 'list', 'watch'] },
  // Garbage collection of expired claims.
  { apiGroups: ['knockgate.io'], resources: ['replayclaims'], verbs: ['list', 'watch', 'delete'] },
  // Node labels, for policies that target nodes by selector.
  { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] },
];

/** In the release namespace (Role). */
export const CONTROLLER_NAMESPACE_RULES: PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];
