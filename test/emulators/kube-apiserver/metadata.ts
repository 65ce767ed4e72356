// ObjectMeta validation the real apiserver applies to every kind (apimachinery
// ValidateObjectMeta): label keys and values, annotation keys and total size, finalizer names and
// owner references, with the real field paths and messages.

import type { FieldError } from './status.js';

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const TOTAL_ANNOTATION_BYTES = 256 * 1024;

const NAME_PART_MESSAGE =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MESSAGE =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const PREFIX_MESSAGE =
  "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Problems with a qualified name ("example.com/name" or "name"), as IsQualifiedName words them. */
function qualifiedNameProblems(key: string): string[] {
  const parts = key.split('/');
  if (parts.length > 2)
    return [
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  const [prefix, name] = parts.length === 2 ? parts : [undefined, parts[0]];
  const out: string[] = [];
  if (prefix !== undefined) {
    if (prefix.length === 0) out.push('prefix part must be non-empty');
    else if (prefix.length > 253) out.push('prefix part must be no more than 253 characters');
    else if (!DNS1123_SUBDOMAIN.test(prefix)) out.push(PREFIX_MESSAGE);
  }
  if (name.length === 0) out.push('name part must be non-empty');
  else if (name.length > 63) out.push('name part must be no more than 63 characters');
  else if (!NAME_PART.test(name)) out.push(NAME_PART_MESSAGE);
  return out;
}

/** Field errors of an object's metadata (labels, annotations, finalizers, ownerReferences). */
export function metadataErrors(metadata: Json): FieldError[] {
  const errors: FieldError[] = [];
  const invalid = (field: string, value: string, detail: string) =>
    errors.push({
      field,
      reason: 'FieldValueInvalid',
      detail: `Invalid value: ${JSON.stringify(value)}: ${detail}`,
    });

  for (const key of ['labels', 'annotations'] as const) {
    const map = metadata[key];
    if (map === undefined || map === null) continue;
    if (!isObject(map) || !Object.values(map).every((v) => typeof v === 'string')) {
      errors.push({
        field: `metadata.${key}`,
        reason: 'FieldValueInvalid',
        detail: `Invalid value: "object": must be a map of strings`,
      });
      continue;
    }
    for (const [k, v] of Object.entries(map as Record<string, string>)) {
      for (const p of qualifiedNameProblems(k)) invalid(`metadata.${key}`, k, p);
      if (key === 'labels') {
        if (v.length > 63) invalid(`metadata.labels`, v, 'must be no more than 63 characters');
        else if (!LABEL_VALUE.test(v)) invalid(`metadata.labels`, v, LABEL_VALUE_MESSAGE);
      }
    }
    if (key === 'annotations') {
      const size = Object.entries(map).reduce((n, [k, v]) => n + k.length + String(v).length, 0);
      if (size > TOTAL_ANNOTATION_BYTES)
        errors.push({
          field: 'metadata.annotations',
          reason: 'FieldValueTooLong',
          detail: `Too long: must have at most ${TOTAL_ANNOTATION_BYTES} bytes`,
        });
    }
  }

  const finalizers = metadata.finalizers;
  if (finalizers !== undefined && finalizers !== null) {
    if (!Array.isArray(finalizers) || !finalizers.every((f) => typeof f === 'string'))
      errors.push({
        field: 'metadata.finalizers',
        reason: 'FieldValueInvalid',
        detail: 'Invalid value: "array": must be a list of strings',
      });
    else
      finalizers.forEach((f: string, i) => {
        for (const p of qualifiedNameProblems(f)) invalid(`metadata.finalizers[${i}]`, f, p);
        if (finalizers.indexOf(f) !== i)
          errors.push({
            field: `metadata.finalizers[${i}]`,
            reason: 'FieldValueDuplicate',
            detail: `Duplicate value: ${JSON.stringify(f)}`,
          });
      });
  }

  const refs = metadata.ownerReferences;
  if (refs !== undefined && refs !== null) {
    if (!Array.isArray(refs))
      errors.push({
        field: 'metadata.ownerReferences',
        reason: 'FieldValueInvalid',
        detail: 'Invalid value: "object": must be a list',
      });
    else {
      // apimachinery's validateOwnerReference reports these without an index.
      const what: Record<string, string> = { apiVersion: 'version', kind: 'kind', name: 'name', uid: 'uid' };
      for (const ref of refs as unknown[])
        for (const key of Object.keys(what))
          if (!isObject(ref) || typeof ref[key] !== 'string' || !ref[key])
            errors.push({
              field: `metadata.ownerReferences.${key}`,
              reason: 'FieldValueInvalid',
              detail: `Invalid value: "": ${what[key]} must not be empty`,
            });
      const controllers = refs.filter((r: unknown) => isObject(r) && r.controller === true);
      if (controllers.length > 1)
        errors.push({
          field: 'metadata.ownerReferences',
          reason: 'FieldValueInvalid',
          detail: `Invalid value: []v1.OwnerReference{...}: Only one reference can have Controller set to true. Found "true" in references for ${controllers
            .map((c) => `${String((c as Json).kind)}/${String((c as Json).name)}`)
            .join(' and ')}`,
        });
    }
  }
  return errors;
}
