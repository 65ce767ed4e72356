// OpenAPI v3 documents (/openapi/v3 and /openapi/v3/<api|apis/group>/<version>), shaped for what
// kubectl reads from them: the PATCH operation of each kind with its x-kubernetes-group-version-kind
// and the fieldValidation parameter (so `kubectl apply` leaves validation to the server), the
// content types a patch accepts (no strategic merge for custom resources, so kubectl sends a merge
// patch), and the CRD schemas for `kubectl explain`.

import { createHash } from 'node:crypto';
import type { ResourceType } from './resources.js';

const gvPath = (group: string, version: string) => (group ? `apis/${group}/${version}` : `api/${version}`);

function schemaName(t: ResourceType): string {
  const reversed = (t.group || 'core').split('.').reverse().join('.');
  return `${reversed}.${t.version}.${t.kind}`;
}

export function gvDocument(group: string, version: string, types: ResourceType[]) {
  const selected = types.filter((t) => t.group === group && t.version === version);
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  for (const t of selected) {
    const gvk = [{ group, version, kind: t.kind }];
    const ref = { $ref: `#/components/schemas/${schemaName(t)}` };
    const response = { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } };
    const param = (name: string, where = 'query') => ({
      name,
      in: where,
      schema: { type: 'string', uniqueItems: true },
    });
    const writeParams = [param('dryRun'), param('fieldManager'), param('fieldValidation')];
    const base = `/${gvPath(group, version)}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}`;
    // No apply-patch+yaml: the emulator does not implement server-side apply (managedFields).
    const patchTypes = ['application/json-patch+json', 'application/merge-patch+json'];
    if (!t.custom) patchTypes.push('application/strategic-merge-patch+json');
    paths[`${base}/{name}`] = {
      get: {
        operationId: `read${t.kind}`,
        responses: response,
        'x-kubernetes-action': 'get',
        'x-kubernetes-group-version-kind': gvk[0],
      },
      put: {
        operationId: `replace${t.kind}`,
        parameters: writeParams,
        requestBody: { content: { '*/*': { schema: ref } } },
        responses: response,
        'x-kubernetes-action': 'put',
        'x-kubernetes-group-version-kind': gvk[0],
      },
      patch: {
        operationId: `patch${t.kind}`,
        parameters: [...writeParams, param('force')],
        requestBody: {
          content: Object.fromEntries(patchTypes.map((c) => [c, { schema: { type: 'object' } }])),
        },
        responses: response,
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': gvk[0],
      },
      delete: {
        operationId: `delete${t.kind}`,
        responses: response,
        'x-kubernetes-action': 'delete',
        'x-kubernetes-group-version-kind': gvk[0],
      },
      parameters: [
        { name: 'name', in: 'path', required: true, schema: { type: 'string', uniqueItems: true } },
      ],
    };
    paths[base] = {
      post: {
        operationId: `create${t.kind}`,
        parameters: writeParams,
        requestBody: { content: { '*/*': { schema: ref } } },
        responses: response,
        'x-kubernetes-action': 'post',
        'x-kubernetes-group-version-kind': gvk[0],
      },
      get: {
        operationId: `list${t.kind}`,
        responses: { '200': { description: 'OK' } },
        'x-kubernetes-action': 'list',
        'x-kubernetes-group-version-kind': gvk[0],
      },
    };
    schemas[schemaName(t)] = {
      ...(t.schema ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }),
      'x-kubernetes-group-version-kind': gvk,
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.32.0' },
    paths,
    components: { schemas },
  };
}

/** The /openapi/v3 index: one entry per group-version, with a hash that changes with its content. */
export function index(types: ResourceType[]) {
  const gvs = new Map<string, { group: string; version: string }>();
  for (const t of types) gvs.set(gvPath(t.group, t.version), { group: t.group, version: t.version });
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const [path, { group, version }] of gvs) {
    const hash = createHash('sha512')
      .update(JSON.stringify(gvDocument(group, version, types)))
      .digest('hex')
      .slice(0, 64)
      .toUpperCase();
    paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hash}` };
  }
  return { paths };
}
