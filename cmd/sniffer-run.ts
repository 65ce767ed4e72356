// What `knockgate sniffer` runs: identity, wiring and signals. Loaded only when the command runs
// (cmd/sniffer.ts registers the options), so other commands never load the Kubernetes client. The
// sniffer's client is knockgate's own (controller/kube/connection.ts, kubeconfig.ts), not
// @kubernetes/client-node, for its idle memory.

import { systemClock } from '../api/clock.js';
import { createLogger, type Logger } from '../api/log.js';
import { kubeConnectionFromFlags } from './kube-connection.js';
import { checkCaptureCapability, SnifferPreflightError } from '../controller/sniffer/preflight.js';
import { SnifferRole, SnifferStartError } from '../controller/sniffer/role.js';
import { MetricsAddressError, serveMetrics } from '../controller/metrics-server.js';
import { checkInterfaces, PreflightError } from '../controller/standalone/preflight.js';
import { startSniffer } from '../sniffer/capture/sniffer.js';
import { CliError } from './errors.js';
import type { SnifferCliOptions } from './sniffer.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The release namespace and this node's name, from the flags or the pod's environment. */
function identity(opts: SnifferCliOptions): { namespace: string; node: string } {
  const namespace = opts.namespace ?? process.env.POD_NAMESPACE;
  const node = opts.node ?? process.env.NODE_NAME;
  if (!namespace) throw new CliError('--namespace NS is required (or set POD_NAMESPACE)');
  if (namespace.length > 63 || !DNS1123_LABEL.test(namespace))
    throw new CliError(`--namespace: "${namespace}" is not a valid namespace name`);
  if (!node) throw new CliError('--node NAME is required (or set NODE_NAME, from spec.nodeName)');
  if (node.length > 253 || !DNS1123_SUBDOMAIN.test(node))
    throw new CliError(`--node: "${node}" is not a valid node name`);
  return { namespace, node };
}

export async function run(opts: SnifferCliOptions): Promise<void> {
  const { namespace, node } = identity(opts);
  const kubeConfig = await kubeConnectionFromFlags(opts);
  const logger = createLogger({ level: opts.logLevel, name: 'knockgate-sniffer' });
  try {
    checkCaptureCapability();
    if (opts.interface?.length) checkInterfaces(opts.interface);
    // prom-client, its registry and the HTTP server only when /metrics is served (as standalone).
    const metrics =
      opts.metricsAddress === undefined
        ? undefined
        : (await import('../controller/sniffer/metrics.js')).createSnifferMetrics();
    // eslint-disable-next-line prefer-const -- the server starts before the role exists (probes answer 503 meanwhile)
    let role: SnifferRole | undefined;
    const metricsServer =
      opts.metricsAddress === undefined || metrics === undefined
        ? undefined
        : await serveMetrics(metrics, opts.metricsAddress, {
            notReady: () => (role ? role.notReady() : 'starting'),
          });
    role = new SnifferRole({
      kubeConfig,
      namespace,
      node,
      clock: systemClock,
      logger,
      ...(metrics ? { metrics } : {}),
      startSniffer,
      ...(opts.interface?.length ? { interfaces: opts.interface } : {}),
      ...(opts.bufferSize !== undefined ? { bufferBytes: opts.bufferSize } : {}),
      maxLiveGrantsPerPolicy: opts.maxGrantsPerPolicy,
      grantsPerSecond: opts.grantsPerSecond,
      grantsBurst: opts.grantsBurst,
    });
    try {
      await role.start();
    } catch (err) {
      metricsServer?.close();
      throw err;
    }
    await untilStopped(role, logger);
    metricsServer?.close();
  } catch (err) {
    if (
      err instanceof SnifferPreflightError ||
      err instanceof PreflightError ||
      err instanceof SnifferStartError
    )
      throw new CliError(err.message, 1);
    if (err instanceof MetricsAddressError) throw new CliError(err.message);
    throw err;
  }
}

function untilStopped(role: SnifferRole, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const onStop = (signal: string) => {
      logger.info({ event: 'stopping', signal }, `${signal}: stopping the sniffer`);
      void role.stop().then(resolve);
    };
    process.once('SIGTERM', () => onStop('SIGTERM'));
    process.once('SIGINT', () => onStop('SIGINT'));
  });
}
