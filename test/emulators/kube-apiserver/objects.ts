// The semantics of the Kubernetes API on top of Storage: object metadata (uid, creationTimestamp,
// resourceVersion, generation), optimistic concurrency, the status subresource split, finalizers and
// deletionTimestamp, garbage collection through ownerReferences, CRD registration with schema
// enforcement for custom resources, selectors and pagination.

import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../api/clock.js';
import { ALL_VERBS, BUILTIN_TYPES, type PrinterColumn, type ResourceType } from './resources.js';
import { CompiledSchema, type Schema } from './schema.js';
import { fieldSelector, labelSelector } from './selectors.js';
import {
  alreadyExists,
  ApiError,
  badRequest,
  conflict,
  invalid,
  notFound,
  type FieldError,
} from './status.js';
import type { KubeObject, Storage } from './storage.js';
import { convertBuiltin, decodeBuiltin, knowsKind, validateBuiltin } from './builtin-kinds.js';
import { metadataErrors } from './metadata.js';
import { structuralProblems } from './structural.js';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { admissionObjectErrors, validatingAdmission, type UserInfo } from './admission-policy.js';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface WriteOptions {
  fieldValidation: FieldValidation;
  dryRun: boolean;
  /**
   * Who asks (set by the HTTP server): ValidatingAdmissionPolicies run only then. In-process writes
   * of tests (server.api without it) are the cluster's own and skip admission.
   */
  userInfo?: UserInfo;
}

export interface WriteResult {
  object: KubeObject;
  warnings: string[];
  /** True for a create (201), false for an update (200). */
  created?: boolean;
}

export interface ListOptions {
  labelSelector: string | null;
  fieldSelector: string | null;
  limit?: number;
  continueToken?: string;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CRD_COLLECTION = 'apiextensions.k8s.io/customresourcedefinitions';
const NAMESPACES_COLLECTION = '/namespaces';

export const collectionOf = (t: ResourceType) => `${t.group}/${t.plural}`;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** JSON with sorted keys, to compare objects whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    isObject(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

/** Everything but metadata and status: a change here bumps metadata.generation. */
function specPart(o: KubeObject): string {
  const rest: Json = { ...o };
  delete rest.metadata;
  delete rest.status;
  return canonical(rest);
}

export class ObjectApi {
  private readonly types = new Map<string, ResourceType>();

  constructor(
    readonly storage: Storage,
    private readonly clock: Clock,
    namespaces: string[],
  ) {
    for (const t of BUILTIN_TYPES) this.types.set(`${t.group}/${t.version}/${t.plural}`, t);
    for (const name of namespaces) {
      this.storage.put(
        NAMESPACES_COLLECTION,
        this.stamp(
          {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name },
            spec: { finalizers: ['kubernetes'] },
            status: { phase: 'Active' },
          },
          false,
        ),
        'ADDED',
      );
    }
  }

  /** Every served type, built-ins first. */
  allTypes(): ResourceType[] {
    return [...this.types.values()];
  }

  type(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.get(`${group}/${version}/${plural}`);
  }

  private now(): string {
    return new Date(Math.floor(this.clock.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  }

  /** Fill in the fields the server owns on create. */
  private stamp(obj: KubeObject, withGeneration: boolean): KubeObject {
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = this.now();
    if (withGeneration) obj.metadata.generation = 1;
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.resourceVersion;
    return obj;
  }

  private requireNamespace(type: ResourceType, ns: string | undefined): void {
    if (!type.namespaced) return;
    if (!ns) throw badRequest('the server could not find the requested resource');
    if (!this.storage.get(NAMESPACES_COLLECTION, undefined, ns)) throw notFound('', 'namespaces', ns);
  }

  get(type: ResourceType, ns: string | undefined, name: string): KubeObject {
    const o = this.storage.get(collectionOf(type), type.namespaced ? ns : undefined, name);
    if (!o) throw notFound(type.group, type.plural, name);
    return this.present(type, o);
  }

  /** The object as this version serves it (all versions share storage; apiVersion follows the URL). */
  present(type: ResourceType, o: KubeObject): KubeObject {
    o.apiVersion = type.group ? `${type.group}/${type.version}` : type.version;
    o.kind = type.kind;
    return o;
  }

  list(
    type: ResourceType,
    ns: string | undefined,
    opts: ListOptions,
  ): { items: KubeObject[]; continueToken?: string } {
    const byLabel = labelSelector(opts.labelSelector);
    const byField = fieldSelector(opts.fieldSelector);
    let items = this.storage
      .list(collectionOf(type), type.namespaced ? ns : undefined)
      .map((o) => this.present(type, o))
      .filter((o) => byLabel(o) && byField(o));
    if (opts.continueToken) {
      let after: string;
      try {
        after = Buffer.from(opts.continueToken, 'base64url').toString('utf8');
      } catch {
        throw badRequest('invalid continue token');
      }
      items = items.filter((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}` > after);
    }
    if (opts.limit && opts.limit > 0 && items.length > opts.limit) {
      items = items.slice(0, opts.limit);
      const last = items[items.length - 1];
      const key = `${last.metadata.namespace ?? ''}/${last.metadata.name}`;
      return { items, continueToken: Buffer.from(key, 'utf8').toString('base64url') };
    }
    return { items };
  }

  create(type: ResourceType, ns: string | undefined, body: unknown, opts: WriteOptions): WriteResult {
    const obj = this.decode(type, ns, body);
    this.requireNamespace(type, ns);
    if (!obj.metadata.name) {
      const prefix = obj.metadata.generateName;
      if (typeof prefix !== 'string' || !prefix)
        throw invalid(type.group, type.kind, '', [
          {
            field: 'metadata.name',
            reason: 'FieldValueRequired',
            detail: 'Required value: name or generateName is required',
          },
        ]);
      obj.metadata.name = `${prefix}${randomUUID().replace(/-/g, '').slice(0, 5)}`;
    }
    if (this.storage.get(collectionOf(type), obj.metadata.namespace, obj.metadata.name))
      throw alreadyExists(type.group, type.plural, obj.metadata.name);
    this.stamp(obj, type.custom || type.kind === 'CustomResourceDefinition');
    if (type.custom && type.statusSubresource) delete obj.status;
    const warnings = this.admit(type, obj, opts);
    warnings.push(...this.validatingAdmission(type, 'CREATE', undefined, obj, null, opts));
    if (opts.dryRun) return { object: obj, warnings, created: true };
    const stored = this.storage.put(collectionOf(type), obj, 'ADDED');
    if (type.kind === 'CustomResourceDefinition')
      return { object: this.afterCrdWrite(stored), warnings, created: true };
    return { object: this.present(type, stored), warnings, created: true };
  }

  /** PUT: a full replacement (of status only, through the status subresource). */
  update(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    body: unknown,
    subresource: string | undefined,
    opts: WriteOptions,
  ): WriteResult {
    const candidate = this.decode(type, ns, body);
    if (candidate.metadata.name !== name)
      throw badRequest(
        `the name of the object (${candidate.metadata.name}) does not match the name on the URL (${name})`,
      );
    const old = this.storage.get(collectionOf(type), type.namespaced ? ns : undefined, name);
    if (!old) {
      if (subresource || type.custom) throw notFound(type.group, type.plural, name);
      return this.create(type, ns, candidate, opts);
    }
    const rv = candidate.metadata.resourceVersion;
    if (!rv && type.custom)
      throw invalid(type.group, type.kind, name, [
        {
          field: 'metadata.resourceVersion',
          reason: 'FieldValueInvalid',
          detail: 'Invalid value: 0x0: must be specified for an update',
        },
      ]);
    if (rv && rv !== old.metadata.resourceVersion) throw conflict(type.group, type.plural, name);
    return this.commit(type, old, candidate, subresource, opts);
  }

  patch(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    contentType: string,
    patch: unknown,
    subresource: string | undefined,
    opts: WriteOptions,
  ): WriteResult {
    const old = this.storage.get(collectionOf(type), type.namespaced ? ns : undefined, name);
    if (!old) throw notFound(type.group, type.plural, name);
    const current = this.present(type, structuredClone(old));
    let next: unknown;
    if (contentType === 'application/merge-patch+json') next = mergePatch(current, patch);
    else if (contentType === 'application/json-patch+json') next = jsonPatch(current, patch);
    else if (contentType === 'application/strategic-merge-patch+json' && !type.custom)
      next = strategicMergePatch(current, patch);
    else
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json${type.custom ? '' : ', application/strategic-merge-patch+json'}`,
      );
    if (!isObject(next) || !isObject(next.metadata))
      throw badRequest('the patch removed the object metadata');
    const candidate = next as KubeObject;
    const rv = candidate.metadata.resourceVersion;
    if (rv !== undefined && rv !== old.metadata.resourceVersion)
      throw conflict(type.group, type.plural, name);
    if (candidate.metadata.name !== name) throw badRequest('the patch changed metadata.name');
    return this.commit(type, old, candidate, subresource, opts);
  }

  /** The shared write path of PUT and PATCH. */
  private commit(
    type: ResourceType,
    old: KubeObject,
    candidate: KubeObject,
    subresource: string | undefined,
    opts: WriteOptions,
  ): WriteResult {
    let next: KubeObject;
    if (subresource === 'status') {
      if (!type.statusSubresource) throw notFound(type.group, `${type.plural}/status`, old.metadata.name);
      next = structuredClone(old);
      if (candidate.status === undefined) delete next.status;
      else next.status = candidate.status;
    } else if (subresource) {
      throw notFound(type.group, `${type.plural}/${subresource}`, old.metadata.name);
    } else {
      next = candidate;
      // The server owns these; a client cannot change them.
      for (const key of ['uid', 'creationTimestamp', 'deletionTimestamp', 'generation', 'namespace'])
        if (old.metadata[key] === undefined) delete next.metadata[key];
        else next.metadata[key] = old.metadata[key];
      if (type.statusSubresource) {
        if (old.status === undefined) delete next.status;
        else next.status = old.status;
      }
    }
    next.apiVersion = old.apiVersion;
    next.kind = old.kind;
    if (typeof old.metadata.generation === 'number' && specPart(next) !== specPart(old))
      next.metadata.generation = old.metadata.generation + 1;
    const warnings = this.admit(type, next, opts);
    warnings.push(
      ...this.validatingAdmission(
        type,
        'UPDATE',
        subresource,
        next,
        this.present(type, structuredClone(old)),
        opts,
      ),
    );
    if (opts.dryRun) return { object: this.present(type, next), warnings };
    const deleting = typeof old.metadata.deletionTimestamp === 'string';
    const finalizers = (next.metadata.finalizers as string[] | undefined) ?? [];
    if (deleting && finalizers.length === 0) {
      const gone = this.storage.remove(collectionOf(type), old.metadata.namespace, old.metadata.name)!;
      this.afterRemove(type, gone);
      return { object: this.present(type, gone), warnings };
    }
    if (
      !deleting &&
      canonical({
        ...next,
        metadata: { ...next.metadata, resourceVersion: old.metadata.resourceVersion },
      }) === canonical(old)
    ) {
      // A no-op write keeps the resourceVersion and sends no event, as the real server does.
      return { object: this.present(type, old), warnings };
    }
    const stored = this.storage.put(collectionOf(type), next, 'MODIFIED');
    if (type.kind === 'CustomResourceDefinition') return { object: this.afterCrdWrite(stored), warnings };
    return { object: this.present(type, stored), warnings };
  }

  delete(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    options: {
      propagationPolicy?: string;
      preconditions?: { uid?: string; resourceVersion?: string };
      dryRun: boolean;
      userInfo?: UserInfo;
    },
  ): KubeObject {
    const collection = collectionOf(type);
    const old = this.storage.get(collection, type.namespaced ? ns : undefined, name);
    if (!old) throw notFound(type.group, type.plural, name);
    const pre = options.preconditions ?? {};
    if (pre.uid && pre.uid !== old.metadata.uid)
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${type.group ? `${type.plural}.${type.group}` : type.plural} "${name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(old.metadata.uid)}`,
      );
    if (pre.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(type.group, type.plural, name);
    this.validatingAdmission(type, 'DELETE', undefined, null, this.present(type, structuredClone(old)), {
      dryRun: options.dryRun,
      userInfo: options.userInfo,
    });
    if (options.dryRun) return this.present(type, old);
    if (options.propagationPolicy === 'Orphan') this.orphanDependents(String(old.metadata.uid));
    const finalizers = (old.metadata.finalizers as string[] | undefined) ?? [];
    if (finalizers.length > 0) {
      if (old.metadata.deletionTimestamp) return this.present(type, old);
      old.metadata.deletionTimestamp = this.now();
      old.metadata.deletionGracePeriodSeconds = 0;
      return this.present(type, this.storage.put(collection, old, 'MODIFIED'));
    }
    const gone = this.storage.remove(collection, old.metadata.namespace, name)!;
    this.afterRemove(type, gone);
    return this.present(type, gone);
  }

  /** Background garbage collection: dependents of a removed owner are deleted in turn. */
  private afterRemove(type: ResourceType, gone: KubeObject): void {
    if (type.kind === 'CustomResourceDefinition') this.unregisterCrd(gone);
    const uid = gone.metadata.uid;
    for (const { collection, object } of this.storage.all()) {
      const refs = (object.metadata.ownerReferences as { uid?: string }[] | undefined) ?? [];
      if (!refs.some((r) => r.uid === uid)) continue;
      const depType = this.allTypes().find((t) => collectionOf(t) === collection);
      if (!depType) continue;
      try {
        this.delete(depType, object.metadata.namespace, object.metadata.name, { dryRun: false });
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
    }
  }

  private orphanDependents(uid: string): void {
    for (const { collection, object } of this.storage.all()) {
      const refs = (object.metadata.ownerReferences as { uid?: string }[] | undefined) ?? [];
      if (!refs.some((r) => r.uid === uid)) continue;
      object.metadata.ownerReferences = refs.filter((r) => r.uid !== uid);
      if ((object.metadata.ownerReferences as unknown[]).length === 0) delete object.metadata.ownerReferences;
      this.storage.put(collection, object, 'MODIFIED');
    }
  }

  /** Parse a request body into an object of `type`, checking apiVersion, kind and namespace. */
  private decode(type: ResourceType, ns: string | undefined, body: unknown): KubeObject {
    if (!isObject(body)) throw badRequest('the request body must be a JSON object');
    const obj = structuredClone(body) as KubeObject;
    const wantApiVersion = type.group ? `${type.group}/${type.version}` : type.version;
    if (obj.apiVersion !== undefined && obj.apiVersion !== wantApiVersion)
      throw badRequest(
        `the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${wantApiVersion})`,
      );
    if (obj.kind !== undefined && obj.kind !== type.kind)
      throw badRequest(
        `the kind in the data (${String(obj.kind)}) does not match the expected kind (${type.kind})`,
      );
    obj.apiVersion = wantApiVersion;
    obj.kind = type.kind;
    if (!isObject(obj.metadata)) obj.metadata = { name: '' };
    obj.metadata.name = typeof obj.metadata.name === 'string' ? obj.metadata.name : '';
    if (type.namespaced) {
      if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== ns)
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      obj.metadata.namespace = ns;
    } else delete obj.metadata.namespace;
    return obj;
  }

  /** Metadata checks for every type; pruning, defaulting and schema validation for custom resources. */
  private admit(type: ResourceType, obj: KubeObject, opts: WriteOptions): string[] {
    const errors: FieldError[] = [];
    const warnings: string[] = [];
    if (!type.custom && knowsKind(type.group, type.kind)) {
      // Built-in kinds: decoded into their Go types first (a 400), then validated (a 422).
      const unknown = decodeBuiltin(type.group, type.kind, obj);
      if (unknown.length && opts.fieldValidation === 'Strict')
        throw badRequest(`strict decoding error: ${unknown.map((p) => `unknown field "${p}"`).join(', ')}`);
      if (opts.fieldValidation === 'Warn') warnings.push(...unknown.map((p) => `unknown field "${p}"`));
      convertBuiltin(type.group, type.kind, obj);
      errors.push(...validateBuiltin(type.group, type.kind, obj));
    }
    const name = obj.metadata.name;
    if (!DNS1123_SUBDOMAIN.test(name) || name.length > 253)
      errors.push({
        field: 'metadata.name',
        reason: 'FieldValueInvalid',
        detail: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
      });
    errors.push(...metadataErrors(obj.metadata));
    if (type.custom && type.schema) {
      const compiled = this.compiledSchemas.get(type);
      if (compiled) {
        const pruned = compiled.pruneAndDefault(obj);
        if (pruned.length && opts.fieldValidation === 'Strict')
          throw badRequest(`strict decoding error: ${pruned.map((p) => `unknown field "${p}"`).join(', ')}`);
        if (opts.fieldValidation === 'Warn') warnings.push(...pruned.map((p) => `unknown field "${p}"`));
        errors.push(...compiled.validate(obj));
      }
    }
    if (type.kind === 'CustomResourceDefinition') errors.push(...this.crdErrors(obj));
    if (type.group === 'admissionregistration.k8s.io') errors.push(...admissionObjectErrors(type.kind, obj));
    if (errors.length) throw invalid(type.group, type.kind, name, errors);
    return warnings;
  }

  /** The ValidatingAdmissionPolicies bound to this request (admission-policy.ts); their warnings. */
  private validatingAdmission(
    type: ResourceType,
    operation: 'CREATE' | 'UPDATE' | 'DELETE',
    subresource: string | undefined,
    object: KubeObject | null,
    oldObject: KubeObject | null,
    opts: { dryRun: boolean; userInfo?: UserInfo },
  ): string[] {
    if (!opts.userInfo) return [];
    const named = object ?? oldObject;
    return validatingAdmission(this.storage, {
      operation,
      type,
      subresource,
      name: named?.metadata.name ?? '',
      namespace: named?.metadata.namespace as string | undefined,
      object: object && this.present(type, structuredClone(object)),
      oldObject,
      userInfo: opts.userInfo,
      dryRun: opts.dryRun,
    });
  }

  // -------------------------------------------------------------------------------------------
  // CustomResourceDefinitions: each created CRD serves its versions as new resource types.

  private readonly compiledSchemas = new Map<ResourceType, CompiledSchema>();

  private crdErrors(crd: KubeObject): FieldError[] {
    const errors: FieldError[] = [];
    const spec = isObject(crd.spec) ? crd.spec : {};
    const names = isObject(spec.names) ? spec.names : {};
    const group = typeof spec.group === 'string' ? spec.group : '';
    if (crd.metadata.name !== `${String(names.plural)}.${group}`)
      errors.push({
        field: 'metadata.name',
        reason: 'FieldValueInvalid',
        detail: `Invalid value: "${crd.metadata.name}": must be spec.names.plural+"."+spec.group`,
      });
    for (const key of ['plural', 'kind'])
      if (typeof names[key] !== 'string' || !names[key])
        errors.push({ field: `spec.names.${key}`, reason: 'FieldValueRequired', detail: 'Required value' });
    if (spec.scope !== 'Cluster' && spec.scope !== 'Namespaced')
      errors.push({
        field: 'spec.scope',
        reason: 'FieldValueNotSupported',
        detail: `Unsupported value: ${JSON.stringify(spec.scope ?? '')}: supported values: "Cluster", "Namespaced"`,
      });
    const versions = Array.isArray(spec.versions) ? (spec.versions as Json[]) : [];
    if (versions.length === 0)
      errors.push({
        field: 'spec.versions',
        reason: 'FieldValueInvalid',
        detail: 'Invalid value: null: must have exactly one version marked as storage version',
      });
    if (versions.filter((v) => v.storage === true).length !== 1)
      errors.push({
        field: 'spec.versions',
        reason: 'FieldValueInvalid',
        detail: `Invalid value: ${JSON.stringify(versions.map((v) => v.name))}: must have exactly one version marked as storage version`,
      });
    versions.forEach((v, i) => {
      const schema = isObject(v.schema) ? (v.schema.openAPIV3Schema as Schema | undefined) : undefined;
      const where = `spec.versions[${i}].schema.openAPIV3Schema`;
      if (!schema) {
        errors.push({
          field: where,
          reason: 'FieldValueRequired',
          detail: 'Required value: schemas are required',
        });
        return;
      }
      for (const p of structuralProblems(schema))
        errors.push({
          field: `spec.versions[${i}].schema.${p.split(':')[0]}`,
          reason: 'FieldValueInvalid',
          detail: p.slice(p.indexOf(':') + 2),
        });
      try {
        new CompiledSchema(schema);
      } catch (err) {
        errors.push({
          field: where,
          reason: 'FieldValueInvalid',
          detail: `Invalid value: "object": ${(err as Error).message}`,
        });
      }
    });
    return errors;
  }

  /** After a CRD is stored: mark it Established and serve its versions. */
  private afterCrdWrite(stored: KubeObject): KubeObject {
    const spec = stored.spec as Json;
    const names = spec.names as Json;
    const versions = spec.versions as Json[];
    const now = this.now();
    const status = {
      conditions: [
        {
          type: 'NamesAccepted',
          status: 'True',
          reason: 'NoConflicts',
          message: 'no conflicts found',
          lastTransitionTime: now,
        },
        {
          type: 'Established',
          status: 'True',
          reason: 'InitialNamesAccepted',
          message: 'the initial names have been accepted',
          lastTransitionTime: now,
        },
      ],
      acceptedNames: names,
      storedVersions: versions.filter((v) => v.storage === true).map((v) => v.name),
    };
    let current = stored;
    if (JSON.stringify(stored.status) !== JSON.stringify(status)) {
      current = this.storage.put(CRD_COLLECTION, { ...stored, status }, 'MODIFIED');
    }
    this.unregisterCrd(current);
    for (const v of versions) {
      if (v.served !== true) continue;
      const schema = (v.schema as Json).openAPIV3Schema as Schema;
      const subresources = isObject(v.subresources) ? v.subresources : {};
      const t: ResourceType = {
        group: String(spec.group),
        version: String(v.name),
        kind: String(names.kind),
        listKind: String(names.listKind ?? `${String(names.kind)}List`),
        plural: String(names.plural),
        singular: String(names.singular ?? String(names.kind).toLowerCase()),
        namespaced: spec.scope === 'Namespaced',
        shortNames: (names.shortNames as string[] | undefined) ?? [],
        categories: (names.categories as string[] | undefined) ?? [],
        verbs: ALL_VERBS,
        statusSubresource: isObject(subresources.status),
        schema,
        printerColumns: (v.additionalPrinterColumns as PrinterColumn[] | undefined) ?? [],
        custom: true,
      };
      this.compiledSchemas.set(t, new CompiledSchema(schema));
      this.types.set(`${t.group}/${t.version}/${t.plural}`, t);
    }
    return this.present(this.type('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!, current);
  }

  private unregisterCrd(crd: KubeObject): void {
    const spec = crd.spec as Json;
    const plural = (spec.names as Json).plural;
    for (const [key, t] of this.types) {
      if (t.custom && t.group === spec.group && t.plural === plural) {
        this.types.delete(key);
        this.compiledSchemas.delete(t);
      }
    }
    if (this.storage.get(CRD_COLLECTION, undefined, crd.metadata.name)) return;
    // The CRD is gone: so are its objects.
    for (const o of this.storage.list(`${String(spec.group)}/${String(plural)}`))
      this.storage.remove(`${String(spec.group)}/${String(plural)}`, o.metadata.namespace, o.metadata.name);
  }
}
