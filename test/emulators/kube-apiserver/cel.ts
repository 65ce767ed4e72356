// x-kubernetes-validations rules, evaluated with @marcbachmann/cel-js (CEL with macros, has(),
// matches(), and the strings extension functions Kubernetes enables, such as split()).
// Values are converted the way the apiserver types them: schema integers are CEL ints (BigInt).

import { Environment } from '@marcbachmann/cel-js';
import type { Schema } from './schema.js';

export interface Rule {
  rule: string;
  message?: string;
  fieldPath?: string;
  reason?: string;
}

export interface CompiledRule {
  fieldPath?: string;
  /** FieldValueInvalid unless the rule names another reason (FieldValueForbidden, ...). */
  reason: string;
  /** undefined when the rule holds; otherwise the message to report. */
  evaluate(self: unknown, schema: Schema): string | undefined;
}

const env = new Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false });

/** Throws when the rule does not parse. */
export function compileRule(rule: Rule): CompiledRule {
  const program = env.parse(rule.rule);
  const failure = rule.message ?? `failed rule: ${rule.rule}`;
  return {
    fieldPath: rule.fieldPath,
    reason: rule.reason ?? 'FieldValueInvalid',
    evaluate(self, schema) {
      try {
        return program({ self: toCel(self, schema) }) === true ? undefined : failure;
      } catch {
        // A rule that cannot be evaluated refuses the object (fail closed), as the apiserver does.
        return failure;
      }
    },
  };
}

/** A JSON value as CEL sees it: integers as CEL ints (BigInt), typed by `schema` when known. */
export function toCel(value: unknown, schema: Schema | undefined): unknown {
  if (value === null || value === undefined) return value;
  if (Array.isArray(value)) return value.map((v) => toCel(v, schema?.items));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const sub =
        schema?.properties?.[k] ??
        (typeof schema?.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      out[k] = toCel(v, sub);
    }
    return out;
  }
  if (typeof value === 'number' && (schema?.type === 'integer' || Number.isInteger(value))) {
    return schema?.type === 'number' ? value : BigInt(value);
  }
  return value;
}
