// The controller's own configuration file (Helm values render it into a ConfigMap): the bounds of
// manual grants, retention, the revoke wait, leader election and where Events go. Manual grants are
// bounded here, never by anything a grant says about itself. Every error is one line, FILE:LINE.
//
//   apiVersion: knockgate.io/v1alpha1
//   kind: ControllerConfig
//   manualGrants:
//     largestPrefix: {ipv4: 24, ipv6: 64}   # the widest source block (default: one host)
//     maxDurationSeconds: 86400             # time left on a manual grant at most
//     allowedNodes: ["*"]                   # node names, "*" = any node (default)
//     allowedSecurityGroups: [{groupId: sg-0123456789abcdef0, region: eu-west-1}]  # default none
//   retention: {seconds: 86400, maxGrants: 10000}
//   revokeTimeoutSeconds: 60
//   policyGraceSeconds: 30
//   eventsNamespace: knockgate
//   leaderElection: {namespace: knockgate, leaseName: knockgate-controller,
//                    leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2}

import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../../api/config/errors.js';
import { locatePath } from '../../api/config/knockgate-yaml.js';
import { BOUNDS, DEFAULTS, LIST_BOUNDS } from '../../api/limits.js';
import type { AwsSecurityGroupRef } from '../../api/types.js';
import { API_VERSION } from '../../api/types.js';
import { Checker } from '../../api/validate-fields.js';
import { checkSecurityGroups } from '../../api/validate.js';
import { LEADER_DEFAULTS } from '../leader/elector.js';

export interface ControllerConfig {
  manualGrants: {
    largestPrefix: { ipv4: number; ipv6: number };
    maxDurationSeconds: number;
    /** Node names a manual grant may target; "*" = any. */
    allowedNodes: string[];
    allowedSecurityGroups: AwsSecurityGroupRef[];
  };
  retention: { seconds: number; maxGrants: number };
  /** How long a deleted grant waits for its nodes to report Removed before its finalizer goes anyway. */
  revokeTimeoutSeconds: number;
  /** How long a grant naming a policy the controller has not seen yet waits before it is Failed. */
  policyGraceSeconds: number;
  eventsNamespace: string;
  leaderElection: {
    namespace: string;
    leaseName: string;
    leaseDurationSeconds: number;
    renewDeadlineSeconds: number;
    retryPeriodSeconds: number;
  };
}

export function defaultControllerConfig(): ControllerConfig {
  return {
    manualGrants: {
      largestPrefix: { ipv4: 32, ipv6: 128 },
      maxDurationSeconds: 24 * 3600,
      allowedNodes: ['*'],
      allowedSecurityGroups: [],
    },
    retention: { seconds: DEFAULTS.retentionSeconds, maxGrants: 10_000 },
    revokeTimeoutSeconds: 60,
    policyGraceSeconds: 30,
    eventsNamespace: 'default',
    leaderElection: {
      namespace: 'default',
      leaseName: 'knockgate-controller',
      ...LEADER_DEFAULTS,
    },
  };
}

const TOP_FIELDS = [
  'apiVersion',
  'kind',
  'manualGrants',
  'retention',
  'revokeTimeoutSeconds',
  'policyGraceSeconds',
  'eventsNamespace',
  'leaderElection',
];

/** Check a parsed ControllerConfig document; errors carry field paths. */
export function validateControllerConfig(value: unknown): {
  config?: ControllerConfig;
  errors: Checker['errors'];
} {
  const c = new Checker();
  const out = defaultControllerConfig();
  if (!c.isObject(value, '')) return { errors: c.errors };
  c.knownFields(value, '', TOP_FIELDS);
  if (value.apiVersion !== API_VERSION) c.fail('apiVersion', `must be ${API_VERSION}`);
  if (value.kind !== 'ControllerConfig') c.fail('kind', 'must be ControllerConfig');

  const m = value.manualGrants;
  if (m !== undefined && c.isObject(m, 'manualGrants')) {
    c.knownFields(m, 'manualGrants', [
      'largestPrefix',
      'maxDurationSeconds',
      'allowedNodes',
      'allowedSecurityGroups',
    ]);
    const lp = m.largestPrefix;
    if (lp !== undefined && c.isObject(lp, 'manualGrants.largestPrefix')) {
      c.knownFields(lp, 'manualGrants.largestPrefix', ['ipv4', 'ipv6']);
      if (lp.ipv4 !== undefined && c.integer(lp.ipv4, 'manualGrants.largestPrefix.ipv4', 8, 32))
        out.manualGrants.largestPrefix.ipv4 = lp.ipv4;
      if (lp.ipv6 !== undefined && c.integer(lp.ipv6, 'manualGrants.largestPrefix.ipv6', 16, 128))
        out.manualGrants.largestPrefix.ipv6 = lp.ipv6;
    }
    if (
      m.maxDurationSeconds !== undefined &&
      c.integer(m.maxDurationSeconds, 'manualGrants.maxDurationSeconds', 1, BOUNDS.maxDurationSeconds)
    )
      out.manualGrants.maxDurationSeconds = m.maxDurationSeconds;
    const nodes = m.allowedNodes;
    if (nodes !== undefined && c.list(nodes, 'manualGrants.allowedNodes', 0, LIST_BOUNDS.maxTargetNodes)) {
      nodes.forEach((n, i) => {
        if (n !== '*') c.dnsSubdomain(n, `manualGrants.allowedNodes[${i}]`);
      });
      out.manualGrants.allowedNodes = nodes as string[];
    }
    const sgs = m.allowedSecurityGroups;
    if (sgs !== undefined && checkSecurityGroups(c, sgs, 'manualGrants.allowedSecurityGroups')) {
      out.manualGrants.allowedSecurityGroups = sgs as AwsSecurityGroupRef[];
    }
  }

  const r = value.retention;
  if (r !== undefined && c.isObject(r, 'retention')) {
    c.knownFields(r, 'retention', ['seconds', 'maxGrants']);
    if (r.seconds !== undefined && c.integer(r.seconds, 'retention.seconds', 0, 30 * 24 * 3600))
      out.retention.seconds = r.seconds;
    if (r.maxGrants !== undefined && c.integer(r.maxGrants, 'retention.maxGrants', 0, 1_000_000))
      out.retention.maxGrants = r.maxGrants;
  }
  if (
    value.revokeTimeoutSeconds !== undefined &&
    c.integer(value.revokeTimeoutSeconds, 'revokeTimeoutSeconds', 1, 3600)
  )
    out.revokeTimeoutSeconds = value.revokeTimeoutSeconds;
  if (
    value.policyGraceSeconds !== undefined &&
    c.integer(value.policyGraceSeconds, 'policyGraceSeconds', 0, 3600)
  )
    out.policyGraceSeconds = value.policyGraceSeconds;
  if (value.eventsNamespace !== undefined && c.dnsLabel(value.eventsNamespace, 'eventsNamespace'))
    out.eventsNamespace = value.eventsNamespace;

  const le = value.leaderElection;
  if (le !== undefined && c.isObject(le, 'leaderElection')) {
    const p = 'leaderElection';
    c.knownFields(le, p, [
      'namespace',
      'leaseName',
      'leaseDurationSeconds',
      'renewDeadlineSeconds',
      'retryPeriodSeconds',
    ]);
    if (le.namespace !== undefined && c.dnsLabel(le.namespace, `${p}.namespace`))
      out.leaderElection.namespace = le.namespace;
    if (le.leaseName !== undefined && c.dnsSubdomain(le.leaseName, `${p}.leaseName`))
      out.leaderElection.leaseName = le.leaseName;
    for (const f of ['leaseDurationSeconds', 'renewDeadlineSeconds', 'retryPeriodSeconds'] as const)
      if (le[f] !== undefined && c.integer(le[f], `${p}.${f}`, 1, 600)) out.leaderElection[f] = le[f];
    const { leaseDurationSeconds: d, renewDeadlineSeconds: r2, retryPeriodSeconds: t } = out.leaderElection;
    if (c.errors.length === 0 && !(d > r2 && r2 > t))
      c.fail(
        p,
        `want leaseDurationSeconds (${d}) > renewDeadlineSeconds (${r2}) > retryPeriodSeconds (${t})`,
      );
  }
  return c.errors.length ? { errors: c.errors } : { config: out, errors: [] };
}

/** Parse and check a ControllerConfig file. Throws ConfigError (FILE:LINE: what). */
export function parseControllerConfig(file: string, text: string): ControllerConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  const lineOf = (offset: number) => lc.linePos(offset).line;
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0].line ?? lineOf(err.pos[0]);
    throw new ConfigError(
      file,
      line,
      `YAML: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
    );
  }
  if (doc.contents === null) throw new ConfigError(file, undefined, 'empty file: want a ControllerConfig');
  const { config, errors } = validateControllerConfig(doc.toJS({ maxAliasCount: 100 }));
  if (!config) {
    const e = errors[0]!;
    throw new ConfigError(
      file,
      locatePath(doc, e.path, lineOf) ?? lineOf(doc.contents.range[0]),
      e.path ? `${e.path}: ${e.message}` : e.message,
    );
  }
  return config;
}

export function loadControllerConfig(file: string): ControllerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      file,
      undefined,
      `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return parseControllerConfig(file, text);
}
