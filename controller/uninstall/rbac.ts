// What `knockgate uninstall` (the chart's pre-delete hook Job) may do in the API, and the marker
// rules the roles need, as ClusterRole/Role rules (the chart renders them; the tests run each role
// as a user holding exactly these).
//
// The command deletes every AccessGrant (deletion is the cluster's revoke: the controller's
// finalizer holds the object until its node and security-group targets report Removed), lists Nodes
// (--node-selector: which nodes run an agent), and owns the marker ConfigMap. Kubernetes cannot
// restrict create by resourceNames (the name is not known when create is authorized), so create on
// configmaps is unnamed, in the release namespace only; everything else names the marker.

import type { NamedPolicyRule } from '../agent/rbac.js';
import type { PolicyRule } from '../reconciler/rbac.js';
import { UNINSTALL_MARKER } from './marker-name.js';

/** Cluster-wide (ClusterRole). */
export const UNINSTALL_CLUSTER_RULES: PolicyRule[] = [
  // Revoke (delete) every grant and watch them go (their finalizers cleared by the controller).
  { apiGroups: ['knockgate.io'], resources: ['accessgrants'], verbs: ['get', 'list', 'delete'] },
  // The nodes that run an agent (--node-selector).
  { apiGroups: [''], resources: ['nodes'], verbs: ['list'] },
];

/** In the release namespace (Role). */
export const UNINSTALL_NAMESPACE_RULES: NamedPolicyRule[] = [
  { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
  {
    apiGroups: [''],
    resources: ['configmaps'],
    verbs: ['get', 'delete'],
    resourceNames: [UNINSTALL_MARKER],
  },
];

/** The sniffer's (in the release namespace): see the marker, nothing else of ConfigMaps. */
export const MARKER_READ_RULE: NamedPolicyRule = {
  apiGroups: [''],
  resources: ['configmaps'],
  verbs: ['get', 'list', 'watch'],
  resourceNames: [UNINSTALL_MARKER],
};

/** The agent's (in the release namespace): see the marker and patch its own acknowledgement in. */
export const MARKER_ACK_RULE: NamedPolicyRule = {
  ...MARKER_READ_RULE,
  verbs: ['get', 'list', 'watch', 'patch'],
};
