// knockgate uninstall --namespace NS [--node-selector SEL] [--node NAME]... [--timeout S]: what the
// Helm chart's pre-delete hook Job runs (controller/uninstall/uninstall.ts): every grant revoked,
// every agent's firewall objects removed, no finalizer left; a summary of what was removed.
//
// Exit status: 0 when nothing is left; 1 when the deadline passed (one line naming what is left) or
// the API refused (RBAC, unreachable); 2 for bad input.
//
// Only the options are defined here; the Kubernetes client loads when the command runs.

import type { Command } from 'commander';
import { intOption, logLevel, REQUEST_TIMEOUT_OPTION } from './options.js';

export interface UninstallCliOptions {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  nodeSelector?: string;
  node: string[];
  /** Seconds. */
  timeout: number;
  logLevel: string;
  requestTimeout: number;
}

export function register(program: Command): void {
  program
    .command('uninstall')
    .description(
      'revoke every grant, have every agent remove its firewall objects and wait for it (the Helm pre-delete hook)',
    )
    .option('--namespace <ns>', 'the release namespace (default: $POD_NAMESPACE)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else in-cluster)')
    .option('--context <name>', 'kubeconfig context other than the current one')
    .option(
      '--node-selector <selector>',
      'label selector of the Nodes that run an agent, waited for ("" = every Node); nodes named by grants are always waited for',
    )
    .option(
      '--node <name>',
      'a node that runs an agent, waited for (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option(
      '--timeout <seconds>',
      'give up after this long, naming what is left (1-3600)',
      intOption('--timeout', 1, 3600),
      300,
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error', logLevel, 'warn')
    .option(
      REQUEST_TIMEOUT_OPTION.flags,
      REQUEST_TIMEOUT_OPTION.description,
      REQUEST_TIMEOUT_OPTION.parse,
      REQUEST_TIMEOUT_OPTION.defaultSeconds,
    )
    .action(async (opts: UninstallCliOptions) => (await import('./uninstall-run.js')).run(opts));
}
