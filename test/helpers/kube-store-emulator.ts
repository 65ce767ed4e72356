// The Kubernetes API emulator in-process with knockgate's CRDs registered, and a client-node
// KubeConfig for it: what the Kubernetes store tests run against.

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { KubeApiServer, type KubeApiServerOptions } from '../emulators/kube-apiserver/server.js';

const CRD_DIR = fileURLToPath(new URL('../../crds/', import.meta.url));

export interface EmulatedCluster {
  server: KubeApiServer;
  /** Authenticated as the server's first user (admin unless `users` says otherwise). */
  kubeConfig: KubeConfig;
  /** A KubeConfig for another user of the server. */
  kubeConfigFor(user: string): KubeConfig;
  stop(): Promise<void>;
}

export async function startEmulatedCluster(opts: KubeApiServerOptions = {}): Promise<EmulatedCluster> {
  const server = new KubeApiServer(opts);
  const crdType = server.api.type('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!;
  for (const file of readdirSync(CRD_DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort())
    for (const doc of parseAllDocuments(readFileSync(CRD_DIR + file, 'utf8'))) {
      const crd = doc.toJS() as unknown;
      if (crd) server.api.create(crdType, undefined, crd, { fieldValidation: 'Strict', dryRun: false });
    }
  await server.start();
  const kubeConfigFor = (user: string) => {
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig(user));
    return kc;
  };
  return {
    server,
    kubeConfig: kubeConfigFor(server.users[0].name),
    kubeConfigFor,
    stop: () => server.stop(),
  };
}
