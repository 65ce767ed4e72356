// What the node agent may do in the API, as ClusterRole rules (the tests run the agent as a user
// holding exactly these). Least privilege: it reads grants and policies, writes only the status
// subresource of grants (its own status.nodes key), and reads its own Node object — never Secrets,
// never a grant's spec, no other node.

import type { PolicyRule } from '../reconciler/rbac.js';
import { MARKER_ACK_RULE } from '../uninstall/rbac.js';

/** A rule that may name the objects it covers (RBAC resourceNames). */
export interface NamedPolicyRule extends PolicyRule {
  resourceNames?: string[];
}

/** Cluster-wide (ClusterRole). */
export const AGENT_CLUSTER_RULES: PolicyRule[] = [
  // The informers: grants targeting this node, and the policies they are checked against.
  {
    apiGroups: ['knockgate.io'],
    resources: ['accessgrants', 'knockpolicies'],
    verbs: ['get', 'list', 'watch'],
  },
  // status.nodes[<this node>] (a merge patch of that key only).
  { apiGroups: ['knockgate.io'], resources: ['accessgrants/status'], verbs: ['patch'] },
];

/**
 * Its own Node (labels for Selector-mode policies). The agent lists and watches it with
 * fieldSelector metadata.name=<node>, which the API server authorizes as a request for that name,
 * so the rule can name the node. (One ServiceAccount for the whole DaemonSet cannot name every node
 * in one rule: a chart without per-node identities grants the same verbs without resourceNames;
 * the agent still asks for its own node only.)
 */
export function agentNodeRule(nodeName: string): NamedPolicyRule {
  return {
    apiGroups: [''],
    resources: ['nodes'],
    verbs: ['get', 'list', 'watch'],
    resourceNames: [nodeName],
  };
}

/**
 * In the release namespace (Role): the uninstall marker (controller/uninstall/marker.ts), by name —
 * watched, and patched with this node's acknowledgement once its firewall objects are removed.
 */
export const AGENT_NAMESPACE_RULES: NamedPolicyRule[] = [MARKER_ACK_RULE];

/** Everything the agent of `nodeName` needs cluster-wide (plus AGENT_NAMESPACE_RULES in the release namespace). */
export function agentRules(nodeName: string): NamedPolicyRule[] {
  return [...AGENT_CLUSTER_RULES, agentNodeRule(nodeName)];
}
