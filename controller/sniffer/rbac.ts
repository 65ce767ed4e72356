// What the sniffer may do in the API, as ClusterRole/Role rules (the tests run the sniffer as a user
// holding exactly these). Least privilege: it never patches a grant's status, never lists or
// watches grants, and reads Secrets only in the release namespace.
//
// Beyond DESIGN.md's create+patch on accessgrants, the knock path needs get and delete: a knock for
// a grant name that exists is an extend (get, then a merge patch carrying the resourceVersion), and
// when that grant is a history entry (Expired, Revoked, Failed) it is replaced — deleted with uid and
// resourceVersion preconditions, then created anew (controller/kube/grant-store.ts, extend). Without
// delete, that path fails with the API server's 403 and nothing is opened.

import type { PolicyRule } from '../reconciler/rbac.js';
import { MARKER_READ_RULE } from '../uninstall/rbac.js';

/** Cluster-wide (ClusterRole). */
export const SNIFFER_CLUSTER_RULES: PolicyRule[] = [
  // The policies this node runs.
  { apiGroups: ['knockgate.io'], resources: ['knockpolicies'], verbs: ['get', 'list', 'watch'] },
  // Replay protection: a claim per SPA packet (409 = replay); get+delete to take over a claim whose
  // expiresAt has passed but that the controller has not collected yet.
  { apiGroups: ['knockgate.io'], resources: ['replayclaims'], verbs: ['create', 'get', 'delete'] },
  // Grants: create; get+patch to extend a live one; get+delete to replace an Expired one.
  { apiGroups: ['knockgate.io'], resources: ['accessgrants'], verbs: ['create', 'get', 'patch', 'delete'] },
  // Node labels: which policies run here, and the targets of Selector-mode policies.
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
];

/**
 * In the release namespace (Role): the SPA keys the policies reference, and the uninstall marker by
 * name (seen → no more grants written; controller/uninstall/marker.ts).
 */
export const SNIFFER_NAMESPACE_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
  MARKER_READ_RULE,
];
