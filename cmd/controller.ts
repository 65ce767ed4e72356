// knockgate controller: the cluster controller (a Deployment with leader election on a Lease):
// grant phases and conditions, expiry, retention, ReplayClaim garbage collection, the revoke
// finalizer, Events, and the bounds of manual grants. Wiring and signals only: the controller is
// controller/reconciler/manager.ts.
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
    .action(async (opts: ControllerCliOptions) => (await import('./controller-run.js')).run(opts));
}
