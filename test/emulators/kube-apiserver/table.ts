// Server-side printing: the meta.k8s.io/v1 Table kubectl asks for with
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. Custom resources get their CRD's
// additionalPrinterColumns (simple JSONPaths, as the apiextensions-apiserver supports); `date`
// columns are turned into ages server-side, as the real table convertor does.

import type { PrinterColumn, ResourceType } from './resources.js';
import type { KubeObject } from './storage.js';

export interface TableColumn {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string; continue?: string };
  columnDefinitions: TableColumn[];
  rows: { cells: unknown[]; object: unknown }[];
}

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${hours / 24}d` : `${Math.trunc(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 365 * 8)
    return days % 365 === 0 ? `${days / 365}y` : `${Math.trunc(days / 365)}y${days % 365}d`;
  return `${Math.trunc(days / 365)}y`;
}

/** A simple JSONPath (".spec.policyRef.name", ".spec.ports[0]", "{.a.b}") against an object. */
export function evalJsonPath(obj: unknown, path: string): unknown {
  const text = path.trim().replace(/^\{(.*)\}$/, '$1');
  const parts = [...text.matchAll(/\.([^.[\]]+)|\[(\d+)\]|\['([^']+)'\]/g)];
  let cur: unknown = obj;
  for (const m of parts) {
    if (cur === undefined || cur === null || typeof cur !== 'object') return undefined;
    if (m[2] !== undefined) cur = Array.isArray(cur) ? cur[Number(m[2])] : undefined;
    else cur = (cur as Record<string, unknown>)[m[1] ?? m[3]];
  }
  return cur;
}

function cell(column: PrinterColumn, value: unknown, now: number): unknown {
  if (value === undefined || value === null) return null;
  switch (column.type) {
    case 'string':
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'date': {
      const at = Date.parse(String(value));
      return Number.isNaN(at) ? '<unknown>' : humanDuration(now - at);
    }
    case 'integer':
      return typeof value === 'number' ? Math.trunc(value) : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    default:
      return JSON.stringify(value);
  }
}

const NAME_COLUMN: TableColumn = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  priority: 0,
};

const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
};

/** Columns for built-in types: what `kubectl get` shows for them (the subset knockgate cares about). */
const BUILTIN_COLUMNS: Record<string, PrinterColumn[]> = {
  Secret: [
    { name: 'Type', type: 'string', jsonPath: '.type' },
    { name: 'Data', type: 'integer', jsonPath: '.dataCount' },
    AGE_COLUMN,
  ],
  Lease: [{ name: 'Holder', type: 'string', jsonPath: '.spec.holderIdentity' }, AGE_COLUMN],
  CustomResourceDefinition: [{ name: 'Created At', type: 'string', jsonPath: '.metadata.creationTimestamp' }],
};

export function columnsOf(type: ResourceType): PrinterColumn[] {
  if (type.custom) return type.printerColumns?.length ? type.printerColumns : [AGE_COLUMN];
  return BUILTIN_COLUMNS[type.kind] ?? [AGE_COLUMN];
}

/**
 * Render objects as a Table. `includeObject` follows the query parameter: None, Metadata
 * (default, a PartialObjectMetadata) or Object.
 */
export function toTable(
  type: ResourceType,
  objects: KubeObject[],
  opts: { now: number; resourceVersion?: string; continueToken?: string; includeObject: string },
): Table {
  const columns = columnsOf(type);
  const rows = objects.map((obj) => {
    const view =
      type.kind === 'Secret' ? { ...obj, dataCount: Object.keys((obj.data as object) ?? {}).length } : obj;
    const cells = [
      obj.metadata.name,
      ...columns.map((c) => cell(c, evalJsonPath(view, c.jsonPath), opts.now)),
    ];
    let object: unknown = null;
    if (opts.includeObject === 'Object') object = obj;
    else if (opts.includeObject !== 'None')
      object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
    return { cells, object };
  });
  const metadata: Table['metadata'] = {};
  if (opts.resourceVersion) metadata.resourceVersion = opts.resourceVersion;
  if (opts.continueToken) metadata.continue = opts.continueToken;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: [
      NAME_COLUMN,
      ...columns.map((c) => ({
        name: c.name,
        type: c.type,
        format: c.format ?? '',
        description: c.description ?? '',
        priority: c.priority ?? 0,
      })),
    ],
    rows,
  };
}
