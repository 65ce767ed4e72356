// Custom-resource schema handling the way the apiextensions-apiserver does it, in its order:
// prune unknown fields, apply defaults, validate the OpenAPI v3 keywords (ajv, with Kubernetes'
// formats), then evaluate the x-kubernetes-validations CEL rules. Errors come back as field errors
// with Kubernetes' paths ("spec.ports[0]") and messages.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { isIP } from 'node:net';
import type { FieldError } from './status.js';
import { compileRule, type CompiledRule } from './cel.js';

/** The subset of OpenAPI v3 (JSONSchemaProps) a structural CRD schema uses. */
export interface Schema {
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  nullable?: boolean;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  'x-kubernetes-validations'?: { rule: string; message?: string; fieldPath?: string; reason?: string }[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  [other: string]: unknown;
}

type Json = unknown;
type JsonObject = Record<string, Json>;

const isObject = (v: Json): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Go's net.ParseCIDR: an address, a slash and a prefix length that fits the family. */
function isGoCidr(text: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return false;
  const family = isIP(m[1]);
  if (family === 0 || m[1].includes('%')) return false;
  return Number(m[2]) <= (family === 4 ? 32 : 128) && !/^0\d/.test(m[2]);
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false, logger: false, validateFormats: true });
  addFormats(ajv);
  ajv.addFormat('cidr', isGoCidr);
  // Kubernetes parses date-time with strfmt, which is what RFC 3339 (ajv-formats) accepts too.
  return ajv;
}

const ajv = newAjv();

/** A schema prepared for use: its ajv validator and its CEL rules, compiled once per CRD version. */
export class CompiledSchema {
  private readonly validateFn: ValidateFunction;
  private readonly rules = new Map<Schema, CompiledRule[]>();

  /** Throws with one line per problem when the schema or one of its rules does not compile. */
  constructor(readonly schema: Schema) {
    this.validateFn = ajv.compile(stripExtensions(schema) as object);
    const problems: string[] = [];
    walkSchema(schema, '', (node, path) => {
      const rules = node['x-kubernetes-validations'];
      if (!rules) return;
      const compiled: CompiledRule[] = [];
      rules.forEach((rule, i) => {
        try {
          compiled.push(compileRule(rule));
        } catch (err) {
          problems.push(
            `${path}x-kubernetes-validations[${i}].rule: Invalid value: ${JSON.stringify(rule.rule)}: compilation failed: ${(err as Error).message.split('\n')[0]}`,
          );
        }
      });
      this.rules.set(node, compiled);
    });
    if (problems.length) throw new Error(problems.join('; '));
  }

  /**
   * Drop fields the schema does not know and fill in defaults, in place. Returns the paths of the
   * pruned fields (for fieldValidation=Strict/Warn).
   */
  pruneAndDefault(obj: JsonObject): string[] {
    const pruned: string[] = [];
    for (const key of Object.keys(obj)) {
      if (key === 'apiVersion' || key === 'kind' || key === 'metadata') continue;
      const sub = this.schema.properties?.[key];
      if (!sub && !this.schema['x-kubernetes-preserve-unknown-fields']) {
        pruned.push(key);
        delete obj[key];
      } else if (sub) obj[key] = pruneNode(obj[key], sub, key, pruned);
    }
    applyDefaults(obj, this.schema, true);
    return pruned;
  }

  /** Field errors of `obj` (already pruned and defaulted), OpenAPI keywords first, then CEL rules. */
  validate(obj: JsonObject): FieldError[] {
    const errors: FieldError[] = [];
    const body = { ...obj, metadata: metadataForSchema(obj.metadata) };
    if (!this.validateFn(body)) {
      for (const e of this.validateFn.errors ?? []) {
        const fe = toFieldError(e, body, this.schema);
        if (fe && !errors.some((x) => x.field === fe.field && x.detail === fe.detail)) errors.push(fe);
      }
    }
    this.evaluateRules(body, this.schema, '', errors);
    return errors;
  }

  private evaluateRules(value: Json, schema: Schema, path: string, errors: FieldError[]): void {
    if (value === undefined || value === null || !typeMatches(value, schema)) return;
    for (const rule of this.rules.get(schema) ?? []) {
      const failure = rule.evaluate(value, schema);
      if (failure === undefined) continue;
      const field = joinPath(path, rule.fieldPath);
      errors.push({
        field: field || '<nil>',
        reason: rule.reason,
        detail: `Invalid value: "${jsonTypeName(value)}": ${failure}`,
      });
    }
    if (isObject(value)) {
      for (const [key, sub] of Object.entries(value)) {
        const child = schema.properties?.[key];
        if (child) this.evaluateRules(sub, child, path ? `${path}.${key}` : key, errors);
        else if (isObject(schema.additionalProperties))
          this.evaluateRules(sub, schema.additionalProperties, `${path}[${key}]`, errors);
      }
    } else if (Array.isArray(value) && schema.items) {
      listTypeErrors(value, schema, path, errors);
      value.forEach((item, i) => this.evaluateRules(item, schema.items!, `${path}[${i}]`, errors));
    }
  }
}

/**
 * x-kubernetes-list-type set (no repeated item) and map (no two items with the same keys), with the
 * apiserver's Duplicate value errors on the later item.
 */
function listTypeErrors(list: Json[], schema: Schema, path: string, errors: FieldError[]): void {
  const listType = schema['x-kubernetes-list-type'];
  if (listType !== 'set' && listType !== 'map') return;
  const keys = schema['x-kubernetes-list-map-keys'] ?? [];
  const seen = new Set<string>();
  list.forEach((item, i) => {
    const identity =
      listType === 'set'
        ? JSON.stringify(item)
        : JSON.stringify(keys.map((k) => (isObject(item) ? (item[k] ?? null) : null)));
    if (!seen.has(identity)) {
      seen.add(identity);
      return;
    }
    const shown =
      listType === 'set'
        ? JSON.stringify(item)
        : `map[string]interface {}{${keys.map((k) => `"${k}":${JSON.stringify(isObject(item) ? item[k] : null)}`).join(', ')}}`;
    errors.push({
      field: `${path}[${i}]`,
      reason: 'FieldValueDuplicate',
      detail: `Duplicate value: ${shown}`,
    });
  });
}

/** Calls `visit` for every schema node, with a JSON-ish path prefix for messages. */
export function walkSchema(schema: Schema, path: string, visit: (node: Schema, path: string) => void): void {
  visit(schema, path);
  for (const [key, sub] of Object.entries(schema.properties ?? {}))
    walkSchema(sub, `${path}properties[${key}].`, visit);
  if (isObject(schema.additionalProperties))
    walkSchema(schema.additionalProperties as Schema, `${path}additionalProperties.`, visit);
  if (schema.items) walkSchema(schema.items, `${path}items.`, visit);
}

/** ajv sees only standard keywords; `x-kubernetes-*` are walked by this module. */
function stripExtensions(schema: Schema): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key.startsWith('x-kubernetes-') || key === 'default' || key === 'description') continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, Schema>).map(([k, v]) => [k, stripExtensions(v)]),
      );
    } else if ((key === 'items' || key === 'additionalProperties') && isObject(value)) {
      out[key] = stripExtensions(value as Schema);
    } else out[key] = value;
  }
  if (schema['x-kubernetes-int-or-string']) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (schema['x-kubernetes-preserve-unknown-fields'] && !schema.type) delete out.type;
  return out;
}

/** Root-level rules see metadata.name and metadata.generateName only (as the real server does). */
function metadataForSchema(metadata: Json): JsonObject {
  const m = isObject(metadata) ? metadata : {};
  const out: JsonObject = {};
  if (typeof m.name === 'string') out.name = m.name;
  if (typeof m.generateName === 'string') out.generateName = m.generateName;
  return out;
}

function pruneNode(value: Json, schema: Schema, path: string, pruned: string[]): Json {
  if (value === null) return schema.nullable ? null : undefined;
  if (schema['x-kubernetes-preserve-unknown-fields'] && !schema.properties && !schema.items) return value;
  if (isObject(value)) {
    if (schema.properties) {
      for (const key of Object.keys(value)) {
        const sub = schema.properties[key];
        if (!sub) {
          if (!schema['x-kubernetes-preserve-unknown-fields']) {
            pruned.push(`${path}.${key}`);
            delete value[key];
          }
          continue;
        }
        const next = pruneNode(value[key], sub, `${path}.${key}`, pruned);
        if (next === undefined) delete value[key];
        else value[key] = next;
      }
    } else if (isObject(schema.additionalProperties)) {
      for (const key of Object.keys(value)) {
        const next = pruneNode(value[key], schema.additionalProperties, `${path}[${key}]`, pruned);
        if (next === undefined) delete value[key];
        else value[key] = next;
      }
    }
  } else if (Array.isArray(value) && schema.items) {
    return value.map((item, i) => pruneNode(item, schema.items!, `${path}[${i}]`, pruned));
  }
  return value;
}

function applyDefaults(value: Json, schema: Schema, isRoot = false): void {
  if (isObject(value)) {
    for (const [key, sub] of Object.entries(schema.properties ?? {})) {
      if (isRoot && key === 'metadata') continue;
      if (value[key] === undefined && sub.default !== undefined) value[key] = structuredClone(sub.default);
      if (value[key] !== undefined) applyDefaults(value[key], sub);
    }
    if (isObject(schema.additionalProperties))
      for (const v of Object.values(value)) applyDefaults(v, schema.additionalProperties);
  } else if (Array.isArray(value) && schema.items) {
    for (const item of value) applyDefaults(item, schema.items);
  }
}

function typeMatches(value: Json, schema: Schema): boolean {
  switch (schema.type) {
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    default:
      return true;
  }
}

/** The Go-side type name Kubernetes prints in "Invalid value" for a non-scalar: "object", "array"... */
export function jsonTypeName(value: Json): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function joinPath(base: string, fieldPath: string | undefined): string {
  if (!fieldPath) return base;
  const rel = fieldPath.replace(/^\./, '').replace(/\['([^']*)'\]/g, '.$1');
  return base ? `${base}.${rel}` : rel;
}

/** "/spec/ports/0" → "spec.ports[0]"; map keys (additionalProperties) as "[key]". */
function renderPath(pointer: string, root: Schema): string {
  if (!pointer) return '';
  let out = '';
  let schema: Schema | undefined = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (schema?.type === 'array') {
      out += `[${seg}]`;
      schema = schema.items;
    } else if (schema?.properties?.[seg]) {
      out += out ? `.${seg}` : seg;
      schema = schema.properties[seg];
    } else {
      out += `[${seg}]`;
      schema = isObject(schema?.additionalProperties) ? (schema.additionalProperties as Schema) : undefined;
    }
  }
  return out;
}

function valueAt(root: Json, pointer: string): Json {
  let v: Json = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    v = Array.isArray(v) ? v[Number(seg)] : isObject(v) ? v[seg] : undefined;
  }
  return v;
}

const quote = (v: Json) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

function toFieldError(e: ErrorObject, body: JsonObject, root: Schema): FieldError | undefined {
  const path = renderPath(e.instancePath, root);
  const value = valueAt(body, e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const field = path ? `${path}.${String(p.missingProperty)}` : String(p.missingProperty);
      return { field, reason: 'FieldValueRequired', detail: 'Required value' };
    }
    case 'type':
      return {
        field: path,
        reason: 'FieldValueTypeInvalid',
        detail: `Invalid value: "${jsonTypeName(value)}": ${path} in body must be of type ${String(p.type)}: "${jsonTypeName(value)}"`,
      };
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map((v) => quote(v)).join(', ');
      return {
        field: path,
        reason: 'FieldValueNotSupported',
        detail: `Unsupported value: ${quote(value)}: supported values: ${allowed}`,
      };
    }
    case 'pattern':
      return {
        field: path,
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${quote(value)}: ${path} in body should match '${String(p.pattern)}'`,
      };
    case 'format':
      return {
        field: path,
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${quote(value)}: ${path} in body must be of type ${String(p.format)}: ${quote(value)}`,
      };
    case 'minimum':
      return {
        field: path,
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${quote(value)}: ${path} in body should be greater than or equal to ${String(p.limit)}`,
      };
    case 'maximum':
      return {
        field: path,
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${quote(value)}: ${path} in body should be less than or equal to ${String(p.limit)}`,
      };
    case 'maxLength':
      return {
        field: path,
        reason: 'FieldValueTooLong',
        detail: `Too long: may not be more than ${String(p.limit)} bytes`,
      };
    case 'minLength':
      return {
        field: path,
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${quote(value)}: ${path} in body should be at least ${String(p.limit)} chars long`,
      };
    case 'maxItems':
    case 'maxProperties':
      return {
        field: path,
        reason: 'FieldValueTooMany',
        detail: `Too many: ${Array.isArray(value) ? value.length : Object.keys(value as object).length}: must have at most ${String(p.limit)} items`,
      };
    case 'minItems':
      return {
        field: path,
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${Array.isArray(value) ? value.length : 0}: ${path} in body should have at least ${String(p.limit)} items`,
      };
    case 'minProperties':
      return {
        field: path,
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${Object.keys(value as object).length}: ${path} in body should have at least ${String(p.limit)} properties`,
      };
    case 'anyOf':
      // x-kubernetes-int-or-string: the type branch errors already say it.
      return undefined;
    default:
      return {
        field: path,
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${quote(value)}: ${e.message ?? e.keyword}`,
      };
  }
}
