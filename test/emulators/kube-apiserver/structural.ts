// Kubernetes' structural-schema rules for CRD schemas (apiextensions.k8s.io/v1 refuses a CRD whose
// schema breaks them), used by the emulator when a CRD is created and by the CRD lint test.
// https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema

import type { Schema } from './schema.js';

const JUNCTORS = ['allOf', 'anyOf', 'oneOf', 'not'] as const;
const ALLOWED_TYPES = ['object', 'array', 'string', 'integer', 'number', 'boolean'];

/** Problems with `schema` (the root openAPIV3Schema), one line each with the path; [] when structural. */
export function structuralProblems(schema: Schema): string[] {
  const problems: string[] = [];
  visit(schema, 'openAPIV3Schema', true, false, problems);
  return problems;
}

function visit(s: Schema, path: string, isRoot: boolean, inMetadata: boolean, problems: string[]): void {
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  if (!s.type && !preserve && !intOrString)
    problems.push(`${path}.type: Required value: must not be empty for specified object fields`);
  if (s.type && !ALLOWED_TYPES.includes(s.type))
    problems.push(`${path}.type: Unsupported value: "${s.type}"`);
  if (s.properties && s.additionalProperties !== undefined)
    problems.push(
      `${path}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive`,
    );
  if (s.type === 'array' && !s.items)
    problems.push(`${path}.items: Required value: must be specified for type array`);
  if (s.type !== undefined && s.type !== 'array' && s.items)
    problems.push(`${path}.items: Forbidden: only for type array`);
  for (const j of JUNCTORS) {
    if (s[j] !== undefined)
      problems.push(
        `${path}.${j}: Forbidden: knockgate CRDs use no junctors (structural rules restrict them)`,
      );
  }
  if (isRoot) {
    for (const key of ['apiVersion', 'kind'])
      if (s.properties?.[key] && s.properties[key].type !== 'string')
        problems.push(`${path}.properties[${key}].type: Invalid value: must be string`);
    const meta = s.properties?.metadata;
    if (meta) {
      if (meta.type !== 'object')
        problems.push(`${path}.properties[metadata].type: Invalid value: must be object`);
      for (const key of Object.keys(meta.properties ?? {}))
        if (key !== 'name' && key !== 'generateName')
          problems.push(`${path}.properties[metadata].properties[${key}]: Forbidden: must not be specified`);
      for (const key of Object.keys(meta))
        if (!['type', 'properties', 'description'].includes(key))
          problems.push(`${path}.properties[metadata].${key}: Forbidden: must not be specified`);
    }
  }
  if (inMetadata && s.default !== undefined)
    problems.push(`${path}.default: Forbidden: must not be set inside metadata`);
  for (const [key, sub] of Object.entries(s.properties ?? {}))
    visit(sub, `${path}.properties[${key}]`, false, inMetadata || (isRoot && key === 'metadata'), problems);
  if (typeof s.additionalProperties === 'object')
    visit(s.additionalProperties, `${path}.additionalProperties`, false, inMetadata, problems);
  if (s.items) visit(s.items, `${path}.items`, false, inMetadata, problems);
}
