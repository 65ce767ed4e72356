// The seams between the sniffer, the reconcilers and where grants live.
//
// GrantStore is implemented by the local state-dir store (standalone) and by the Kubernetes store;
// the sniffer and the reconcilers never know which one they use. ReplayStore records used SPA
// packets (and used one-time knock sequences) so that each opens at most once.

import type { AccessGrant, AccessGrantStatus } from './types.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface GrantEvent {
  type: WatchEventType;
  grant: AccessGrant;
}

/** Thrown by create() when a grant of that name exists (HTTP 409 on Kubernetes). */
export class AlreadyExistsError extends Error {
  constructor(readonly grantName: string) {
    super(`accessgrant ${grantName} already exists`);
  }
}

/** Thrown when the named grant does not exist (HTTP 404 on Kubernetes). */
export class NotFoundError extends Error {
  constructor(readonly grantName: string) {
    super(`accessgrant ${grantName} not found`);
  }
}

export interface GrantStore {
  /** Create a new grant. Throws AlreadyExistsError when the name is taken. */
  create(grant: AccessGrant): Promise<AccessGrant>;
  /**
   * Push a live grant's expiresAt later (a repeated knock), or, when the name holds an
   * Expired/Revoked/Failed one, store `grant` as a new grant (never a lock-out): the local stores
   * replace it under the same name; the Kubernetes store, whose sniffer may not delete, uses the
   * next free generation of the name and leaves the history entry to the controller. Creates it
   * when absent. Resolves to the grant as stored (its name may be a generation of grant's).
   */
  extend(grant: AccessGrant): Promise<AccessGrant>;
  get(name: string): Promise<AccessGrant | undefined>;
  list(): Promise<AccessGrant[]>;
  /** Calls `onEvent` for every change from now on; returns a function that stops the watch. */
  watch(onEvent: (event: GrantEvent) => void): () => void;
  /** Merge `status` into the grant's status (maps such as status.nodes merge key by key). */
  updateStatus(name: string, status: AccessGrantStatus): Promise<AccessGrant>;
  delete(name: string): Promise<void>;
}

export type ClaimResult = 'claimed' | 'replay';

export interface ReplayStore {
  /**
   * Record `digest` (lowercase hex of the exact packet text) as used until `expiresAt`.
   * Returns 'replay' when it was already recorded. Must be atomic across every sniffer that shares
   * the store: two concurrent claims of one digest yield exactly one 'claimed'.
   * Throws when the store cannot answer: the caller then refuses the packet (fail closed).
   */
  claim(digest: string, expiresAt: Date, policy?: string): Promise<ClaimResult>;
}
