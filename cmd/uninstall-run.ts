// What `knockgate uninstall` runs (cmd/uninstall.ts registers the options): flags checked, the
// uninstall (controller/uninstall/uninstall.ts), its summary on stdout, one line on failure.

import { systemClock } from '../api/clock.js';
import { createLogger } from '../api/log.js';
import { KubeApiError } from '../controller/kube/errors.js';
import { formatSummary, uninstall, UninstallIncompleteError } from '../controller/uninstall/uninstall.js';
import { CliError } from './errors.js';
import { kubeConfigFromFlags, releaseNamespace } from './kube-options.js';
import type { UninstallCliOptions } from './uninstall.js';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** What a label selector may hold (the API server checks the grammar; this keeps junk out of URLs). */
const SELECTOR = /^[A-Za-z0-9_.\-/=!,() ]*$/;

export async function run(opts: UninstallCliOptions): Promise<void> {
  const namespace = releaseNamespace(opts.namespace, { required: true })!;
  for (const n of opts.node)
    if (n.length > 253 || !DNS1123_SUBDOMAIN.test(n))
      throw new CliError(`--node: "${n}" is not a valid node name`);
  if (opts.nodeSelector !== undefined && !SELECTOR.test(opts.nodeSelector))
    throw new CliError(`--node-selector: "${opts.nodeSelector}" is not a label selector`);
  const kubeConfig = kubeConfigFromFlags(opts);
  const logger = createLogger({ level: opts.logLevel, name: 'knockgate-uninstall' });
  // The clock's timers are unref'd: between two rounds nothing else would keep the process alive.
  const keepAlive = setInterval(() => undefined, 2 ** 30);
  try {
    const summary = await uninstall({
      kubeConfig,
      namespace,
      ...(opts.nodeSelector !== undefined ? { nodeSelector: opts.nodeSelector } : {}),
      nodes: opts.node,
      timeoutMs: opts.timeout * 1000,
      clock: systemClock,
      logger,
    });
    process.stdout.write(formatSummary(summary, namespace));
  } catch (err) {
    if (err instanceof UninstallIncompleteError || err instanceof KubeApiError)
      throw new CliError(err.message, 1);
    throw err;
  } finally {
    clearInterval(keepAlive);
  }
}
