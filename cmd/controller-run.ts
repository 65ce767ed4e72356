// What `knockgate controller` runs: config, identity, wiring and signals. Loaded only when the
// command runs (cmd/controller.ts registers the options), so other commands never load the
// Kubernetes client.

import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { systemClock } from '../api/clock.js';
import { ConfigError } from '../api/config/errors.js';
import { createLogger } from '../api/log.js';
import { DNS1123_LABEL, DNS1123_SUBDOMAIN } from '../api/validate-fields.js';
import { kubeConfigFromFlags } from './kube-options.js';
import {
  defaultControllerConfig,
  loadControllerConfig,
  type ControllerConfig,
} from '../controller/reconciler/config.js';
import { Ec2Clients, endpointProblem, regionProblem } from '../controller/aws/client.js';
import type { AwsSettings } from '../controller/aws/sg-reconciler.js';
import { clusterIdProblem } from '../controller/aws/tags.js';
import { ControllerManager } from '../controller/reconciler/manager.js';
import { createControllerMetrics } from '../controller/reconciler/metrics.js';
import { MetricsAddressError, serveMetrics } from '../controller/standalone/metrics.js';
import { CliError } from './errors.js';
import type { ControllerCliOptions } from './controller.js';

function load(opts: ControllerCliOptions): ControllerConfig {
  let config: ControllerConfig;
  try {
    config = opts.config === undefined ? defaultControllerConfig() : loadControllerConfig(opts.config);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
  // The release namespace (the pod's own, by the downward API) holds the Lease and the Events
  // unless the config file names others.
  const namespace = opts.namespace ?? (process.env.POD_NAMESPACE || undefined);
  if (namespace !== undefined) {
    if (!DNS1123_LABEL.test(namespace) || namespace.length > 63)
      throw new CliError(`--namespace: "${namespace}" is not a namespace name`);
    const defaults = defaultControllerConfig();
    if (config.leaderElection.namespace === defaults.leaderElection.namespace)
      config.leaderElection.namespace = namespace;
    if (config.eventsNamespace === defaults.eventsNamespace) config.eventsNamespace = namespace;
  }
  return config;
}

/** The AWS settings of the flags, or undefined without --cluster-id and --aws-region. */
function awsSettings(opts: ControllerCliOptions): AwsSettings | undefined {
  const regions = [...new Set(opts.awsRegion ?? [])];
  if (opts.clusterId === undefined && regions.length === 0) {
    if (opts.awsEndpoint !== undefined)
      throw new CliError('--aws-endpoint: needs --cluster-id and --aws-region');
    return undefined;
  }
  if (opts.clusterId === undefined)
    throw new CliError(
      '--cluster-id is required with --aws-region (the tag of the rules this installation owns)',
    );
  if (regions.length === 0) throw new CliError('--cluster-id: name the regions to act in with --aws-region');
  const problem =
    clusterIdProblem(opts.clusterId) ??
    regions.map(regionProblem).find((p) => p !== null) ??
    (opts.awsEndpoint !== undefined ? endpointProblem(opts.awsEndpoint) : null);
  if (problem) throw new CliError(problem);
  const seconds = (flag: string, text: string, max: number) => {
    if (!/^\d{1,5}$/.test(text) || Number(text) > max)
      throw new CliError(`${flag}: want 0-${max}, got "${text}"`);
    return Number(text) * 1000;
  };
  return {
    clusterId: opts.clusterId,
    regions,
    clients: new Ec2Clients({ endpoint: opts.awsEndpoint }),
    graceMs: seconds('--aws-grace-seconds', opts.awsGraceSeconds, 3600),
    sweepIntervalMs: Math.max(1000, seconds('--aws-sweep-seconds', opts.awsSweepSeconds, 86_400)),
  };
}

export async function run(opts: ControllerCliOptions): Promise<void> {
  const config = load(opts);
  const aws = awsSettings(opts);
  const identity = opts.identity ?? (process.env.POD_NAME || hostname());
  if (identity.length > 253 || !DNS1123_SUBDOMAIN.test(identity.toLowerCase()))
    throw new CliError(`--identity: "${identity}" is not a usable holder identity`);
  const kubeConfig = kubeConfigFromFlags(opts);
  const logger = createLogger({ level: opts.logLevel, name: 'knockgate-controller' });
  const metrics = createControllerMetrics();
  let metricsServer: Server | undefined;
  // eslint-disable-next-line prefer-const -- the server starts first (probes answer 503 meanwhile)
  let manager: ControllerManager | undefined;
  try {
    metricsServer =
      opts.metricsAddress === undefined
        ? undefined
        : await serveMetrics(metrics, opts.metricsAddress, {
            notReady: () => (manager ? manager.notReady() : 'starting'),
            readyNote: () => manager?.readyNote(),
          });
  } catch (err) {
    if (err instanceof MetricsAddressError) throw new CliError(err.message);
    throw new CliError(`--metrics-address ${opts.metricsAddress}: ${(err as Error).message}`, 1);
  }
  manager = new ControllerManager({
    kubeConfig,
    config,
    identity,
    clock: systemClock,
    logger,
    metrics,
    aws,
  });
  manager.start();
  logger.info(
    {
      event: 'started',
      identity,
      lease: `${config.leaderElection.namespace}/${config.leaderElection.leaseName}`,
      ...(aws ? { clusterId: aws.clusterId, awsRegions: aws.regions } : {}),
    },
    `controller ${identity} started; campaigning for the lease`,
  );
  // The clock's timers are unref'd (so that short-lived commands end when their work does). With
  // the API unreachable every connection is gone and only those timers (retries) are left: without
  // a handle of its own the process would exit, status 0, in the middle of a retry. Run until told.
  const keepAlive = setInterval(() => undefined, 2 ** 30);
  await new Promise<void>((resolve) => {
    const onStop = (signal: string) => {
      clearInterval(keepAlive);
      logger.info({ event: 'stopping', signal }, `${signal}: releasing the lease and stopping`);
      metricsServer?.close();
      void manager
        .stop({ release: true })
        .then(() => aws?.clients.destroy())
        .then(resolve);
    };
    process.once('SIGTERM', () => onStop('SIGTERM'));
    process.once('SIGINT', () => onStop('SIGINT'));
  });
}
