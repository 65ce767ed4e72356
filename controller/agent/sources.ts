// What the agent reads and writes, as narrow interfaces: informer caches of AccessGrants,
// KnockPolicies and its own Node (controller/kube/informer.ts implements ObjectCache), and a writer of this node's
// own entry in a grant's status.nodes. Logic tests drive the agent through in-memory versions.

import type { InformerEvent } from '../kube/informer.js';
import type { NodeStatus } from '../../api/types.js';

export interface ObjectCache<T> {
  /** True once the first complete list is in (it stays true while later lists/watches fail). */
  readonly isSynced: boolean;
  get(name: string): T | undefined;
  list(): T[];
  /** Resolve once the first list is in; reject after `timeoutMs` (or when stopped). */
  waitForSync(timeoutMs: number): Promise<void>;
  /** Changes after the first list. */
  subscribe(listener: (event: InformerEvent<T>) => void): () => void;
}

export interface NodeStatusWriter {
  /** Merge-patch status.nodes[node] of grant `name` (only that key). Throws when the API cannot. */
  patch(name: string, node: string, status: NodeStatus): Promise<void>;
}

/** What the agent reads of its own Node object: its labels (Selector-mode policies). */
export interface NodeObject {
  metadata: { name: string; labels?: Record<string, string>; uid?: string; resourceVersion?: string };
}

/** Thrown by a NodeStatusWriter when the grant is gone: nothing to report any more. */
export class GrantGoneError extends Error {}
