// Kubernetes' structural-schema rules for CRD schemas (apiextensions.k8s.io/v1 refuses a CRD whose
// schema breaks them), used by the emulator when a CRD is created and by the CRD lint test.
// https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema

import type { Schema } from './schema.js';

const JUNCTORS = ['allOf', 'anyOf', 'oneOf', 'not'] as const;
const SCALAR_TYPES = ['string', 'integer', 'number', 'boolean'];
const RULE_REASONS = [
  'FieldValueInvalid',
  'FieldValueForbidden',
  'FieldValueRequired',
  'FieldValueDuplicate',
];
const ALLOWED_TYPES = ['object', 'array', 'string', 'integer', 'number', 'boolean'];

/** Problems with `schema` (the root openAPIV3Schema), one line each with the path; [] when structural. */
export function structuralProblems(schema: Schema): string[] {
  const problems: string[] = [];
  if (schema.type !== 'object')
    problems.push(
      `openAPIV3Schema.type: Invalid value: "${String(schema.type)}": must be object at the root`,
    );
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
  extensionProblems(s, path, problems);
  if (inMetadata && s.default !== undefined)
    problems.push(`${path}.default: Forbidden: must not be set inside metadata`);
  for (const [key, sub] of Object.entries(s.properties ?? {}))
    visit(sub, `${path}.properties[${key}]`, false, inMetadata || (isRoot && key === 'metadata'), problems);
  if (typeof s.additionalProperties === 'object')
    visit(s.additionalProperties, `${path}.additionalProperties`, false, inMetadata, problems);
  if (s.items) visit(s.items, `${path}.items`, false, inMetadata, problems);
}

/** Placement of the x-kubernetes-* extensions and the shape of x-kubernetes-validations rules. */
function extensionProblems(s: Schema, path: string, problems: string[]): void {
  const listType = s['x-kubernetes-list-type'];
  const mapKeys = s['x-kubernetes-list-map-keys'];
  if (listType !== undefined) {
    if (s.type !== 'array')
      problems.push(
        `${path}.x-kubernetes-list-type: Invalid value: "${listType}": must only be used on type array`,
      );
    if (!['atomic', 'set', 'map'].includes(listType))
      problems.push(
        `${path}.x-kubernetes-list-type: Unsupported value: "${listType}": supported values: "atomic", "map", "set"`,
      );
    if (listType === 'set' && s.items && !SCALAR_TYPES.includes(s.items.type ?? ''))
      problems.push(
        `${path}.items.type: Invalid value: "${String(s.items.type)}": must be a scalar type for x-kubernetes-list-type=set`,
      );
  }
  if (mapKeys !== undefined && listType !== 'map')
    problems.push(
      `${path}.x-kubernetes-list-map-keys: Forbidden: must only be used with x-kubernetes-list-type=map`,
    );
  if (listType === 'map') {
    if (!Array.isArray(mapKeys) || mapKeys.length === 0)
      problems.push(
        `${path}.x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map`,
      );
    else if (s.items?.type !== 'object')
      problems.push(
        `${path}.items.type: Invalid value: "${String(s.items?.type)}": must be object for x-kubernetes-list-type=map`,
      );
    else
      for (const key of mapKeys) {
        const keySchema = s.items.properties?.[key];
        if (!keySchema)
          problems.push(
            `${path}.x-kubernetes-list-map-keys: Invalid value: "${key}": entries must all be names of item properties`,
          );
        else if (!SCALAR_TYPES.includes(keySchema.type ?? ''))
          problems.push(
            `${path}.items.properties[${key}].type: Invalid value: must be a scalar type for a map key`,
          );
        else if (!(s.items.required ?? []).includes(key) && keySchema.default === undefined)
          problems.push(
            `${path}.items.properties[${key}]: Required value: a map key must be required or have a default`,
          );
      }
  }
  const mapType = s['x-kubernetes-map-type'];
  if (mapType !== undefined) {
    if (s.type !== 'object')
      problems.push(
        `${path}.x-kubernetes-map-type: Invalid value: "${String(mapType)}": must only be used on type object`,
      );
    if (mapType !== 'granular' && mapType !== 'atomic')
      problems.push(
        `${path}.x-kubernetes-map-type: Unsupported value: "${String(mapType)}": supported values: "atomic", "granular"`,
      );
  }
  if (s['x-kubernetes-embedded-resource'] === true && s.type !== 'object')
    problems.push(
      `${path}.type: Invalid value: "${String(s.type)}": must be object if x-kubernetes-embedded-resource is true`,
    );
  if (s['x-kubernetes-int-or-string'] === true && s.type !== undefined)
    problems.push(
      `${path}.type: Invalid value: "${s.type}": must be empty if x-kubernetes-int-or-string is true`,
    );
  if (s['x-kubernetes-preserve-unknown-fields'] === false)
    problems.push(
      `${path}.x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined`,
    );
  const rules = s['x-kubernetes-validations'];
  if (rules !== undefined) {
    if (!Array.isArray(rules)) {
      problems.push(`${path}.x-kubernetes-validations: Invalid value: must be a list`);
      return;
    }
    rules.forEach((r, i) => {
      const where = `${path}.x-kubernetes-validations[${i}]`;
      if (typeof r?.rule !== 'string' || !r.rule.trim())
        problems.push(`${where}.rule: Required value: rule is not specified`);
      if (
        r?.message !== undefined &&
        (typeof r.message !== 'string' || /[\r\n]/.test(r.message) || !r.message.trim())
      )
        problems.push(
          `${where}.message: Invalid value: message must be non-empty and contain no line breaks`,
        );
      if (r?.reason !== undefined && !RULE_REASONS.includes(r.reason))
        problems.push(`${where}.reason: Unsupported value: "${String(r.reason)}"`);
      if (r?.fieldPath !== undefined && !fieldPathResolves(s, String(r.fieldPath)))
        problems.push(
          `${where}.fieldPath: Invalid value: "${String(r.fieldPath)}": fieldPath must be a valid path to a field of the schema`,
        );
    });
  }
}

/** A rule's fieldPath (".a.b", ".a['b']", ".list[0]") names a field of the schema it is attached to. */
function fieldPathResolves(s: Schema, fieldPath: string): boolean {
  if (!fieldPath.startsWith('.')) return false;
  let cur: Schema | undefined = s;
  for (const m of fieldPath.matchAll(/\.([A-Za-z_][A-Za-z0-9_-]*)|\['([^']+)'\]|\[(\d+)\]/g)) {
    if (!cur) return false;
    if (m[3] !== undefined) cur = cur.type === 'array' ? cur.items : undefined;
    else {
      const key = m[1] ?? m[2];
      cur =
        cur.properties?.[key] ??
        (typeof cur.additionalProperties === 'object' ? cur.additionalProperties : undefined);
    }
  }
  return (
    cur !== undefined && fieldPath.replace(/\.([A-Za-z_][A-Za-z0-9_-]*)|\['([^']+)'\]|\[(\d+)\]/g, '') === ''
  );
}
