// knockgate sniffer: one node's sniffer on Kubernetes (a DaemonSet on the host network with
// NET_RAW). Wiring and signals only: the role is controller/sniffer/role.ts.
//
// Exit status: 0 after SIGTERM/SIGINT; 2 for bad input (options, kubeconfig); 1 when it cannot run
// here (capability, interface, the API never answered, capture failed). Every failure is one line.
//
// Only the options are defined here; the role and the Kubernetes client load when the command runs
// (cmd/sniffer-run.ts), so that every other command starts without them.

import type { Command } from 'commander';
import { SNIFFER_BOUNDS, SNIFFER_DEFAULTS } from '../controller/sniffer/limits.js';
import { CAPTURE_BUFFER } from '../sniffer/capture/buffer.js';
import { intOption, logLevel, REQUEST_TIMEOUT_OPTION } from './options.js';

export interface SnifferCliOptions {
  kubeconfig?: string;
  requestTimeout: number;
  context?: string;
  namespace?: string;
  node?: string;
  interface?: string[];
  bufferSize?: number;
  logLevel: string;
  metricsAddress?: string;
  maxGrantsPerPolicy: number;
  grantsPerSecond: number;
  grantsBurst: number;
}

export function register(program: Command): void {
  program
    .command('sniffer')
    .description('the Kubernetes sniffer role: capture knocks and SPA packets, write AccessGrants')
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
    .option('--context <name>', 'a kubeconfig context other than the current one')
    .option('--namespace <ns>', 'the release namespace, where key Secrets live (default: $POD_NAMESPACE)')
    .option('--node <name>', "this node's name (default: $NODE_NAME)")
    .option(
      '-i, --interface <name...>',
      "capture interface(s); default: the policies' interface, else the default route",
    )
    .option(
      '--buffer-size <bytes>',
      'capture buffer size',
      intOption('--buffer-size', CAPTURE_BUFFER.minBytes, CAPTURE_BUFFER.maxBytes),
    )
    .option(
      '--max-grants-per-policy <n>',
      'live grants one policy may hold through this sniffer; more are refused',
      intOption('--max-grants-per-policy', 1, SNIFFER_BOUNDS.maxLiveGrantsPerPolicy),
      SNIFFER_DEFAULTS.maxLiveGrantsPerPolicy,
    )
    .option(
      '--grants-per-second <n>',
      'grant writes (creations and extensions) per second, sustained',
      intOption('--grants-per-second', 1, SNIFFER_BOUNDS.grantsPerSecond),
      SNIFFER_DEFAULTS.grantsPerSecond,
    )
    .option(
      '--grants-burst <n>',
      'grant writes allowed in a burst',
      intOption('--grants-burst', 1, SNIFFER_BOUNDS.grantsBurst),
      SNIFFER_DEFAULTS.grantsBurst,
    )
    .option('--metrics-address <host:port>', 'serve /metrics and /healthz here, e.g. 127.0.0.1:9465')
    .option('--log-level <level>', 'trace, debug, info, warn, error', logLevel, 'info')
    .action(async (opts: SnifferCliOptions) => (await import('./sniffer-run.js')).run(opts));
}
