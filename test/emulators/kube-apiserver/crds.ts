// Registering CustomResourceDefinitions from YAML files the way `kubectl apply -f crds/` would, for the
// emulator's --crds option and for tests that need the CRDs before a client starts.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeApiServer } from './server.js';
import type { KubeObject } from './storage.js';

/** Every CustomResourceDefinition document of the .yaml/.yml files in `dir`, in file-name order. */
export function readCrdDirectory(dir: string): KubeObject[] {
  const out: KubeObject[] = [];
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${join(dir, file)}: ${doc.errors[0].message.split('\n')[0]}`);
      const crd = doc.toJS() as KubeObject | null;
      if (!crd) continue;
      if (crd.kind !== 'CustomResourceDefinition')
        throw new Error(`${join(dir, file)}: kind ${String(crd.kind)}, want CustomResourceDefinition`);
      out.push(crd);
    }
  }
  return out;
}

/** Create (or replace) the CRDs of `dir` in `server`; returns their names. */
export function loadCrdDirectory(server: KubeApiServer, dir: string): string[] {
  const crdType = server.api.type('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!;
  const names: string[] = [];
  for (const crd of readCrdDirectory(dir)) {
    const name = crd.metadata.name;
    const existing = server.storage.get('apiextensions.k8s.io/customresourcedefinitions', undefined, name);
    const opts = { fieldValidation: 'Strict' as const, dryRun: false };
    if (existing) {
      crd.metadata.resourceVersion = existing.metadata.resourceVersion;
      server.api.update(crdType, undefined, name, crd, undefined, opts);
    } else server.api.create(crdType, undefined, crd, opts);
    names.push(name);
  }
  return names;
}
