// The Kubernetes connection flags every cluster role takes (--kubeconfig, --context,
// --request-timeout), as the options both kubeconfig loaders read: client-node's
// (controller/kube/client.ts, kube-options.ts) and knockgate's own (controller/kube/kubeconfig.ts,
// kube-connection.ts, for the sniffer). Apart from both so that neither loader's module loads the other.

export interface KubeFlags {
  kubeconfig?: string;
  context?: string;
  /** --request-timeout, seconds. */
  requestTimeout?: number;
}

export function kubeLoadOptions(opts: KubeFlags): {
  kubeconfig?: string;
  context?: string;
  requestTimeoutMs?: number;
} {
  return {
    ...(opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : {}),
    ...(opts.context !== undefined ? { context: opts.context } : {}),
    ...(opts.requestTimeout !== undefined ? { requestTimeoutMs: opts.requestTimeout * 1000 } : {}),
  };
}
