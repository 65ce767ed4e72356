// The Kubernetes connection flags the cluster roles share (--kubeconfig, --context), loaded into a
// KubeConfig; a bad file or context is one CliError line.

import type { KubeConfig } from '@kubernetes/client-node';
import { KubeConfigError, loadKubeConfig } from '../controller/kube/client.js';
import { CliError } from './errors.js';

export function kubeConfigFromFlags(opts: {
  kubeconfig?: string;
  context?: string;
  /** --request-timeout, seconds. */
  requestTimeout?: number;
}): KubeConfig {
  try {
    return loadKubeConfig({
      ...(opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : {}),
      ...(opts.context !== undefined ? { context: opts.context } : {}),
      ...(opts.requestTimeout !== undefined ? { requestTimeoutMs: opts.requestTimeout * 1000 } : {}),
    });
  } catch (err) {
    if (err instanceof KubeConfigError) throw new CliError(err.message);
    throw err;
  }
}
