// What `knockgate agent` runs: config, wiring and signals. Loaded only when the command runs
// (cmd/agent.ts registers the options), so other commands never load the Kubernetes client.

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
import type { AgentCliOptions } from './agent.js';

function load(opts: AgentCliOptions): AgentConfig {
  if (opts.config === undefined) throw new CliError('--config FILE is required');
  try {
    return loadAgentConfig(opts.config);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
}

export async function run(opts: AgentCliOptions): Promise<void> {
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
