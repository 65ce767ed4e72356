// Generations of a grant name: where a repeated knock or SPA request finds its live grant when the
// deterministic name (controller/grants/build.ts) is taken by something it must not touch.
//
// The sniffer may not delete grants (least privilege: a compromised sniffer could otherwise remove
// any grant, or a history entry before its audit retention ends), and a ValidatingAdmissionPolicy
// lets it patch only its own node's live grants (controller/sniffer/admission-policy.ts). So when
// the name holds a history entry (Expired/Revoked/Failed), a grant being deleted, or another node's
// grant of a shared name, the request goes to the next generation: <name>.1, <name>.2, ... Without
// list rights the sniffer finds them by get, one after the other, from generation 0; the first
// free generation takes a new grant, the first live grant of the same request is extended.
//
// The controller deletes history entries when their retention ends, and keeps at most
// HISTORY_PER_NAME of them per name (grant-reconciler.ts), so the walk stays short. A freed
// generation below a live one makes the next request create a second live grant instead of
// extending the first: harmless (firewalls take the union; the older one simply expires).

import type { AccessGrant } from '../../api/types.js';
import { MAX_NAME_LENGTH } from '../grants/validate.js';

/** History entries the controller keeps per grant name, below KUBE_STORE_DEFAULTS.maxGenerations. */
export const HISTORY_PER_NAME = 8;

/** Generation g of `base`: g = 0 is the name itself, then `<base>.<g>` (shortened to fit 253). */
export function generationName(base: string, generation: number): string {
  if (!Number.isInteger(generation) || generation < 0) throw new RangeError(`generation ${generation}`);
  if (generation === 0) return base;
  const suffix = `.${generation}`;
  if (base.length + suffix.length <= MAX_NAME_LENGTH) return `${base}${suffix}`;
  // A DNS-1123 subdomain's labels end alphanumeric: drop what the cut leaves dangling.
  const head = base.slice(0, MAX_NAME_LENGTH - suffix.length).replace(/[-.]+$/, '');
  return `${head}${suffix}`;
}

/**
 * The base name of a generation name (`<base>.<g>` → base), or the name itself. Knock and SPA base
 * names end in hex or a node name; a node name ending in `.<digits>` is read as a generation, which
 * only groups it with another name for the history bound, never for writes (sameRequest).
 */
export function baseName(name: string): string {
  const m = /^(.+)\.([1-9]\d*)$/.exec(name);
  return m ? m[1] : name;
}

/**
 * Whether `stored` is a grant of the same request as `fresh`: same source, policy, method and
 * observer. A generation name may collide with another request's name (a shortened name, a node
 * name with a dot): such a grant is passed over, never extended.
 */
export function sameRequest(stored: AccessGrant, fresh: AccessGrant): boolean {
  return (
    stored.spec.source === fresh.spec.source &&
    stored.spec.policyRef?.name === fresh.spec.policyRef?.name &&
    stored.spec.method === fresh.spec.method &&
    stored.spec.observedBy === fresh.spec.observedBy
  );
}

/** Every generation up to the bound is taken: one line, nothing opened. */
export class GenerationsExhaustedError extends Error {
  constructor(base: string, generations: number) {
    super(
      `accessgrant ${base}: its ${generations} generations (${base} to ${generationName(base, generations - 1)}) all hold history entries or other nodes' grants; the controller deletes history entries when their retention ends`,
    );
  }
}
