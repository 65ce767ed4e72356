// Requests on one cluster-scoped custom resource (knockgate.io/v1alpha1), through client-node's
// CustomObjectsApi, each with bounded retries (request.ts) and a one-line error naming the request.

import {
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesListObject,
} from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../api/types.js';
import { KubeApiError } from './errors.js';
import { withRetries, type RetryPolicy } from './request.js';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export class ResourceClient<T> {
  private readonly api: CustomObjectsApi;
  private readonly base: { group: string; version: string; plural: string };

  constructor(
    kubeConfig: KubeConfig,
    /** "accessgrants" */
    readonly plural: string,
    /** "accessgrant", for messages */
    readonly singular: string,
    private readonly retry: RetryPolicy,
  ) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.base = { group: GROUP, version: VERSION, plural };
  }

  /** The collection's URL path (for watches). */
  get path(): string {
    return `/apis/${GROUP}/${VERSION}/${this.plural}`;
  }

  create(name: string, body: T): Promise<T> {
    return this.call(`create ${this.singular} ${name}`, () =>
      this.api.createClusterCustomObject({ ...this.base, body, fieldValidation: 'Strict' }),
    );
  }

  /** The object as the server has it now, or undefined (404). */
  async get(name: string): Promise<T | undefined> {
    try {
      return await this.call(`get ${this.singular} ${name}`, () =>
        this.api.getClusterCustomObject({ ...this.base, name }),
      );
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** One list request, without retries (the informer spaces out its own). */
  list(): Promise<KubernetesListObject<T & { metadata: { name: string } }>> {
    return this.api.listClusterCustomObject({ ...this.base }) as Promise<
      KubernetesListObject<T & { metadata: { name: string } }>
    >;
  }

  mergePatch(name: string, patch: unknown): Promise<T> {
    return this.call(`patch ${this.singular} ${name}`, () =>
      this.api.patchClusterCustomObject(
        { ...this.base, name, body: patch, fieldValidation: 'Strict' },
        MERGE_PATCH,
      ),
    );
  }

  mergePatchStatus(name: string, patch: unknown): Promise<T> {
    return this.call(`patch ${this.singular} ${name} status`, () =>
      this.api.patchClusterCustomObjectStatus(
        { ...this.base, name, body: patch, fieldValidation: 'Strict' },
        MERGE_PATCH,
      ),
    );
  }

  /** Delete; with `preconditions`, only that incarnation (uid) at that resourceVersion. */
  delete(name: string, preconditions?: { uid?: string; resourceVersion?: string }): Promise<T> {
    return this.call(`delete ${this.singular} ${name}`, () =>
      this.api.deleteClusterCustomObject({
        ...this.base,
        name,
        propagationPolicy: 'Background',
        body: preconditions ? { preconditions } : undefined,
      }),
    );
  }

  private call(what: string, fn: () => Promise<unknown>): Promise<T> {
    return withRetries(what, fn, this.retry) as Promise<T>;
  }
}
