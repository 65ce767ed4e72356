// The patch formats the API accepts: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and the
// strategic merge patch kubectl sends for built-in types (as a merge patch with its directives
// honoured where they matter: `$patch: delete`/`replace`, `$retainKeys`, `$setElementOrder`).

import { ApiError, badRequest } from './status.js';

type Json = unknown;
type JsonObject = Record<string, Json>;
const isObject = (v: Json): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === 'delete') return undefined;
  if (patch.$patch === 'replace') {
    const rest = { ...patch };
    delete rest.$patch;
    return structuredClone(rest);
  }
  const out: JsonObject = isObject(target) ? { ...target } : {};
  const retain = Array.isArray(patch.$retainKeys) ? (patch.$retainKeys as string[]) : undefined;
  if (retain) for (const key of Object.keys(out)) if (!retain.includes(key)) delete out[key];
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    if (value === null) delete out[key];
    else {
      const next = strategicMergePatch(out[key], value);
      if (next === undefined) delete out[key];
      else out[key] = next;
    }
  }
  return out;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`invalid JSON pointer "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, parts: string[], path: string): { parent: JsonObject | Json[]; key: string } {
  let cur: Json = doc;
  for (const part of parts.slice(0, -1)) {
    cur = Array.isArray(cur) ? cur[Number(part)] : isObject(cur) ? cur[part] : undefined;
    if (cur === undefined) throw jsonPatchError(`doc is missing path: "${path}"`);
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw jsonPatchError(`doc is missing path: "${path}"`);
  return { parent: cur, key: parts[parts.length - 1] };
}

function jsonPatchError(message: string): ApiError {
  return new ApiError(422, 'Invalid', message);
}

function getAt(doc: Json, path: string): Json {
  let cur = doc;
  for (const part of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(part)] : isObject(cur) ? cur[part] : undefined;
    if (cur === undefined) throw jsonPatchError(`doc is missing path: "${path}"`);
  }
  return cur;
}

function removeAt(doc: Json, path: string): Json {
  const { parent, key } = parentOf(doc, pointer(path), path);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!(i >= 0 && i < parent.length)) throw jsonPatchError(`doc is missing path: "${path}"`);
    return parent.splice(i, 1)[0];
  }
  if (!(key in parent)) throw jsonPatchError(`doc is missing path: "${path}"`);
  const old = parent[key];
  delete parent[key];
  return old;
}

function addAt(doc: Json, path: string, value: Json, replace: boolean): Json {
  const parts = pointer(path);
  if (parts.length === 0) return structuredClone(value);
  const { parent, key } = parentOf(doc, parts, path);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!(Number.isInteger(i) && i >= 0 && i <= parent.length))
      throw jsonPatchError(`unable to access invalid index: ${key}`);
    if (replace) parent[i] = structuredClone(value);
    else parent.splice(i, 0, structuredClone(value));
  } else {
    if (replace && !(key in parent)) throw jsonPatchError(`doc is missing key: ${path}`);
    parent[key] = structuredClone(value);
  }
  return doc;
}

export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest('json patch must be an array of operations');
  let doc = structuredClone(target);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string')
      throw badRequest('json patch operation needs "op" and "path"');
    const { op, path } = raw;
    switch (op) {
      case 'add':
        doc = addAt(doc, path, raw.value, false);
        break;
      case 'replace':
        doc = addAt(doc, path, raw.value, true);
        break;
      case 'remove':
        removeAt(doc, path);
        break;
      case 'move': {
        const value = removeAt(doc, String(raw.from));
        doc = addAt(doc, path, value, false);
        break;
      }
      case 'copy':
        doc = addAt(doc, path, getAt(doc, String(raw.from)), false);
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(raw.value))
          throw jsonPatchError(`testing value ${path} failed`);
        break;
      default:
        throw badRequest(`unexpected json patch operation "${op}"`);
    }
  }
  return doc;
}
