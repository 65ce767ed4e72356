// The coordination.k8s.io/v1 Lease behind leader election, read and written as plain JSON through
// client-node's CustomObjectsApi (which passes the body through untouched), so MicroTime fields go
// out as the six-digit strings the API server accepts (microtime.ts). Writes carry the read
// resourceVersion: two candidates racing for one Lease get one 200 and one 409.

import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { KubeApiError, toKubeApiError } from '../kube/errors.js';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string; uid?: string };
  spec: LeaseSpec;
}

const BASE = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' } as const;

export class LeaseClient {
  private readonly api: CustomObjectsApi;

  constructor(
    kubeConfig: KubeConfig,
    readonly namespace: string,
    readonly name: string,
  ) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  get where(): string {
    return `lease ${this.namespace}/${this.name}`;
  }

  /** The Lease, or undefined when it does not exist. */
  async get(): Promise<Lease | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject({
        ...BASE,
        namespace: this.namespace,
        name: this.name,
      })) as Lease;
    } catch (raw) {
      const err = toKubeApiError(`get ${this.where}`, raw);
      if (err.status === 404) return undefined;
      throw err;
    }
  }

  /** Create the Lease; a 409 (someone else created it first) is thrown as a KubeApiError. */
  async create(spec: LeaseSpec): Promise<Lease> {
    const body: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace },
      spec,
    };
    try {
      return (await this.api.createNamespacedCustomObject({
        ...BASE,
        namespace: this.namespace,
        body,
      })) as Lease;
    } catch (raw) {
      throw toKubeApiError(`create ${this.where}`, raw);
    }
  }

  /** Replace the Lease's spec if it is still at `resourceVersion` (409 otherwise). */
  async replace(resourceVersion: string | undefined, spec: LeaseSpec): Promise<Lease> {
    const body: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace, resourceVersion },
      spec,
    };
    try {
      return (await this.api.replaceNamespacedCustomObject({
        ...BASE,
        namespace: this.namespace,
        name: this.name,
        body,
      })) as Lease;
    } catch (raw) {
      throw toKubeApiError(`update ${this.where}`, raw);
    }
  }
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && (err.status === 409 || err.reason === 'AlreadyExists');
}
