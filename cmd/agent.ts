// knockgate agent --config FILE [--kubeconfig K]: the node agent (DaemonSet, NET_ADMIN, no capture).
// Wiring and signals only: the agent is controller/agent/agent.ts.
//
// Exit status: 0 after SIGTERM/SIGINT; 2 for bad input (config FILE:LINE, kubeconfig); 1 when this
// node cannot run it (firewall tools, privileges).
//
// Only the options are defined here; the agent and the Kubernetes client load when the command runs
// (cmd/agent-run.ts), so that every other command starts without them.

import type { Command } from 'commander';
import { logLevel } from './options.js';

export interface AgentCliOptions {
  config?: string;
  kubeconfig?: string;
  context?: string;
  logLevel: string;
}

export function register(program: Command): void {
  program
    .command('agent')
    .description('node agent: apply the AccessGrants targeting this node to its firewall (Kubernetes)')
    .option('-c, --config <file>', 'the agent config (kind: AgentConfig YAML)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else in-cluster)')
    .option('--context <name>', 'kubeconfig context other than the current one')
    .option('--log-level <level>', 'trace, debug, info, warn, error', logLevel, 'info')
    .action(async (opts: AgentCliOptions) => (await import('./agent-run.js')).run(opts));
}
