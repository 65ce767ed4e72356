// The Kubernetes connection flags the cluster roles share (--kubeconfig, --context), loaded into a
// KubeConfig; a bad file or context is one CliError line.

import type { KubeConfig } from '@kubernetes/client-node';
import { KubeConfigError, loadKubeConfig } from '../controller/kube/client.js';
import { CliError } from './errors.js';
import { kubeLoadOptions, type KubeFlags } from './kube-flags.js';

export function kubeConfigFromFlags(opts: KubeFlags): KubeConfig {
  try {
    return loadKubeConfig(kubeLoadOptions(opts));
  } catch (err) {
    if (err instanceof KubeConfigError) throw new CliError(err.message);
    throw err;
  }
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** --namespace, else $POD_NAMESPACE (the chart sets it from the downward API); checked. */
export function releaseNamespace(flag: string | undefined, opts: { required: boolean }): string | undefined {
  const namespace = flag ?? process.env.POD_NAMESPACE;
  if (!namespace) {
    if (opts.required) throw new CliError('--namespace NS is required (or set POD_NAMESPACE)');
    return undefined;
  }
  if (namespace.length > 63 || !DNS1123_LABEL.test(namespace))
    throw new CliError(`--namespace: "${namespace}" is not a valid namespace name`);
  return namespace;
}
