// What RBAC cannot say about the sniffer: it may write only its own node's grants. One
// ServiceAccount serves the whole DaemonSet, so an RBAC rule cannot tell node A's sniffer from node
// B's; a ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA in Kubernetes 1.30) can,
// because a bound service-account token (the projected token every pod gets) names the node its pod
// runs on: request.userInfo.extra["authentication.kubernetes.io/node-name"] (feature
// ServiceAccountTokenPodNodeInfo, beta and on by default in 1.30, GA in 1.32). A token without it (a
// legacy Secret token, an older server) is refused (fail closed): the sniffer then creates nothing.
//
// For the sniffer's ServiceAccount only (matchConditions), on CREATE and UPDATE (a PATCH is an
// UPDATE to admission) of accessgrants:
// - the grant must say it was observed by the requesting node (spec.observedBy), so a sniffer
//   cannot create a grant in another node's name (a Local-mode grant opens only observedBy's node);
// - on UPDATE the stored grant must already be this node's, and only spec.expiresAt and spec.ports
//   may change (an extend): not the source, targets, policy, method or observer, and not metadata
//   such as finalizers or ownerReferences that would pin a grant or detach it from its policy.
// Status writes (accessgrants/status) are not the sniffer's at all (RBAC) and not matched here.
// Reason Forbidden, so a refusal is a 403 like RBAC's.
//
// This is data: the chart renders it (with its namespace and the sniffer's ServiceAccount), and
// test/kube-roles-rbac.test.ts installs it in the API emulator.

export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

export interface SnifferAdmissionOptions {
  /** The release namespace, where the sniffer's ServiceAccount lives. */
  namespace: string;
  /** The sniffer's ServiceAccount name. */
  serviceAccount: string;
  /** Policy and binding name; default knockgate-sniffer-own-grants. */
  name?: string;
}

/** The ServiceAccount's user name, as the API server authenticates its tokens. */
export function serviceAccountUser(namespace: string, serviceAccount: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccount}`;
}

/** A CEL string literal (single-quoted; the user name has no quotes, but be exact anyway). */
function celString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The spec keys an extend changes; every other key must stay as stored. */
const EXTEND_KEYS = ['expiresAt', 'ports'];
/** Metadata a sniffer never changes on an existing grant. */
const FROZEN_METADATA = ['labels', 'annotations', 'finalizers', 'ownerReferences'];

export function snifferAdmissionPolicy(opts: SnifferAdmissionOptions): {
  policy: Record<string, unknown>;
  binding: Record<string, unknown>;
} {
  for (const [what, value] of [
    ['namespace', opts.namespace],
    ['serviceAccount', opts.serviceAccount],
  ] as const)
    if (!DNS_LABEL.test(value) || value.length > 63)
      throw new Error(`sniffer admission policy: ${what} "${value}" is not a DNS label`);
  const name = opts.name ?? 'knockgate-sniffer-own-grants';
  const user = serviceAccountUser(opts.namespace, opts.serviceAccount);
  const extendKeys = `[${EXTEND_KEYS.map(celString).join(', ')}]`;
  const sameMetadata = FROZEN_METADATA.map(
    (k) =>
      `(has(object.metadata.${k}) ? object.metadata.${k} : null) == (has(oldObject.metadata.${k}) ? oldObject.metadata.${k} : null)`,
  ).join(' && ');
  const policy = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name, labels: { 'app.kubernetes.io/name': 'knockgate' } },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: ['knockgate.io'],
            apiVersions: ['*'],
            operations: ['CREATE', 'UPDATE'],
            resources: ['accessgrants'],
          },
        ],
      },
      matchConditions: [{ name: 'sniffer', expression: `request.userInfo.username == ${celString(user)}` }],
      variables: [
        {
          name: 'node',
          expression:
            `${celString(NODE_NAME_EXTRA)} in request.userInfo.extra && ` +
            `size(request.userInfo.extra[${celString(NODE_NAME_EXTRA)}]) == 1 ? ` +
            `request.userInfo.extra[${celString(NODE_NAME_EXTRA)}][0] : ''`,
        },
      ],
      validations: [
        {
          expression: "variables.node != ''",
          message: `the sniffer's token names no node (userInfo.extra ${NODE_NAME_EXTRA}): a bound service-account token is required`,
          reason: 'Forbidden',
        },
        {
          expression:
            "request.operation != 'UPDATE' || (has(oldObject.spec.observedBy) && oldObject.spec.observedBy == variables.node)",
          message: 'a sniffer changes only grants its own node observed',
          reason: 'Forbidden',
        },
        {
          expression: 'has(object.spec.observedBy) && object.spec.observedBy == variables.node',
          messageExpression:
            "'spec.observedBy must be the requesting node ' + variables.node + (has(object.spec.observedBy) ? ', not ' + object.spec.observedBy : '')",
          reason: 'Forbidden',
        },
        {
          expression:
            `request.operation != 'UPDATE' || (` +
            `oldObject.spec.all(k, k in ${extendKeys} || (k in object.spec && object.spec[k] == oldObject.spec[k])) && ` +
            `object.spec.all(k, k in ${extendKeys} || k in oldObject.spec))`,
          message: `a sniffer's update of a grant changes only ${EXTEND_KEYS.map((k) => `spec.${k}`).join(' and ')}`,
          reason: 'Forbidden',
        },
        {
          expression: `request.operation != 'UPDATE' || (${sameMetadata})`,
          message: `a sniffer's update of a grant leaves metadata.${FROZEN_METADATA.join(', metadata.')} as they are`,
          reason: 'Forbidden',
        },
      ],
    },
  };
  const binding = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name, labels: { 'app.kubernetes.io/name': 'knockgate' } },
    spec: { policyName: name, validationActions: ['Deny'] },
  };
  return { policy, binding };
}
