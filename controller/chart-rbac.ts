// The RBAC the Helm chart renders, per role, from the roles' own rules (controller/*/rbac.ts):
// charts/knockgate/files/rbac.json is this, written by scripts/chart-rbac.ts, and a test fails when
// the file and the code drift apart. The chart binds clusterRules in a ClusterRole and namespaceRules
// in a Role of the release namespace.

import {
  AGENT_CLUSTER_RULES,
  AGENT_NAMESPACE_RULES,
  agentNodeRule,
  type NamedPolicyRule,
} from './agent/rbac.js';
import { CONTROLLER_CLUSTER_RULES, CONTROLLER_NAMESPACE_RULES } from './reconciler/rbac.js';
import { snifferAdmissionPolicy } from './sniffer/admission-policy.js';
import { SNIFFER_CLUSTER_RULES, SNIFFER_NAMESPACE_RULES } from './sniffer/rbac.js';
import { UNINSTALL_CLUSTER_RULES, UNINSTALL_NAMESPACE_RULES } from './uninstall/rbac.js';

export interface ChartRoleRbac {
  clusterRules: NamedPolicyRule[];
  namespaceRules: NamedPolicyRule[];
}

export type ChartRole = 'sniffer' | 'agent' | 'controller' | 'uninstall';

/**
 * The agent's node rule without resourceNames: one ServiceAccount serves the whole DaemonSet, so
 * the rule cannot name each node (the agent still asks only for its own, by fieldSelector).
 */
function anyNode(rule: NamedPolicyRule): NamedPolicyRule {
  const { resourceNames: _names, ...rest } = rule;
  return rest;
}

const copy = (rules: readonly NamedPolicyRule[]): NamedPolicyRule[] => rules.map((r) => ({ ...r }));

export function chartRbac(): Record<ChartRole, ChartRoleRbac> {
  return {
    sniffer: { clusterRules: copy(SNIFFER_CLUSTER_RULES), namespaceRules: copy(SNIFFER_NAMESPACE_RULES) },
    agent: {
      clusterRules: [...copy(AGENT_CLUSTER_RULES), anyNode(agentNodeRule('any'))],
      namespaceRules: copy(AGENT_NAMESPACE_RULES),
    },
    controller: {
      clusterRules: copy(CONTROLLER_CLUSTER_RULES),
      namespaceRules: copy(CONTROLLER_NAMESPACE_RULES),
    },
    uninstall: {
      clusterRules: copy(UNINSTALL_CLUSTER_RULES),
      namespaceRules: copy(UNINSTALL_NAMESPACE_RULES),
    },
  };
}

/** The file's text: stable JSON, one trailing newline. */
export function chartRbacJson(): string {
  return `${JSON.stringify(chartRbac(), null, 2)}\n`;
}

/**
 * The placeholders of files/sniffer-admission-policy.json the chart replaces with the release
 * namespace, the sniffer's ServiceAccount and the policy's name (each a DNS label no other text of
 * the policy contains).
 */
export const ADMISSION_PLACEHOLDERS = {
  namespace: 'kg-release-namespace',
  serviceAccount: 'kg-sniffer-service-account',
  name: 'kg-sniffer-policy-name',
} as const;

/** files/sniffer-admission-policy.json: the sniffer's ValidatingAdmissionPolicy and its binding. */
export function chartAdmissionPolicyJson(): string {
  return `${JSON.stringify(snifferAdmissionPolicy(ADMISSION_PLACEHOLDERS), null, 2)}\n`;
}
