// Label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors (=, ==, != on dotted
// paths such as metadata.name or involvedObject.uid), parsed from query strings. Bad syntax is a 400.

import { badRequest } from './status.js';
import type { KubeObject } from './storage.js';

export type Predicate = (obj: KubeObject) => boolean;

interface Requirement {
  key: string;
  op: 'in' | 'notin' | 'exists' | '!exists' | '=' | '!=';
  values: string[];
}

/** Split on commas that are not inside parentheses. */
function splitTerms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s.length > 0);
}

function parseLabelTerm(term: string, whole: string): Requirement {
  let m = /^([A-Za-z0-9._/-]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
  if (m) {
    const values = m[3].split(',').map((v) => v.trim());
    return { key: m[1], op: m[2] as 'in' | 'notin', values };
  }
  m = /^([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$/.exec(term);
  if (m) return { key: m[1], op: m[2] === '!=' ? '!=' : '=', values: [m[3]] };
  m = /^(!?)([A-Za-z0-9._/-]+)$/.exec(term);
  if (m) return { key: m[2], op: m[1] ? '!exists' : 'exists', values: [] };
  throw badRequest(
    `unable to parse requirement: found '${term}', expected: valid label selector in "${whole}"`,
  );
}

function matches(req: Requirement, value: string | undefined): boolean {
  switch (req.op) {
    case 'exists':
      return value !== undefined;
    case '!exists':
      return value === undefined;
    case '=':
      return value === req.values[0];
    case '!=':
      return value !== req.values[0];
    case 'in':
      return value !== undefined && req.values.includes(value);
    case 'notin':
      return value === undefined || !req.values.includes(value);
  }
}

export function labelSelector(text: string | null): Predicate {
  if (!text) return () => true;
  const reqs = splitTerms(text).map((t) => parseLabelTerm(t, text));
  return (obj) => {
    const labels = (obj.metadata.labels ?? {}) as Record<string, string>;
    return reqs.every((r) => matches(r, labels[r.key]));
  };
}

function fieldValue(obj: KubeObject, path: string): string | undefined {
  let v: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  if (v === undefined || v === null) return path === 'metadata.namespace' ? '' : undefined;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export function fieldSelector(text: string | null): Predicate {
  if (!text) return () => true;
  const reqs = splitTerms(text).map((term) => {
    const m = /^([A-Za-z0-9._-]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${term}'`);
    return { path: m[1], negate: m[2] === '!=', value: m[3] };
  });
  return (obj) => reqs.every((r) => (fieldValue(obj, r.path) === r.value) !== r.negate);
}
