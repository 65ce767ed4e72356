// knockgate controller: the cluster controller (a Deployment with leader election on a Lease):
// grant phases and conditions, expiry, retention, ReplayClaim garbage collection, the revoke
// finalizer, Events, the bounds of manual grants, and AWS security-group rules (--cluster-id,
// --aws-region; credentials from the SDK's default chain). Wiring and signals only: the controller
// is controller/reconciler/manager.ts.
//
// Exit status: 0 after SIGTERM/SIGINT (the Lease is released so a standby takes over at once);
// 2 for bad input (config FILE:LINE, options, kubeconfig).
//
// Only the options are defined here; the manager and the Kubernetes client load when the command
// runs (cmd/controller-run.ts), so that every other command starts without them.

import type { Command } from 'commander';
import { logLevel, REQUEST_TIMEOUT_OPTION } from './options.js';

export interface ControllerCliOptions {
  config?: string;
  kubeconfig?: string;
  requestTimeout: number;
  context?: string;
  namespace?: string;
  identity?: string;
  logLevel: string;
  metricsAddress?: string;
  clusterId?: string;
  awsRegion?: string[];
  awsEndpoint?: string;
  awsGraceSeconds: string;
  awsSweepSeconds: string;
}

/** --aws-region eu-west-1 --aws-region us-east-1, or --aws-region eu-west-1,us-east-1. */
function collectRegions(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map((r) => r.trim())];
}

export function register(program: Command): void {
  program
    .command('controller')
    .description(
      'the cluster controller: grant phases, expiry, retention, claim GC, revoke finalizer, events',
    )
    .option('-c, --config <file>', 'ControllerConfig YAML (manual grant bounds, retention, leader election)')
    .option(
      '--kubeconfig <file>',
      'kubeconfig file (default: $KUBECONFIG, else the in-cluster service account)',
    )
    .option(
      REQUEST_TIMEOUT_OPTION.flags,
      REQUEST_TIMEOUT_OPTION.description,
      REQUEST_TIMEOUT_OPTION.parse,
      REQUEST_TIMEOUT_OPTION.defaultSeconds,
    )
    .option('--context <name>', 'kubeconfig context')
    .option('--namespace <ns>', 'namespace of the Lease and the Events (default: $POD_NAMESPACE)')
    .option('--identity <name>', 'leader election identity (default: $POD_NAME, else the host name)')
    .option('--log-level <level>', 'trace, debug, info, warn, error', logLevel, 'info')
    .option('--metrics-address <host:port>', 'serve /metrics and /healthz here, e.g. 127.0.0.1:9466')
    .option(
      '--cluster-id <id>',
      'the knockgate.io/cluster tag of the security-group rules this installation owns (required with --aws-region; no default)',
    )
    .option(
      '--aws-region <region>',
      'an AWS region to act in and sweep (repeatable, or a comma list)',
      collectRegions,
    )
    .option('--aws-endpoint <url>', 'EC2 endpoint (a VPC endpoint; default: the regional endpoint)')
    .option(
      '--aws-grace-seconds <n>',
      'keep an unneeded rule of a grant this replica has not seen this long',
      '30',
    )
    .option('--aws-sweep-seconds <n>', 'pass every region at least this often', '60')
    .action(async (opts: ControllerCliOptions) => (await import('./controller-run.js')).run(opts));
}
