// ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding (admissionregistration.k8s.io/v1,
// GA in Kubernetes 1.30): stored as built-in kinds and evaluated on every write of a matching
// resource made through the HTTP API, after schema validation, as the real server's validating
// admission stage does. What is implemented:
// - policy: matchConstraints.resourceRules (apiGroups, apiVersions, resources — "x/status" for a
//   subresource, "*" —, operations CREATE/UPDATE/DELETE/"*", resourceNames), matchConditions,
//   variables, validations (expression, message, messageExpression, reason), failurePolicy
//   (Fail, the default, refuses a request whose expression cannot be evaluated; Ignore skips it);
// - binding: policyName, validationActions (Deny refuses; Warn adds a Warning header; Audit is
//   accepted and does nothing here);
// - CEL variables: object, oldObject (null on CREATE; object is null on DELETE), request
//   (operation, name, namespace, kind, resource, subResource, dryRun, userInfo with username, uid,
//   groups and extra), variables.
// A denial is the real shape: `<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<p>'
// with binding '<b>' denied request: <message>`, code from the validation's reason (Invalid, the
// default, 422; Forbidden 403; Unauthorized 401; RequestEntityTooLarge 413), the message as a cause.
// Not implemented (the policy or binding is refused with a 422 naming the field, so a test never
// silently runs without it): paramKind/paramRef, matchResources selectors, excludeResourceRules,
// auditAnnotations, the authorizer and namespaceObject variables, CEL type checking and cost.
// Writes made in process (server.api without userInfo) and garbage collection skip admission.

import { Environment } from '@marcbachmann/cel-js';
import { toCel } from './cel.js';
import { ApiError, qualifiedResource, type FieldError } from './status.js';
import type { KubeObject, Storage } from './storage.js';
import type { ResourceType } from './resources.js';

export const POLICIES_COLLECTION = 'admissionregistration.k8s.io/validatingadmissionpolicies';
export const BINDINGS_COLLECTION = 'admissionregistration.k8s.io/validatingadmissionpolicybindings';

export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface AdmissionAttributes {
  operation: 'CREATE' | 'UPDATE' | 'DELETE';
  type: ResourceType;
  subresource?: string;
  name: string;
  namespace?: string;
  object: KubeObject | null;
  oldObject: KubeObject | null;
  userInfo: UserInfo;
  dryRun: boolean;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const strs = (v: unknown): string[] => list(v).filter((s): s is string => typeof s === 'string');

const env = new Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false });
type Program = ReturnType<Environment['parse']>;
const compiled = new Map<string, Program>();
function program(expression: string): Program {
  let p = compiled.get(expression);
  if (!p) {
    p = env.parse(expression);
    if (compiled.size > 1000) compiled.clear();
    compiled.set(expression, p);
  }
  return p;
}

const REASON_CODES: Record<string, number> = {
  Invalid: 422,
  Forbidden: 403,
  Unauthorized: 401,
  RequestEntityTooLarge: 413,
};
const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT', '*'];
const ACTIONS = ['Deny', 'Warn', 'Audit'];

/** Field errors of a policy or binding (the 422 on create/update), including what is not implemented. */
export function admissionObjectErrors(kind: string, obj: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const spec = isObject(obj.spec) ? obj.spec : {};
  const notImplemented = (field: string) =>
    errors.push({
      field,
      reason: 'FieldValueForbidden',
      detail: 'Forbidden: not implemented by the emulator',
    });
  const required = (field: string) =>
    errors.push({ field, reason: 'FieldValueRequired', detail: 'Required value' });
  const expression = (field: string, text: unknown) => {
    if (typeof text !== 'string' || !text) return required(field);
    try {
      program(text);
    } catch (err) {
      errors.push({
        field,
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${JSON.stringify(text)}: compilation failed: ${(err as Error).message.split('\n')[0]}`,
      });
    }
  };
  if (kind === 'ValidatingAdmissionPolicy') {
    if (spec.paramKind !== undefined) notImplemented('spec.paramKind');
    if (spec.auditAnnotations !== undefined) notImplemented('spec.auditAnnotations');
    const mc = isObject(spec.matchConstraints) ? spec.matchConstraints : undefined;
    if (!mc) required('spec.matchConstraints');
    else {
      for (const key of ['namespaceSelector', 'objectSelector', 'excludeResourceRules'])
        if (mc[key] !== undefined && !(isObject(mc[key]) && Object.keys(mc[key]).length === 0))
          notImplemented(`spec.matchConstraints.${key}`);
      const rules = list(mc.resourceRules);
      if (rules.length === 0) required('spec.matchConstraints.resourceRules');
      rules.forEach((r, i) => {
        const ops = isObject(r) ? strs(r.operations) : [];
        const bad = ops.find((o) => !OPERATIONS.includes(o));
        if (!ops.length) required(`spec.matchConstraints.resourceRules[${i}].operations`);
        else if (bad)
          errors.push({
            field: `spec.matchConstraints.resourceRules[${i}].operations`,
            reason: 'FieldValueNotSupported',
            detail: `Unsupported value: "${bad}": supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE"`,
          });
      });
    }
    if (spec.failurePolicy !== undefined && spec.failurePolicy !== 'Fail' && spec.failurePolicy !== 'Ignore')
      errors.push({
        field: 'spec.failurePolicy',
        reason: 'FieldValueNotSupported',
        detail: `Unsupported value: ${JSON.stringify(spec.failurePolicy)}: supported values: "Fail", "Ignore"`,
      });
    list(spec.matchConditions).forEach((c, i) =>
      expression(`spec.matchConditions[${i}].expression`, isObject(c) ? c.expression : undefined),
    );
    list(spec.variables).forEach((v, i) => {
      if (!isObject(v) || typeof v.name !== 'string' || !v.name) required(`spec.variables[${i}].name`);
      expression(`spec.variables[${i}].expression`, isObject(v) ? v.expression : undefined);
    });
    const validations = list(spec.validations);
    if (validations.length === 0) required('spec.validations');
    validations.forEach((v, i) => {
      expression(`spec.validations[${i}].expression`, isObject(v) ? v.expression : undefined);
      if (isObject(v) && v.messageExpression !== undefined)
        expression(`spec.validations[${i}].messageExpression`, v.messageExpression);
      if (isObject(v) && v.reason !== undefined && !(String(v.reason) in REASON_CODES))
        errors.push({
          field: `spec.validations[${i}].reason`,
          reason: 'FieldValueNotSupported',
          detail: `Unsupported value: ${JSON.stringify(v.reason)}: supported values: "Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized"`,
        });
    });
  } else {
    if (typeof spec.policyName !== 'string' || !spec.policyName) required('spec.policyName');
    if (spec.paramRef !== undefined) notImplemented('spec.paramRef');
    if (
      spec.matchResources !== undefined &&
      !(isObject(spec.matchResources) && Object.keys(spec.matchResources).length === 0)
    )
      notImplemented('spec.matchResources');
    const actions = strs(spec.validationActions);
    if (actions.length === 0) required('spec.validationActions');
    for (const a of actions)
      if (!ACTIONS.includes(a))
        errors.push({
          field: 'spec.validationActions',
          reason: 'FieldValueNotSupported',
          detail: `Unsupported value: "${a}": supported values: "Audit", "Deny", "Warn"`,
        });
  }
  return errors;
}

function ruleMatches(rule: Json, a: AdmissionAttributes): boolean {
  const has = (values: string[], value: string) => values.includes('*') || values.includes(value);
  const resource = a.subresource ? `${a.type.plural}/${a.subresource}` : a.type.plural;
  const resources = strs(rule.resources);
  const resourceOk =
    resources.includes('*') ||
    resources.includes(resource) ||
    (a.subresource !== undefined && resources.includes(`${a.type.plural}/*`)) ||
    (a.subresource !== undefined && resources.includes(`*/${a.subresource}`));
  const names = strs(rule.resourceNames);
  return (
    has(strs(rule.apiGroups), a.type.group) &&
    has(strs(rule.apiVersions), a.type.version) &&
    has(strs(rule.operations), a.operation) &&
    resourceOk &&
    (names.length === 0 || names.includes(a.name))
  );
}

/** The CEL `request` variable (admission.k8s.io/v1 AdmissionRequest, the fields CEL sees). */
function requestOf(a: AdmissionAttributes): Json {
  const userInfo: Json = {
    username: a.userInfo.username,
    uid: a.userInfo.uid ?? '',
    groups: a.userInfo.groups ?? [],
    extra: a.userInfo.extra ?? {},
  };
  return {
    operation: a.operation,
    name: a.name,
    namespace: a.namespace ?? '',
    kind: { group: a.type.group, version: a.type.version, kind: a.type.kind },
    resource: { group: a.type.group, version: a.type.version, resource: a.type.plural },
    subResource: a.subresource ?? '',
    requestKind: { group: a.type.group, version: a.type.version, kind: a.type.kind },
    requestResource: { group: a.type.group, version: a.type.version, resource: a.type.plural },
    dryRun: a.dryRun,
    userInfo,
  };
}

class EvaluationError extends Error {}

/**
 * Run every bound policy that matches the request. Throws the real denial for the first Deny;
 * returns the warnings of Warn bindings.
 */
export function validatingAdmission(storage: Storage, a: AdmissionAttributes): string[] {
  const warnings: string[] = [];
  const policies = new Map(storage.list(POLICIES_COLLECTION).map((p) => [p.metadata.name, p]));
  const bindings = storage
    .list(BINDINGS_COLLECTION)
    .sort((x, y) => (x.metadata.name < y.metadata.name ? -1 : 1));
  for (const binding of bindings) {
    const bspec = isObject(binding.spec) ? binding.spec : {};
    const policy = policies.get(String(bspec.policyName));
    if (!policy) continue;
    const spec = isObject(policy.spec) ? policy.spec : {};
    const mc = isObject(spec.matchConstraints) ? spec.matchConstraints : {};
    if (!list(mc.resourceRules).some((r) => isObject(r) && ruleMatches(r, a))) continue;
    const actions = strs(bspec.validationActions);
    const ignore = spec.failurePolicy === 'Ignore';
    const base: Json = {
      object: a.object === null ? null : toCel(a.object, undefined),
      oldObject: a.oldObject === null ? null : toCel(a.oldObject, undefined),
      request: requestOf(a),
    };
    const run = (expression: string, vars: Json): unknown => {
      try {
        return program(expression)(vars);
      } catch (err) {
        throw new EvaluationError(`expression '${expression}' resulted in error: ${(err as Error).message}`);
      }
    };
    let failure: { message: string; reason: string } | undefined;
    try {
      const matched = list(spec.matchConditions).every((c) => {
        const result = run(String((c as Json).expression), base);
        if (typeof result !== 'boolean')
          throw new EvaluationError(
            `matchCondition '${String((c as Json).name)}' did not evaluate to a bool`,
          );
        return result;
      });
      if (!matched) continue;
      const variables: Json = {};
      const vars = { ...base, variables };
      for (const v of list(spec.variables) as Json[])
        variables[String(v.name)] = run(String(v.expression), vars);
      for (const v of list(spec.validations) as Json[]) {
        const expression = String(v.expression);
        if (run(expression, vars) === true) continue;
        let message =
          typeof v.message === 'string' && v.message ? v.message : `failed expression: ${expression}`;
        if (typeof v.messageExpression === 'string') {
          const m = run(v.messageExpression, vars);
          if (typeof m === 'string' && m.trim()) message = m;
        }
        failure = { message, reason: typeof v.reason === 'string' ? v.reason : 'Invalid' };
        break;
      }
    } catch (err) {
      if (!(err instanceof EvaluationError)) throw err;
      if (ignore) continue;
      failure = { message: err.message, reason: 'Invalid' };
    }
    if (!failure) continue;
    const text = `ValidatingAdmissionPolicy '${policy.metadata.name}' with binding '${binding.metadata.name}' denied request: ${failure.message}`;
    if (actions.includes('Warn')) warnings.push(text);
    if (actions.includes('Deny')) throw denial(a, failure.reason, text);
  }
  return warnings;
}

function denial(a: AdmissionAttributes, reason: string, text: string): ApiError {
  const what = qualifiedResource(a.type.group, a.type.plural);
  const message = a.name ? `${what} "${a.name}" is forbidden: ${text}` : `${what} is forbidden: ${text}`;
  return new ApiError(REASON_CODES[reason] ?? 422, reason, message, {
    name: a.name || undefined,
    group: a.type.group || undefined,
    kind: a.type.plural,
    causes: [{ message: text }],
  });
}
