// KubeGrantStore: the GrantStore of the Kubernetes roles, over AccessGrant custom objects.
//
// Writes go to the API server and are authoritative there:
// - create: POST; 409 → AlreadyExistsError, 422 → GrantValidationError with the server's field path.
// - extend: find the live grant of the request among its generations (generations.ts: the
//   deterministic name, then <name>.1, <name>.2, ... read one by one with get, never listed), then a
//   merge patch of spec.expiresAt/ports carrying its resourceVersion (optimistic concurrency: a 409
//   means someone changed it meanwhile, so read again and retry). A generation held by a history
//   entry (Expired/Revoked/Failed), by a grant being deleted or by another node's grant is passed
//   over; the first free one gets a new grant (never a lock-out). History entries are never deleted
//   here: the controller deletes them when their retention ends, so the sniffer needs no delete.
//   The controller may free a generation below a live one: a knock then creates a second live grant
//   for the same request, harmless (the firewalls take the union) and only until the older expires.
// - updateStatus: a merge patch of the status subresource touching only the keys given (each agent
//   its own status.nodes entry, so agents never conflict). Conditions are a list, which a merge patch
//   would replace wholesale, so an update with conditions reads, merges by type and patches with the
//   resourceVersion.
// - delete: DELETE (404 → NotFoundError).
// Reads (get, list) and watch come from an informer (informer.ts) started on first use, so a
// component that only creates grants (the sniffer) never lists or watches them. A mutation resolves
// once the informer shows it (bounded wait), so a store's own writes are visible to get()/list().
//
// As on the local store, create and extend ignore `status`, and grants are checked (checkGrant)
// before anything is sent. Requests are retried on 429/5xx/refused connections (request.ts); a
// create whose first answer was lost may then find its own grant and report AlreadyExistsError,
// which callers already handle by extending.
//
// RBAC this needs: create (create); get, patch and create (extend); patch on accessgrants/status
// (updateStatus); list and watch (get, list, watch); delete (delete).

import type { KubeTarget } from './connection.js';
import { systemClock, type Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import { AlreadyExistsError, NotFoundError, type GrantEvent, type GrantStore } from '../../api/store.js';
import type { AccessGrant, AccessGrantStatus } from '../../api/types.js';
import { expiresAtMs, isLive, isTerminal } from '../grants/phase.js';
import { expiredStatus, mergeStatus } from '../grants/status.js';
import { checkGrantName, GrantValidationError, unionPorts, validGrantCopy } from '../grants/validate.js';
import { GenerationsExhaustedError, generationName, sameRequest } from './generations.js';
import { KubeApiError } from './errors.js';
import { KubeInformer, type CachedObject } from './informer.js';
import { KUBE_STORE_DEFAULTS } from './limits.js';
import { ResourceClient } from './resource-client.js';

export interface KubeStoreTuning {
  /** Informer: first and longest wait between list/watch attempts, relist period (0 = none). */
  watchBackoffInitialMs?: number;
  watchBackoffMaxMs?: number;
  resyncIntervalMs?: number;
  /** Single requests: attempts on 429/5xx/refused, first and longest wait between them. */
  requestAttempts?: number;
  requestBackoffInitialMs?: number;
  requestBackoffMaxMs?: number;
  initialSyncTimeoutMs?: number;
  cacheCatchUpTimeoutMs?: number;
  conflictAttempts?: number;
  /** How many generations of a grant name extend tries (generations.ts). */
  maxGenerations?: number;
}

export interface KubeGrantStoreOptions extends KubeStoreTuning {
  kubeConfig: KubeTarget;
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
}

type CachedGrant = AccessGrant & CachedObject;

/** Server-owned metadata a client never sends on create. */
const SERVER_METADATA = [
  'uid',
  'resourceVersion',
  'creationTimestamp',
  'generation',
  'deletionTimestamp',
] as const;

export class KubeGrantStore implements GrantStore {
  private readonly client: ResourceClient<AccessGrant>;
  private readonly informer: KubeInformer<CachedGrant>;
  private readonly clock: Clock;
  private readonly tuning: Required<
    Pick<
      KubeStoreTuning,
      'initialSyncTimeoutMs' | 'cacheCatchUpTimeoutMs' | 'conflictAttempts' | 'maxGenerations'
    >
  >;

  constructor(opts: KubeGrantStoreOptions) {
    this.clock = opts.clock ?? systemClock;
    this.tuning = {
      initialSyncTimeoutMs: opts.initialSyncTimeoutMs ?? KUBE_STORE_DEFAULTS.initialSyncTimeoutMs,
      cacheCatchUpTimeoutMs: opts.cacheCatchUpTimeoutMs ?? KUBE_STORE_DEFAULTS.cacheCatchUpTimeoutMs,
      conflictAttempts: opts.conflictAttempts ?? KUBE_STORE_DEFAULTS.conflictAttempts,
      maxGenerations: opts.maxGenerations ?? KUBE_STORE_DEFAULTS.maxGenerations,
    };
    this.client = new ResourceClient<AccessGrant>(opts.kubeConfig, 'accessgrants', 'accessgrant', {
      clock: this.clock,
      attempts: opts.requestAttempts,
      initialMs: opts.requestBackoffInitialMs,
      maxMs: opts.requestBackoffMaxMs,
      random: opts.random,
    });
    this.informer = new KubeInformer<CachedGrant>({
      kubeConfig: opts.kubeConfig,
      path: this.client.path,
      list: () => this.client.list(),
      resource: 'accessgrants',
      clock: this.clock,
      logger: opts.logger,
      backoffInitialMs: opts.watchBackoffInitialMs,
      backoffMaxMs: opts.watchBackoffMaxMs,
      resyncIntervalMs: opts.resyncIntervalMs,
      random: opts.random,
    });
  }

  /** The informer behind get/list/watch (for health checks and tests). */
  get cache(): KubeInformer<CachedGrant> {
    return this.informer;
  }

  // --- reads -----------------------------------------------------------------------------------

  async get(name: string): Promise<AccessGrant | undefined> {
    await this.synced();
    const grant = this.informer.get(name);
    return grant && structuredClone(grant);
  }

  async list(): Promise<AccessGrant[]> {
    await this.synced();
    return this.informer.list().map((g) => structuredClone(g));
  }

  /**
   * Changes after the informer's first list (what exists by then is state: read it with list()).
   * After a relist (410, resync) each object that changed meanwhile gets one event with its latest
   * state; one deleted meanwhile gets DELETED with the last state this store saw.
   */
  watch(onEvent: (event: GrantEvent) => void): () => void {
    this.informer.start();
    return this.informer.subscribe((e) => onEvent({ type: e.type, grant: structuredClone(e.object) }));
  }

  // --- mutations -------------------------------------------------------------------------------

  async create(grant: AccessGrant): Promise<AccessGrant> {
    const fresh = prepare(grant);
    const created = await this.createPrepared(fresh);
    await this.catchUp(created);
    return structuredClone(created);
  }

  async extend(grant: AccessGrant): Promise<AccessGrant> {
    const fresh = prepare(grant);
    const name = fresh.metadata.name;
    for (let attempt = 0; attempt < this.tuning.conflictAttempts; attempt++) {
      const slot = await this.findGeneration(fresh);
      try {
        let result: AccessGrant;
        if (slot.kind === 'free') {
          const created = structuredClone(fresh);
          created.metadata.name = slot.name;
          result = await this.createPrepared(created);
        } else {
          const current = slot.grant;
          const later = Math.max(expiresAtMs(current), expiresAtMs(fresh));
          const ports = unionPorts(current.spec.ports, fresh.spec.ports);
          if (later === expiresAtMs(current) && ports.length === current.spec.ports.length)
            return structuredClone(current);
          result = await this.client.mergePatch(current.metadata.name, {
            metadata: { resourceVersion: current.metadata.resourceVersion },
            spec: { expiresAt: new Date(later).toISOString(), ports },
          });
        }
        await this.catchUp(result);
        return structuredClone(result);
      } catch (err) {
        // Someone else changed or created it meanwhile: read again and retry.
        if (err instanceof AlreadyExistsError || isConflict(err)) continue;
        rethrow(err, slot.kind === 'free' ? slot.name : slot.grant.metadata.name);
      }
    }
    throw new KubeApiError(
      `extend accessgrant ${name}: still conflicting after ${this.tuning.conflictAttempts} attempts`,
      409,
      'Conflict',
      undefined,
    );
  }

  /**
   * The live grant `fresh` extends, or the first free generation of its name. Throws when every
   * generation up to the bound is taken (history entries the controller has not deleted yet).
   */
  private async findGeneration(
    fresh: AccessGrant,
  ): Promise<{ kind: 'free'; name: string } | { kind: 'live'; grant: AccessGrant }> {
    const base = fresh.metadata.name;
    for (let g = 0; g < this.tuning.maxGenerations; g++) {
      const name = generationName(base, g);
      const current = await this.client.get(name).catch((err: unknown) => rethrow(err, name));
      if (!current) return { kind: 'free', name };
      if (current.metadata.deletionTimestamp || isTerminal(current) || !sameRequest(current, fresh)) continue;
      return { kind: 'live', grant: current };
    }
    throw new GenerationsExhaustedError(base, this.tuning.maxGenerations);
  }

  async updateStatus(name: string, status: AccessGrantStatus): Promise<AccessGrant> {
    checkGrantName(name);
    let result: AccessGrant | undefined;
    if (!status.conditions) {
      // Only our own keys: no read, no resourceVersion, no conflict with other agents.
      result = await this.client
        .mergePatchStatus(name, { status: ownKeysPatch(status) })
        .catch((err: unknown) => rethrow(err, name));
    } else {
      result = await this.readModifyWriteStatus(name, (current) => ({
        ...ownKeysPatch(status),
        conditions: mergeStatus(current.status, status).conditions,
      }));
      if (!result) throw new NotFoundError(name);
    }
    await this.catchUp(result);
    return structuredClone(result);
  }

  /**
   * Mark a grant Expired only if it is still the same grant (uid), not terminal and due at `now`
   * (ConditionalExpiry of the expiry engine): a grant extended or replaced meanwhile is left alone.
   */
  async expireIfDue(name: string, uid: string | undefined, now: number): Promise<AccessGrant | undefined> {
    checkGrantName(name);
    const update = expiredStatus(now);
    const result = await this.readModifyWriteStatus(name, (current) => {
      if (current.metadata.uid !== uid || isTerminal(current) || isLive(current, now)) return undefined;
      return { ...ownKeysPatch(update), conditions: mergeStatus(current.status, update).conditions };
    });
    if (result) await this.catchUp(result);
    return result && structuredClone(result);
  }

  async delete(name: string): Promise<void> {
    checkGrantName(name);
    const gone = await this.client.delete(name).catch((err: unknown) => rethrow(err, name));
    // With finalizers the object stays (deletionTimestamp set) until they are removed.
    if (this.informer.isStarted && !gone.metadata.finalizers?.length)
      await this.informer.waitForGone(name, gone.metadata.uid, this.tuning.cacheCatchUpTimeoutMs);
  }

  /** Stop the informer (watch connection, timers). */
  async close(): Promise<void> {
    await this.informer.stop();
  }

  // --- internals -------------------------------------------------------------------------------

  private async synced(): Promise<void> {
    this.informer.start();
    await this.informer.waitForSync(this.tuning.initialSyncTimeoutMs);
  }

  private async createPrepared(fresh: AccessGrant): Promise<AccessGrant> {
    return this.client
      .create(fresh.metadata.name, fresh)
      .catch((err: unknown) => rethrow(err, fresh.metadata.name));
  }

  /**
   * Read the grant, let `compute` build the status patch (undefined = nothing to do), and patch it
   * with the read resourceVersion; retry on 409. Resolves undefined when there was nothing to do;
   * throws NotFoundError when the grant does not exist.
   */
  private async readModifyWriteStatus(
    name: string,
    compute: (current: AccessGrant) => Record<string, unknown> | undefined,
  ): Promise<AccessGrant | undefined> {
    for (let attempt = 0; attempt < this.tuning.conflictAttempts; attempt++) {
      const current = await this.client.get(name).catch((err: unknown) => rethrow(err, name));
      if (!current) throw new NotFoundError(name);
      const status = compute(current);
      if (!status) return undefined;
      try {
        return await this.client.mergePatchStatus(name, {
          metadata: { resourceVersion: current.metadata.resourceVersion },
          status,
        });
      } catch (err) {
        if (isConflict(err)) continue;
        rethrow(err, name);
      }
    }
    throw new KubeApiError(
      `update accessgrant ${name} status: still conflicting after ${this.tuning.conflictAttempts} attempts`,
      409,
      'Conflict',
      undefined,
    );
  }

  /** Wait (bounded) until the informer, if running, shows `written`: read-your-writes for get/list. */
  private async catchUp(written: AccessGrant): Promise<void> {
    if (!this.informer.isStarted) return;
    await this.informer.waitForVersion(written.metadata.resourceVersion, this.tuning.cacheCatchUpTimeoutMs);
  }
}

/** A validated copy of `grant` to send: no status, no server-owned metadata, canonical ports. */
function prepare(grant: AccessGrant): AccessGrant {
  const copy = validGrantCopy(grant);
  for (const key of SERVER_METADATA) delete copy.metadata[key];
  return copy;
}

/**
 * The status keys of `update` as a merge patch. A map entry (status.nodes[node], ...) replaces the
 * old entry as a whole, as mergeStatus does: optional fields it leaves out are sent as null, which a
 * merge patch deletes (otherwise an old `message` would survive a later Applied).
 */
function ownKeysPatch(update: AccessGrantStatus): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  if (update.phase !== undefined) patch.phase = update.phase;
  if (update.message !== undefined) patch.message = update.message;
  if (update.nodes)
    patch.nodes = Object.fromEntries(
      Object.entries(update.nodes).map(([k, v]) => [k, { message: null, ...v }]),
    );
  if (update.securityGroups)
    patch.securityGroups = Object.fromEntries(
      Object.entries(update.securityGroups).map(([k, v]) => [k, { ruleId: null, message: null, ...v }]),
    );
  return patch;
}

function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 409;
}

/** The store's errors for API answers that mean something to callers. */
function rethrow(err: unknown, name: string): never {
  if (err instanceof KubeApiError) {
    if (err.status === 404) throw new NotFoundError(name);
    if (err.status === 409 && err.reason === 'AlreadyExists') throw new AlreadyExistsError(name);
    if (err.status === 422) throw new GrantValidationError(err.message);
  }
  throw err;
}
