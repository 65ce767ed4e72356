// What `knockgate agent` runs: config, wiring and signals. Loaded only when the command runs
// (cmd/agent.ts registers the options), so other commands never load the Kubernetes client.

import type { Server } from 'node:http';
import { systemClock } from '../api/clock.js';
import { ConfigError } from '../api/config/errors.js';
import { createLogger } from '../api/log.js';
import { NodeAgent } from '../controller/agent/agent.js';
import { loadAgentConfig, type AgentConfig } from '../controller/agent/config.js';
import { agentKube } from '../controller/agent/kube.js';
import { createFirewall } from '../controller/firewall/firewall.js';
import { FirewallInputError } from '../controller/firewall/types.js';
import { createAgentMetrics, type AgentMetrics } from '../controller/agent/metrics.js';
import { MetricsAddressError, serveMetrics } from '../controller/metrics-server.js';
import { acknowledgeRemoved, MarkerWatch } from '../controller/uninstall/marker.js';
import { kubeConfigFromFlags, releaseNamespace } from './kube-options.js';
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

async function listen(metrics: AgentMetrics, agent: NodeAgent, address: string): Promise<Server | undefined> {
  if (address === 'off') return undefined;
  try {
    return await serveMetrics(metrics, address, { notReady: () => agent.notReady() });
  } catch (err) {
    if (err instanceof MetricsAddressError) throw new CliError(err.message);
    throw new CliError(`--metrics-address ${address}: ${(err as Error).message}`, 1);
  }
}

export async function run(opts: AgentCliOptions): Promise<void> {
  const config = load(opts);
  const namespace = releaseNamespace(opts.namespace, { required: false });
  const kubeConfig = kubeConfigFromFlags(opts);
  const logger = createLogger({ level: opts.logLevel, name: 'knockgate-agent' });
  const firewall = createFirewall({ backend: config.backend, logger, clock: systemClock });
  const sources = agentKube(kubeConfig, systemClock, logger);
  const metrics = createAgentMetrics();
  const agent = new NodeAgent({ config, firewall, sources, clock: systemClock, logger, metrics });
  // Up before start(): /healthz answers and /readyz says what is missing while the lists load.
  const metricsServer = await listen(metrics, agent, opts.metricsAddress);
  // Followed from the start: a marker seen during start() is acted on once the install is done.
  const marker =
    namespace === undefined
      ? undefined
      : new MarkerWatch({
          kubeConfig,
          namespace,
          clock: systemClock,
          logger,
          onUninstall: () =>
            void agent.uninstall(() =>
              acknowledgeRemoved(kubeConfig, namespace, config.nodeName, { clock: systemClock }),
            ),
        });
  if (marker) marker.start();
  else
    logger.warn(
      { event: 'no-namespace' },
      'no --namespace (or POD_NAMESPACE): the uninstall marker is not followed, `knockgate uninstall` cannot clean this node',
    );
  try {
    await agent.start();
  } catch (err) {
    await marker?.stop();
    await agent.stop().catch(() => undefined);
    metricsServer?.close();
    const message = `firewall: ${(err as Error).message}`;
    throw new CliError(message, err instanceof FirewallInputError ? 2 : 1);
  }
  // The clock's timers are unref'd (so that short-lived commands end when their work does). With
  // the API unreachable and no firewall session open, only those timers (retries, expiries) are
  // left: without a handle of its own the process would exit, status 0. Run until told.
  const keepAlive = setInterval(() => undefined, 2 ** 30);
  await new Promise<void>((resolve) => {
    const onStop = (signal: string) => {
      clearInterval(keepAlive);
      logger.info({ event: 'stopping', signal }, `${signal}: stopping (open grants expire on their own)`);
      void Promise.all([marker?.stop(), agent.stop()]).then(() => {
        metricsServer?.close();
        resolve();
      });
    };
    process.once('SIGTERM', () => onStop('SIGTERM'));
    process.once('SIGINT', () => onStop('SIGINT'));
  });
}
