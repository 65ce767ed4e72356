// knockgate agent --config FILE [--kubeconfig K]: the node agent (DaemonSet, NET_ADMIN, no capture).
// Wiring and signals only: the agent is controller/agent/agent.ts.
//
// Exit status: 0 after SIGTERM/SIGINT; 2 for bad input (config FILE:LINE, kubeconfig); 1 when this
// node cannot run it (firewall tools, privileges).

import type { Command } from 'commander';
import { systemClock } from '../api/clock.js';
import { ConfigError } from '../api/config/errors.js';
import { createLogger } from '../api/log.js';
import { NodeAgent } from '../controller/agent/agent.js';
import { loadAgentConfig, type AgentConfig } from '../controller/agent/config.js';
import { agentKube } from '../controller/agent/kube.js';
import { createFirewall } from '../controller/firewall/firewall.js';
import { FirewallInputError } from '../controller/firewall/types.js';
import { kubeConfigFromFlags } from './kube-options.js';
import { CliError } from './errors.js';
import { logLevel } from './options.js';

interface AgentCliOptions {
  config?: string;
  kubeconfig?: string;
  context?: string;
  logLevel: string;
}

function load(opts: AgentCliOptions): AgentConfig {
  if (opts.config === undefined) throw new CliError('--config FILE is required');
  try {
    return loadAgentConfig(opts.config);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
}

async function run(opts: AgentCliOptions): Promise<void> {
  const config = load(opts);
  const kubeConfig = kubeConfigFromFlags(opts);
  const logger = createLogger({ level: opts.logLevel, name: 'knockgate-agent' });
  const firewall = createFirewall({ backend: config.backend, logger, clock: systemClock });
  const sources = agentKube(kubeConfig, systemClock, logger);
  const agent = new NodeAgent({ config, firewall, sources, clock: systemClock, logger });
  try {
    await agent.start();
  } catch (err) {
    await agent.stop().catch(() => undefined);
    const message = `firewall: ${(err as Error).message}`;
    throw new CliError(message, err instanceof FirewallInputError ? 2 : 1);
  }
  await new Promise<void>((resolve) => {
    const onStop = (signal: string) => {
      logger.info({ event: 'stopping', signal }, `${signal}: stopping (open grants expire on their own)`);
      void agent.stop().then(resolve);
    };
    process.once('SIGTERM', () => onStop('SIGTERM'));
    process.once('SIGINT', () => onStop('SIGINT'));
  });
}

export function register(program: Command): void {
  program
    .command('agent')
    .description('node agent: apply the AccessGrants targeting this node to its firewall (Kubernetes)')
    .option('-c, --config <file>', 'the agent config (kind: AgentConfig YAML)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else in-cluster)')
    .option('--context <name>', 'kubeconfig context other than the current one')
    .option('--log-level <level>', 'trace, debug, info, warn, error', logLevel, 'info')
    .action((opts: AgentCliOptions) => run(opts));
}
