// The Go types behind the built-in kinds the product writes (Lease, Event, Secret, ConfigMap), so the
// emulator refuses what a real server's decoder and validation refuse: a wrong JSON type or a
// MicroTime without exactly six fractional digits is a 400 "cannot be handled as a Lease" (a
// JavaScript Date.toISOString() has three), unknown fields follow fieldValidation, and the
// validation of leases and events.k8s.io events is a 422 with the real field paths.

import { badRequest, type FieldError } from './status.js';

/** A Go field type: scalars, MicroTime/Time, []byte (base64), or a nested struct/list/map. */
type GoType =
  | 'string'
  | 'int32'
  | 'int64'
  | 'bool'
  | 'MicroTime'
  | 'Time'
  | 'bytes'
  | { struct: string; fields: Record<string, GoType> }
  | { list: GoType }
  | { map: GoType };

const str = 'string' as const;
const objectReference: GoType = {
  struct: 'ObjectReference',
  fields: {
    kind: str,
    namespace: str,
    name: str,
    uid: str,
    apiVersion: str,
    resourceVersion: str,
    fieldPath: str,
  },
};

/** Top-level fields besides apiVersion, kind and metadata, per "group/Kind". */
const KINDS: Record<string, Record<string, GoType>> = {
  'coordination.k8s.io/Lease': {
    spec: {
      struct: 'LeaseSpec',
      fields: {
        holderIdentity: str,
        leaseDurationSeconds: 'int32',
        acquireTime: 'MicroTime',
        renewTime: 'MicroTime',
        leaseTransitions: 'int32',
        strategy: str,
        preferredHolder: str,
      },
    },
  },
  'events.k8s.io/Event': {
    eventTime: 'MicroTime',
    series: { struct: 'EventSeries', fields: { count: 'int32', lastObservedTime: 'MicroTime' } },
    reportingController: str,
    reportingInstance: str,
    action: str,
    reason: str,
    regarding: objectReference,
    related: objectReference,
    note: str,
    type: str,
    deprecatedSource: { struct: 'EventSource', fields: { component: str, host: str } },
    deprecatedFirstTimestamp: 'Time',
    deprecatedLastTimestamp: 'Time',
    deprecatedCount: 'int32',
  },
  '/Event': {
    involvedObject: objectReference,
    reason: str,
    message: str,
    source: { struct: 'EventSource', fields: { component: str, host: str } },
    firstTimestamp: 'Time',
    lastTimestamp: 'Time',
    count: 'int32',
    type: str,
    eventTime: 'MicroTime',
    series: { struct: 'EventSeries', fields: { count: 'int32', lastObservedTime: 'MicroTime' } },
    action: str,
    related: objectReference,
    reportingComponent: str,
    reportingInstance: str,
  },
  '/Secret': { data: { map: 'bytes' }, stringData: { map: str }, type: str, immutable: 'bool' },
  '/ConfigMap': { data: { map: str }, binaryData: { map: 'bytes' }, immutable: 'bool' },
};

const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Go's time.Parse complaint, for a value whose date and clock part is well formed or not. */
function goParseProblem(value: string, after: string): string {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(value))
    return `cannot parse ${JSON.stringify(value)} as "2006"`;
  return `cannot parse ${JSON.stringify(value.slice(19))} as ${JSON.stringify(after)}`;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** Whether the emulator knows the Go type of this kind. */
export function knowsKind(group: string, kind: string): boolean {
  return `${group}/${kind}` in KINDS;
}

/**
 * Decode `obj` as the Go type would: throws a 400 on a wrong JSON type or an unparsable time or
 * base64, removes unknown fields and returns their paths (for fieldValidation Strict/Warn).
 */
export function decodeBuiltin(group: string, kind: string, obj: Json): string[] {
  const fields = KINDS[`${group}/${kind}`];
  if (!fields) return [];
  const unknown: string[] = [];
  const fail = (detail: string) => {
    throw badRequest(`${kind} in version "v1" cannot be handled as a ${kind}: ${detail}`);
  };
  const visit = (value: unknown, t: GoType, path: string, owner: string): unknown => {
    if (value === null) return undefined; // null is the zero value
    const where = `Go struct field ${owner}.${path}`;
    if (typeof t === 'string') {
      switch (t) {
        case 'string':
          if (typeof value !== 'string')
            fail(`json: cannot unmarshal ${jsonKind(value)} into ${where} of type string`);
          return value;
        case 'bool':
          if (typeof value !== 'boolean')
            fail(`json: cannot unmarshal ${jsonKind(value)} into ${where} of type bool`);
          return value;
        case 'int32':
        case 'int64': {
          const max = t === 'int32' ? 2 ** 31 - 1 : Number.MAX_SAFE_INTEGER;
          if (typeof value !== 'number')
            fail(`json: cannot unmarshal ${jsonKind(value)} into ${where} of type ${t}`);
          if (!Number.isInteger(value) || Math.abs(value as number) > max)
            fail(`json: cannot unmarshal number ${String(value)} into ${where} of type ${t}`);
          return value;
        }
        case 'MicroTime':
          if (typeof value !== 'string')
            fail(`json: cannot unmarshal ${jsonKind(value)} into ${where} of type string`);
          if (!MICRO_TIME.test(value as string) || Number.isNaN(Date.parse(value as string)))
            fail(
              `parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05.000000Z07:00": ${goParseProblem(value as string, '.000000')}`,
            );
          return value;
        case 'Time':
          if (typeof value !== 'string')
            fail(`json: cannot unmarshal ${jsonKind(value)} into ${where} of type string`);
          if (!TIME.test(value as string) || Number.isNaN(Date.parse(value as string)))
            fail(
              `parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05Z07:00": ${goParseProblem(value as string, 'Z07:00')}`,
            );
          return value;
        case 'bytes':
          if (typeof value !== 'string')
            fail(`json: cannot unmarshal ${jsonKind(value)} into ${where} of type []uint8`);
          if (!BASE64.test(value as string)) fail('illegal base64 data at input byte 0');
          return value;
      }
    }
    if ('list' in t) {
      if (!Array.isArray(value)) fail(`json: cannot unmarshal ${jsonKind(value)} into ${where} of type []`);
      return (value as unknown[]).map((v, i) => visit(v, t.list, `${path}[${i}]`, owner));
    }
    if ('map' in t) {
      if (!isObject(value)) fail(`json: cannot unmarshal ${jsonKind(value)} into ${where} of type map`);
      for (const [k, v] of Object.entries(value as Json))
        (value as Json)[k] = visit(v, t.map, `${path}.${k}`, owner);
      return value;
    }
    if (!isObject(value))
      fail(`json: cannot unmarshal ${jsonKind(value)} into ${where} of type v1.${t.struct}`);
    const out = value as Json;
    for (const key of Object.keys(out)) {
      const sub = t.fields[key];
      if (!sub) {
        unknown.push(`${path}.${key}`);
        delete out[key];
        continue;
      }
      const v = visit(out[key], sub, `${path}.${key}`, t.struct);
      if (v === undefined) delete out[key];
      else out[key] = v;
    }
    return out;
  };
  for (const key of Object.keys(obj)) {
    if (key === 'apiVersion' || key === 'kind' || key === 'metadata') continue;
    const t = fields[key];
    if (!t) {
      unknown.push(key);
      delete obj[key];
      continue;
    }
    const v = visit(obj[key], t, key, kind);
    if (v === undefined) delete obj[key];
    else obj[key] = v;
  }
  return unknown;
}

/**
 * The conversion a real server applies when it decodes a v1 Secret: `stringData` is write-only, its
 * entries are merged into `data` (base64 of the UTF-8 text, overriding a `data` entry of the same key)
 * and the field itself is never stored nor returned (k8s.io/kubernetes pkg/apis/core/v1 conversion).
 * `kubectl create secret generic --from-literal` sends `data`; a manifest with `stringData` ends up
 * the same way.
 */
export function convertBuiltin(group: string, kind: string, obj: Json): void {
  if (group !== '' || kind !== 'Secret' || obj.stringData === undefined) return;
  const strings = obj.stringData as Record<string, string>;
  delete obj.stringData;
  const entries = Object.entries(strings);
  if (entries.length === 0) return;
  const data = isObject(obj.data) ? obj.data : {};
  for (const [key, value] of entries) data[key] = Buffer.from(value, 'utf8').toString('base64');
  obj.data = data;
}

/** A Secret's or ConfigMap's key (k8s.io/apimachinery IsConfigMapKey). */
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

const QUALIFIED =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** The 422 validation of the kinds whose rules the product can break. */
export function validateBuiltin(group: string, kind: string, obj: Json): FieldError[] {
  const errors: FieldError[] = [];
  const invalid = (field: string, value: unknown, detail: string) =>
    errors.push({
      field,
      reason: 'FieldValueInvalid',
      detail: `Invalid value: ${JSON.stringify(value)}: ${detail}`,
    });
  const required = (field: string) =>
    errors.push({ field, reason: 'FieldValueRequired', detail: 'Required value' });
  if (group === '' && kind === 'Secret' && isObject(obj.data)) {
    for (const key of Object.keys(obj.data)) {
      if (key.length <= 253 && CONFIG_KEY.test(key) && key !== '.' && key !== '..') continue;
      invalid(
        `data[${key}]`,
        key,
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
      );
    }
  }
  if (group === 'coordination.k8s.io' && kind === 'Lease') {
    const spec = isObject(obj.spec) ? obj.spec : {};
    if (spec.leaseDurationSeconds !== undefined && (spec.leaseDurationSeconds as number) <= 0)
      invalid('spec.leaseDurationSeconds', spec.leaseDurationSeconds, 'must be greater than 0');
    if (spec.leaseTransitions !== undefined && (spec.leaseTransitions as number) < 0)
      invalid('spec.leaseTransitions', spec.leaseTransitions, 'must be greater than or equal to 0');
  }
  if (group === 'events.k8s.io' && kind === 'Event') {
    if (obj.eventTime === undefined) required('eventTime');
    for (const [field, max] of [
      ['reportingController', 253],
      ['reportingInstance', 128],
      ['action', 128],
      ['reason', 128],
    ] as const) {
      const v = obj[field];
      if (typeof v !== 'string' || v === '') required(field);
      else if (v.length > max)
        errors.push({
          field,
          reason: 'FieldValueTooLong',
          detail: `Too long: may not be more than ${max} bytes`,
        });
    }
    if (
      typeof obj.reportingController === 'string' &&
      obj.reportingController &&
      !QUALIFIED.test(obj.reportingController)
    )
      invalid('reportingController', obj.reportingController, 'must be a qualified name');
    if (obj.type !== 'Normal' && obj.type !== 'Warning')
      errors.push({
        field: 'type',
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${JSON.stringify(obj.type ?? '')}: has invalid value: ${String(obj.type ?? '')}`,
      });
    if (typeof obj.note === 'string' && Buffer.byteLength(obj.note) > 1024)
      errors.push({
        field: 'note',
        reason: 'FieldValueTooLong',
        detail: 'Too long: may not be more than 1024 bytes',
      });
  }
  return errors;
}
