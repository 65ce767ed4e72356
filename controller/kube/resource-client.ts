// Requests on one cluster-scoped custom resource (knockgate.io/v1alpha1), through connection.ts
// (the requests client-node's CustomObjectsApi sent: same paths, fieldValidation=Strict, JSON merge
// patches, Background propagation), each with bounded retries (request.ts) and a one-line error
// naming the request.

import type { KubernetesListObject } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../api/types.js';
import { kubeRequest, MERGE_PATCH, type KubeTarget } from './connection.js';
import { KubeApiError } from './errors.js';
import { withRetries, type RetryPolicy } from './request.js';

export class ResourceClient<T> {
  constructor(
    private readonly kubeConfig: KubeTarget,
    /** "accessgrants" */
    readonly plural: string,
    /** "accessgrant", for messages */
    readonly singular: string,
    private readonly retry: RetryPolicy,
  ) {}

  /** The collection's URL path (for watches). */
  get path(): string {
    return `/apis/${GROUP}/${VERSION}/${this.plural}`;
  }

  private item(name: string): string {
    return `${this.path}/${encodeURIComponent(name)}`;
  }

  create(name: string, body: T): Promise<T> {
    return this.call(`create ${this.singular} ${name}`, () =>
      kubeRequest(this.kubeConfig, {
        method: 'POST',
        path: this.path,
        query: { fieldValidation: 'Strict' },
        body,
      }),
    );
  }

  /** The object as the server has it now, or undefined (404). */
  async get(name: string): Promise<T | undefined> {
    try {
      return await this.call(`get ${this.singular} ${name}`, () =>
        kubeRequest(this.kubeConfig, { method: 'GET', path: this.item(name) }),
      );
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** One list request, without retries (the informer spaces out its own). */
  list(): Promise<KubernetesListObject<T & { metadata: { name: string } }>> {
    return kubeRequest(this.kubeConfig, { method: 'GET', path: this.path });
  }

  mergePatch(name: string, patch: unknown): Promise<T> {
    return this.call(`patch ${this.singular} ${name}`, () =>
      kubeRequest(this.kubeConfig, {
        method: 'PATCH',
        path: this.item(name),
        query: { fieldValidation: 'Strict' },
        body: patch,
        contentType: MERGE_PATCH,
      }),
    );
  }

  mergePatchStatus(name: string, patch: unknown): Promise<T> {
    return this.call(`patch ${this.singular} ${name} status`, () =>
      kubeRequest(this.kubeConfig, {
        method: 'PATCH',
        path: `${this.item(name)}/status`,
        query: { fieldValidation: 'Strict' },
        body: patch,
        contentType: MERGE_PATCH,
      }),
    );
  }

  /** Delete; with `preconditions`, only that incarnation (uid) at that resourceVersion. */
  delete(name: string, preconditions?: { uid?: string; resourceVersion?: string }): Promise<T> {
    return this.call(`delete ${this.singular} ${name}`, () =>
      kubeRequest(this.kubeConfig, {
        method: 'DELETE',
        path: this.item(name),
        query: { propagationPolicy: 'Background' },
        ...(preconditions ? { body: { preconditions } } : {}),
      }),
    );
  }

  private call(what: string, fn: () => Promise<unknown>): Promise<T> {
    return withRetries(what, fn, this.retry) as Promise<T>;
  }
}
