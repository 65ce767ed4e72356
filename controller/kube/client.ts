// Where the Kubernetes stores get their API client: a kubeconfig file (--kubeconfig, or $KUBECONFIG)
// or, inside a pod, the service account's token and CA. Every problem is one line naming the file.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { reuseConnections } from './keep-alive.js';
import { KubeConfigError } from './kubeconfig.js';
import { applyRequestTimeout } from './request.js';

// One error class for both loaders (the sniffer's is kubeconfig.ts).
export { KubeConfigError };

export interface KubeConfigOptions {
  /** A kubeconfig file. Default: $KUBECONFIG (its first file), else the in-cluster service account. */
  kubeconfig?: string;
  /** A context of that file other than its current-context. */
  context?: string;
  /** Environment to read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Root under which the service account files live (tests); default "" (= /var/run/secrets/...). */
  serviceAccountRoot?: string;
  /** Deadline of every API request but watches (request.ts); default KUBE_STORE_DEFAULTS.requestTimeoutMs. */
  requestTimeoutMs?: number;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The KubeConfig of `opts`, every request of its API clients bounded by the request timeout. */
export function loadKubeConfig(opts: KubeConfigOptions = {}): KubeConfig {
  return applyRequestTimeout(readKubeConfig(opts), opts.requestTimeoutMs);
}

function readKubeConfig(opts: KubeConfigOptions): KubeConfig {
  const env = opts.env ?? process.env;
  const file = opts.kubeconfig ?? (env.KUBECONFIG ? env.KUBECONFIG.split(':')[0] : undefined);
  const kc = reuseConnections(new KubeConfig());
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${file}: cannot read: ${(err as Error).message}`);
    }
    try {
      kc.loadFromString(text);
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${file}: ${firstLine(err)}`);
    }
    if (opts.context) {
      if (!kc.getContexts().some((c) => c.name === opts.context))
        throw new KubeConfigError(`kubeconfig ${file}: no context "${opts.context}"`);
      kc.setCurrentContext(opts.context);
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeConfigError(`kubeconfig ${file}: the current context names no cluster`);
    if (!kc.getCurrentUser())
      throw new KubeConfigError(`kubeconfig ${file}: the current context names no user`);
    return kc;
  }
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT)
    throw new KubeConfigError(
      'no Kubernetes API: pass --kubeconfig (or set KUBECONFIG), or run in a pod (KUBERNETES_SERVICE_HOST is not set)',
    );
  const root = opts.serviceAccountRoot ?? '';
  for (const f of ['token', 'ca.crt']) {
    const path = `${root}${join(SERVICE_ACCOUNT_DIR, f)}`;
    if (!existsSync(path))
      throw new KubeConfigError(`in-cluster config: ${path} is missing (no service account token mounted?)`);
  }
  // client-node reads KUBERNETES_SERVICE_HOST/PORT from process.env itself.
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  try {
    process.env.KUBERNETES_SERVICE_HOST = env.KUBERNETES_SERVICE_HOST;
    process.env.KUBERNETES_SERVICE_PORT = env.KUBERNETES_SERVICE_PORT;
    kc.loadFromCluster(root);
  } finally {
    restoreEnv('KUBERNETES_SERVICE_HOST', saved.host);
    restoreEnv('KUBERNETES_SERVICE_PORT', saved.port);
  }
  return kc;
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
