// Prometheus metrics of the security-group reconciler, in the controller's registry
// (controller/reconciler/metrics.ts): EC2 calls by action and outcome, this cluster's rules live
// per group, and how long after a rule's expiresAt it was revoked.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface AwsMetrics {
  /** One per EC2 call as the reconciler saw it (after the SDK's own retries): outcome ok or a reason. */
  calls: Counter<'action' | 'outcome'>;
  /** This cluster's ingress rules in a group after the last pass of its region. */
  rulesLive: Gauge<'region' | 'group'>;
  /** Seconds from a rule's expiresAt (the latest of its grants) to its revocation. */
  revokeLag: Histogram;
}

export function createAwsMetrics(registry: Registry): AwsMetrics {
  const registers = [registry];
  return {
    calls: new Counter({
      name: 'knockgate_aws_calls_total',
      help: 'EC2 API calls of the security-group reconciler, by action and outcome (ok or the reason)',
      labelNames: ['action', 'outcome'],
      registers,
    }),
    rulesLive: new Gauge({
      name: 'knockgate_aws_rules_live',
      help: "This cluster's ingress rules per security group, as of the last pass of its region",
      labelNames: ['region', 'group'],
      registers,
    }),
    revokeLag: new Histogram({
      name: 'knockgate_aws_revoke_lag_seconds',
      help: 'Seconds from the expiresAt of a security-group rule to its revocation',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers,
    }),
  };
}
