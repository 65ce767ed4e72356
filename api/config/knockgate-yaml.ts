// knockgate YAML: a multi-document file of KnockPolicy objects, Secrets (v1; SPA keys by
// keySecretRef.name, in `data` as base64 or in `stringData`) and at most one StandaloneConfig.
// Errors name the line: YAML syntax errors from the parser's positions, validation errors by mapping
// the field path ("spec.grant.ports[1]") back to its node in the document.

import { LineCounter, parseAllDocuments, isMap, isSeq, type Document } from 'yaml';
import { validatePolicy } from '../validate.js';
import { validateSettings } from '../validate-settings.js';
import type { KnockPolicy } from '../types.js';
import type { Hooks, StandaloneSettings } from '../standalone.js';
import { ConfigError } from './errors.js';
import { KEY_VARS, keyVarBytes, resolveKeys, type KeyVar } from './keys.js';
import { emptyParsedConfig, type ParsedConfig, type SecretData } from './types.js';

/** The Secret keys the SPA codec reads (fwknop's names). */
export const SECRET_KEYS = KEY_VARS;

/** Most documents in one file: a bound on the work a config can cause. */
const MAX_DOCUMENTS = 10_000;
/** Alias expansions per document: no billion-laughs. */
const MAX_ALIAS_COUNT = 100;

export function parseKnockgateYaml(file: string, text: string): ParsedConfig {
  const out = emptyParsedConfig();
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true });
  if (!Array.isArray(docs)) throw new ConfigError(file, undefined, 'not a YAML stream');
  if (docs.length > MAX_DOCUMENTS)
    throw new ConfigError(file, undefined, `more than ${MAX_DOCUMENTS} documents`);
  const lineOf = (offset: number) => lc.linePos(offset).line;

  let settingsAt: number | undefined;
  let settingsDoc: { doc: Document; obj: unknown } | undefined;
  const secretLines = new Map<string, number>();
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) {
      const line = err.linePos?.[0].line ?? lineOf(err.pos[0]);
      throw new ConfigError(
        file,
        line,
        `YAML: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
      );
    }
    if (doc.contents === null) continue; // an empty document ("---" at the end)
    const docLine = lineOf(doc.contents.range[0]);
    const obj: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    const locate = (path: string) => locatePath(doc, path, lineOf) ?? docLine;
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new ConfigError(file, docLine, 'each YAML document must be an object with apiVersion and kind');
    }
    const { kind } = obj as { kind?: unknown };
    const fail = (path: string, message: string): never => {
      throw new ConfigError(file, locate(path), path ? `${path}: ${message}` : message);
    };
    switch (kind) {
      case 'KnockPolicy': {
        const { policy, errors } = validatePolicy(obj);
        if (errors[0]) fail(errors[0].path, errors[0].message);
        const name = policy!.metadata.name;
        const twin = out.policies.find((p) => p.policy.metadata.name === name);
        if (twin) fail('metadata.name', `KnockPolicy "${name}" is already defined at line ${twin.line}`);
        out.policies.push({ policy: policy as KnockPolicy, file, line: docLine, locate });
        break;
      }
      case 'Secret': {
        const { name, data } = readSecret(obj as Record<string, unknown>, fail);
        const first = secretLines.get(name);
        if (first !== undefined)
          fail('metadata.name', `Secret "${name}" is already defined at line ${first}`);
        secretLines.set(name, docLine);
        out.secrets[name] = data;
        break;
      }
      case 'StandaloneConfig':
        if (settingsAt !== undefined) {
          throw new ConfigError(
            file,
            docLine,
            `a second StandaloneConfig (the first is at line ${settingsAt}): give one`,
          );
        }
        settingsAt = docLine;
        settingsDoc = { doc, obj };
        break;
      default:
        fail('kind', `unsupported kind ${JSON.stringify(kind)}: use KnockPolicy, Secret or StandaloneConfig`);
    }
  }
  if (out.policies.length === 0) throw new ConfigError(file, undefined, 'no KnockPolicy in this file');

  if (settingsDoc) {
    const { doc, obj } = settingsDoc;
    const { settings, errors } = validateSettings(
      obj,
      new Set(out.policies.map((p) => p.policy.metadata.name)),
    );
    if (errors[0]) {
      const line = locatePath(doc, errors[0].path, lineOf) ?? settingsAt;
      throw new ConfigError(file, line, `${errors[0].path ? `${errors[0].path}: ` : ''}${errors[0].message}`);
    }
    out.settings = settings as StandaloneSettings;
    out.settingsLine = settingsAt!;
    out.hooks = { ...(settings!.hooks ?? {}) } as Record<string, Hooks>;
  }
  checkSecretRefs(file, out, secretLines);
  return out;
}

function readSecret(
  obj: Record<string, unknown>,
  fail: (path: string, message: string) => never,
): { name: string; data: SecretData } {
  if (obj.apiVersion !== 'v1') fail('apiVersion', 'a Secret must be apiVersion v1');
  const meta = obj.metadata as Record<string, unknown> | undefined;
  if (typeof meta?.name !== 'string' || meta.name === '') fail('metadata.name', 'a Secret needs a name');
  const data: SecretData = {};
  const put = (field: 'data' | 'stringData', key: string, value: unknown, decode: boolean) => {
    const path = `${field}.${key}`;
    if (!(SECRET_KEYS as readonly string[]).includes(key))
      fail(path, `unknown key (use ${SECRET_KEYS.join(', ')})`);
    if (typeof value !== 'string' || value === '') fail(path, 'must be a non-empty string');
    const v = value as string;
    if (decode && !/^[A-Za-z0-9+/]*={0,2}$/.test(v))
      fail(path, 'data values must be base64 (or use stringData)');
    const text = decode ? Buffer.from(v, 'base64').toString('utf8') : v;
    const checked = keyVarBytes(key as KeyVar, text);
    if ('error' in checked) fail(path, checked.error);
    if (data[key] !== undefined) fail(path, `${key} is given in both data and stringData`);
    data[key] = text;
  };
  for (const field of ['data', 'stringData'] as const) {
    const m = obj[field];
    if (m === undefined) continue;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) fail(field, 'must be a map');
    for (const [k, v] of Object.entries(m as Record<string, unknown>)) put(field, k, v, field === 'data');
  }
  const whole = resolveKeys(data);
  if ('error' in whole) fail('', `Secret "${meta!.name as string}": ${whole.error}`);
  return { name: meta!.name as string, data };
}

/** Every SPA policy's keys must be in this file (standalone has no other place to find them). */
function checkSecretRefs(file: string, out: ParsedConfig, secretLines: Map<string, number>): void {
  for (const p of out.policies) {
    const spa = p.policy.spec.spa;
    if (!spa) continue;
    const name = spa.keySecretRef.name;
    if (!secretLines.has(name)) {
      const path = 'spec.spa.keySecretRef.name';
      throw new ConfigError(file, p.locate?.(path) ?? p.line, `${path}: no Secret "${name}" in this file`);
    }
    const hasHmac =
      out.secrets[name]!.HMAC_KEY !== undefined || out.secrets[name]!.HMAC_KEY_BASE64 !== undefined;
    if (!hasHmac && !spa.allowMissingHmac) {
      throw new ConfigError(
        file,
        secretLines.get(name)!,
        `Secret "${name}" has no HMAC_KEY_BASE64 (or HMAC_KEY), and policy "${p.policy.metadata.name}" does not set spa.allowMissingHmac`,
      );
    }
  }
}

/** The line of the node at a field path like `spec.grant.ports[1]` or `hooks."my-door".start`. */
export function locatePath(
  doc: Document,
  path: string,
  lineOf: (offset: number) => number,
): number | undefined {
  const keys: (string | number)[] = [];
  const re = /\[(\d+)\]|"((?:[^"\\]|\\.)*)"|([^.[\]"]+)/g;
  for (let m = re.exec(path); m; m = re.exec(path)) {
    if (m[1] !== undefined) keys.push(Number(m[1]));
    else if (m[2] !== undefined) keys.push(JSON.parse(`"${m[2]}"`) as string);
    else keys.push(m[3]!);
  }
  // Walk as far as the path exists: a missing field is reported on its parent.
  for (let n = keys.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(keys.slice(0, n), true);
    if (node && typeof node === 'object' && 'range' in node && Array.isArray(node.range)) {
      // For a map or list, point at the key's line when we can (the node itself may start later).
      if ((isMap(node) || isSeq(node)) && n > 0) {
        const parent = n === 1 ? doc.contents : doc.getIn(keys.slice(0, n - 1), true);
        if (isMap(parent)) {
          const pair = parent.items.find(
            (it) => (it.key as { value?: unknown } | null)?.value === keys[n - 1],
          );
          const keyNode = pair?.key as { range?: [number, number, number] } | undefined;
          if (keyNode?.range) return lineOf(keyNode.range[0]);
        }
      }
      return lineOf((node.range as [number, number, number])[0]);
    }
  }
  return undefined;
}
