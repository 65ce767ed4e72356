// What `knockgate standalone` runs: config, preflight, the daemon's wiring and signals. Loaded only
// when the command runs (cmd/standalone.ts registers the options), so that a client command does not
// load the daemon, and the daemon loads nothing of the other commands.

import type { Registry } from 'prom-client';
import { ConfigError, loadConfig, type LoadedConfig } from '../api/config/load.js';
import { systemClock } from '../api/clock.js';
import { createLogger, type Logger } from '../api/log.js';
import { FIREWALL_BACKENDS, type FirewallBackend } from '../api/standalone.js';
import { createFirewall } from '../controller/firewall/firewall.js';
import type { Firewall } from '../controller/firewall/types.js';
import type { SecurityGroupTarget } from '../controller/aws/group-target.js';
import { awsTargetProblem, StandaloneDaemon, StartError } from '../controller/standalone/daemon.js';
import { checkInterfaces, checkPrivileges, PreflightError } from '../controller/standalone/preflight.js';
import { pcapAddon } from '../sniffer/capture/addon.js';
import { startSniffer } from '../sniffer/capture/sniffer.js';
import { CliError } from './errors.js';
import type { StandaloneCliOptions } from './standalone.js';
import { endStartup } from './startup.js';

function parseBackend(value: string | undefined): FirewallBackend | undefined {
  if (value === undefined) return undefined;
  if (!(FIREWALL_BACKENDS as readonly string[]).includes(value))
    throw new CliError(`unknown backend "${value}": want one of ${FIREWALL_BACKENDS.join(', ')}`);
  return value as FirewallBackend;
}

/** Load the config and apply the command line's overrides. Throws CliError (exit 2). */
function load(opts: StandaloneCliOptions): LoadedConfig {
  if (opts.config === undefined) throw new CliError('--config FILE is required');
  let config: LoadedConfig;
  try {
    config = loadConfig(opts.config, opts.fwknopdConf === undefined ? {} : { fwknopdConf: opts.fwknopdConf });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
  const backend = parseBackend(opts.backend);
  if (backend) config.settings.backend = backend;
  if (opts.interface?.length) config.settings.interfaces = opts.interface;
  if (opts.maxGrants !== undefined) config.settings.maxGrants = opts.maxGrants;
  return config;
}

function firewallFor(backend: FirewallBackend, logger: Logger): Firewall {
  return createFirewall({ backend, logger, clock: systemClock });
}

/**
 * The security-group target when --cluster-id is given (the AWS SDK is loaded only then). Throws
 * CliError (exit 2) when a policy has awsSecurityGroups targets and no --cluster-id was given.
 */
async function securityGroupsFor(
  config: LoadedConfig,
  opts: StandaloneCliOptions,
  logger: Logger,
  registry?: Registry,
): Promise<{ target: SecurityGroupTarget; close: () => void } | undefined> {
  const missing = awsTargetProblem(config, opts.clusterId !== undefined);
  if (missing) throw new CliError(missing);
  if (opts.clusterId === undefined) {
    if (opts.awsEndpoint !== undefined) throw new CliError('--aws-endpoint needs --cluster-id');
    return undefined;
  }
  const { clusterIdProblem } = await import('../controller/aws/tags.js');
  const { Ec2Clients, endpointProblem, regionProblem } = await import('../controller/aws/client.js');
  const { SecurityGroupTarget } = await import('../controller/aws/group-target.js');
  const idProblem = clusterIdProblem(opts.clusterId);
  const problem =
    (idProblem && `--cluster-id: ${idProblem}`) ??
    (opts.awsEndpoint !== undefined ? endpointProblem(opts.awsEndpoint) : null) ??
    config.policies
      .flatMap((p) =>
        (p.spec.grant.targets?.awsSecurityGroups ?? []).map((g) => {
          const bad = regionProblem(g.region);
          return bad && `policy "${p.metadata.name}": ${bad}`;
        }),
      )
      .find((x) => x);
  if (problem) throw new CliError(problem);
  const clients = new Ec2Clients(opts.awsEndpoint !== undefined ? { endpoint: opts.awsEndpoint } : {});
  return {
    target: new SecurityGroupTarget({
      clusterId: opts.clusterId,
      clients,
      clock: systemClock,
      logger,
      ...(registry
        ? { metrics: (await import('../controller/aws/metrics.js')).createAwsMetrics(registry) }
        : {}),
    }),
    close: () => clients.destroy(),
  };
}

async function cleanup(opts: StandaloneCliOptions, logger: Logger): Promise<void> {
  checkPrivileges();
  const firewall = firewallFor(parseBackend(opts.backend) ?? 'nftables', logger);
  await firewall.cleanup();
  await firewall.close();
  logger.info({ event: 'cleanup' }, 'removed every firewall object knockgate installed');
}

export async function run(opts: StandaloneCliOptions): Promise<void> {
  const logger = createLogger({ level: opts.logLevel, name: 'knockgate-standalone' });
  try {
    if (opts.cleanup) return await cleanup(opts, logger);
    const config = load(opts);
    for (const w of config.warnings) logger.warn({ event: 'config-warning' }, w);
    checkPrivileges();
    checkInterfaces(config.settings.interfaces);

    // prom-client and its registry (~4 MiB resident) only when /metrics is served.
    const metricsModule =
      opts.metricsAddress === undefined ? undefined : await import('../controller/standalone/metrics.js');
    const metrics = metricsModule?.createStandaloneMetrics();
    const aws = await securityGroupsFor(config, opts, logger, metrics?.registry);
    const firewall = firewallFor(config.settings.backend, logger);
    const daemon = new StandaloneDaemon({
      ...(aws ? { securityGroups: aws.target } : {}),
      config,
      stateDir: opts.stateDir,
      firewall,
      startSniffer,
      clock: systemClock,
      logger,
      ...(metrics ? { metrics } : {}),
      ...(opts.bufferSize !== undefined ? { bufferBytes: opts.bufferSize } : {}),
    });
    // The signal handlers are in place before the daemon can log "started": a SIGHUP or SIGTERM
    // sent on that line must reach them, not Node's default (which ends the process). What they
    // do waits until the start has finished.
    let startFinished!: () => void;
    const started = new Promise<void>((resolve) => (startFinished = resolve));
    const stopped = untilStopped(daemon, opts, logger, started);
    try {
      await daemon.start();
    } catch (err) {
      // Leave no rule behind a daemon that never ran. The daemon closed its firewall on the way
      // out (a closed one refuses every operation), so a fresh one removes what was installed.
      const cleaner = firewallFor(config.settings.backend, logger);
      await cleaner
        .cleanup()
        .catch((e: Error) =>
          logger.error({ event: 'cleanup-error' }, `cleanup after a failed start: ${e.message}`),
        );
      await cleaner.close().catch(() => undefined);
      aws?.close();
      throw err;
    }
    const metricsServer =
      metricsModule && metrics && opts.metricsAddress !== undefined
        ? await metricsModule.serveMetrics(metrics, opts.metricsAddress)
        : undefined;
    // Start-up is over: TurboFan on again (cmd/startup.ts), and what loading left behind returned
    // now rather than whenever V8's memory reducer gets to it (14-40 s later, ~8 MiB of young
    // generation and free malloc pages; native/mem_trim.cc). Once, ~40 ms on this thread.
    startFinished();
    endStartup();
    pcapAddon().releaseMemory();
    await stopped;
    metricsServer?.close();
    aws?.close();
  } catch (err) {
    if (err instanceof PreflightError || err instanceof StartError) throw new CliError(err.message, 1);
    throw err;
  }
}

/**
 * Serve until SIGTERM/SIGINT; SIGHUP reloads the config (a broken one is refused, the old one stays).
 * Signals that arrive before `started` are acted on once it settles (never, when the start fails:
 * the process then ends through the start's error).
 */
function untilStopped(
  daemon: StandaloneDaemon,
  opts: StandaloneCliOptions,
  logger: Logger,
  started: Promise<void>,
): Promise<void> {
  return new Promise((resolve) => {
    let reloading = started;
    const onHup = () => {
      reloading = reloading.then(async () => {
        try {
          await daemon.reload(load(opts));
        } catch (err) {
          logger.error(
            { event: 'reload-refused' },
            `reload refused, keeping the running config: ${(err as Error).message}`,
          );
        }
      });
    };
    const onStop = (signal: string) => {
      logger.info({ event: 'stopping', signal }, `${signal}: stopping (open grants expire on their own)`);
      process.off('SIGHUP', onHup);
      void reloading.then(() => daemon.stop()).then(resolve);
    };
    process.on('SIGHUP', onHup);
    process.once('SIGTERM', () => onStop('SIGTERM'));
    process.once('SIGINT', () => onStop('SIGINT'));
  });
}
