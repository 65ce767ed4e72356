// knockgate agent --config FILE [--kubeconfig K]: the node agent (DaemonSet, NET_ADMIN, no capture).
// Wiring and signals only: the agent is controller/agent/agent.ts.
//
// Exit status: 0 after SIGTERM/SIGINT; 2 for bad input (config FILE:LINE, kubeconfig); 1 when this
// node cannot run it (firewall tools, privileges).
//
// Only the options are defined here; the agent and the Kubernetes client load when the command runs
// (cmd/agent-run.ts), so that every other command starts without them.

import type { Command } from 'commander';
import { logLevel, REQUEST_TIMEOUT_OPTION } from './options.js';

export interface AgentCliOptions {
  config?: string;
  kubeconfig?: string;
  context?: string;
  /** The release namespace (the uninstall marker); default $POD_NAMESPACE. */
  namespace?: string;
  logLevel: string;
  /** HOST:PORT, or "off". */
  metricsAddress: string;
  /** Deadline of each Kubernetes API request but watches, seconds. */
  requestTimeout: number;
}

/** Default /metrics, /healthz, /readyz address (the pod runs on the host network: loopback only). */
export const AGENT_METRICS_ADDRESS = '127.0.0.1:9467';

export function register(program: Command): void {
  program
    .command('agent')
    .description('node agent: apply the AccessGrants targeting this node to its firewall (Kubernetes)')
    .option('-c, --config <file>', 'the agent config (kind: AgentConfig YAML)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else in-cluster)')
    .option('--context <name>', 'kubeconfig context other than the current one')
    .option(
      '--namespace <ns>',
      'the release namespace, where `knockgate uninstall` leaves its marker (default: $POD_NAMESPACE)',
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error', logLevel, 'info')
    .option(
      '--metrics-address <host:port>',
      'serve /metrics, /healthz and /readyz here ("off": not at all)',
      AGENT_METRICS_ADDRESS,
    )
    .option(
      REQUEST_TIMEOUT_OPTION.flags,
      REQUEST_TIMEOUT_OPTION.description,
      REQUEST_TIMEOUT_OPTION.parse,
      REQUEST_TIMEOUT_OPTION.defaultSeconds,
    )
    .action(async (opts: AgentCliOptions) => (await import('./agent-run.js')).run(opts));
}
