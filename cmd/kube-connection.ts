// The sniffer's Kubernetes connection from its flags (--kubeconfig, --context, --request-timeout),
// loaded by knockgate's own kubeconfig loader (controller/kube/kubeconfig.ts: the sniffer does not
// load @kubernetes/client-node, for its memory); a bad file, context or user is one CliError line.

import type { KubeConnection } from '../controller/kube/connection.js';
import { KubeConfigError, loadKubeConnection } from '../controller/kube/kubeconfig.js';
import { CliError } from './errors.js';
import { kubeLoadOptions, type KubeFlags } from './kube-flags.js';

export async function kubeConnectionFromFlags(opts: KubeFlags): Promise<KubeConnection> {
  try {
    return await loadKubeConnection(kubeLoadOptions(opts));
  } catch (err) {
    if (err instanceof KubeConfigError) throw new CliError(err.message);
    throw err;
  }
}
