// knockgate sniffer: one node's sniffer on Kubernetes (a DaemonSet on the host network with
// NET_RAW). Wiring and signals only: the role is controller/sniffer/role.ts.
//
// Exit status: 0 after SIGTERM/SIGINT; 2 for bad input (options, kubeconfig); 1 when it cannot run
// here (capability, interface, the API never answered, capture failed). Every failure is one line.

import type { Command } from 'commander';
import { systemClock } from '../api/clock.js';
import { createLogger, type Logger } from '../api/log.js';
import { kubeConfigFromFlags } from './kube-options.js';
import { SNIFFER_BOUNDS, SNIFFER_DEFAULTS } from '../controller/sniffer/limits.js';
import { createSnifferMetrics } from '../controller/sniffer/metrics.js';
import { checkCaptureCapability, SnifferPreflightError } from '../controller/sniffer/preflight.js';
import { SnifferRole, SnifferStartError } from '../controller/sniffer/role.js';
import { MetricsAddressError, serveMetrics } from '../controller/standalone/metrics.js';
import { checkInterfaces, PreflightError } from '../controller/standalone/preflight.js';
import { CAPTURE_BUFFER } from '../sniffer/capture/capture.js';
import { startSniffer } from '../sniffer/capture/sniffer.js';
import { CliError } from './errors.js';
import { intOption, logLevel } from './options.js';

interface SnifferCliOptions {
  kubeconfig?: string;
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

async function run(opts: SnifferCliOptions): Promise<void> {
  const { namespace, node } = identity(opts);
  const kubeConfig = kubeConfigFromFlags(opts);
  const logger = createLogger({ level: opts.logLevel, name: 'knockgate-sniffer' });
  try {
    checkCaptureCapability();
    if (opts.interface?.length) checkInterfaces(opts.interface);
    const metrics = createSnifferMetrics();
    const metricsServer =
      opts.metricsAddress === undefined ? undefined : await serveMetrics(metrics, opts.metricsAddress);
    const role = new SnifferRole({
      kubeConfig,
      namespace,
      node,
      clock: systemClock,
      logger,
      metrics,
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

export function register(program: Command): void {
  program
    .command('sniffer')
    .description('the Kubernetes sniffer role: capture knocks and SPA packets, write AccessGrants')
    .option(
      '--kubeconfig <file>',
      'kubeconfig file (default: $KUBECONFIG, else the in-cluster service account)',
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
    .action((opts: SnifferCliOptions) => run(opts));
}
