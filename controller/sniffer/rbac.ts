// What the sniffer may do in the API, as ClusterRole/Role rules (the tests run the sniffer as a user
// holding exactly these). Least privilege: it never deletes or lists or watches grants, never patches
// a grant's status, and reads Secrets only in the release namespace.
//
// Beyond DESIGN.md's create+patch on accessgrants, the knock path needs get: a knock for a grant
// name that exists is an extend (get, then a merge patch carrying the resourceVersion). A name held
// by a history entry (Expired, Revoked, Failed) or by another node's grant is passed over for the
// next generation of the name, found by get as well (controller/kube/generations.ts); the controller
// deletes history entries. What RBAC cannot say — patch only this node's grants, create only grants
// observed by this node — the ValidatingAdmissionPolicy of admission-policy.ts does.

import type { PolicyRule } from '../reconciler/rbac.js';
import { MARKER_READ_RULE } from '../uninstall/rbac.js';

/** Cluster-wide (ClusterRole). */
export const SNIFFER_CLUSTER_RULES: PolicyRule[] = [
  // The policies this node runs.
  { apiGroups: ['knockgate.io'], resources: ['knockpolicies'], verbs: ['get', 'list', 'watch'] },
  // Replay protection: a claim per SPA packet (409 = replay); get+delete to take over a claim whose
  // expiresAt has passed but that the controller has not collected yet.
  { apiGroups: ['knockgate.io'], resources: ['replayclaims'], verbs: ['create', 'get', 'delete'] },
  // Grants: create; get+patch to extend a live one (get also walks a name's generations).
  { apiGroups: ['knockgate.io'], resources: ['accessgrants'], verbs: ['create', 'get', 'patch'] },
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
