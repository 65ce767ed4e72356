// Shape checks for an AccessGrant read back from storage or handed to a store: a grant that fails
// them is never opened (fail closed). Messages name the field; callers add the file or object name.

import { isSingleHost } from '../../api/addresses.js';
import { formatPort, parsePort } from '../../api/ports.js';
import { BOUNDS } from '../../api/limits.js';
import { API_VERSION, type AccessGrant } from '../../api/types.js';

/** Kubernetes DNS-1123 subdomain: what a grant name (and so a file name) may be. */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const MAX_NAME_LENGTH = 253;
const METHODS = new Set(['knock', 'spa', 'manual']);
const PHASES = new Set(['Pending', 'Active', 'Expired', 'Failed', 'Revoked']);

export class GrantValidationError extends Error {}

/** Throws GrantValidationError unless `name` is a DNS-1123 subdomain. */
export function checkGrantName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length > MAX_NAME_LENGTH || !DNS1123_SUBDOMAIN.test(name))
    throw new GrantValidationError(`metadata.name ${JSON.stringify(name)} is not a lowercase DNS-1123 name`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Throws GrantValidationError (naming the field) unless `value` is a well-formed AccessGrant. */
export function checkGrant(value: unknown): AccessGrant {
  if (!isObject(value)) throw new GrantValidationError('not a JSON object');
  if (value.apiVersion !== API_VERSION || value.kind !== 'AccessGrant')
    throw new GrantValidationError(`not a ${API_VERSION} AccessGrant`);
  const meta = value.metadata;
  if (!isObject(meta)) throw new GrantValidationError('metadata missing');
  checkGrantName(meta.name);
  const spec = value.spec;
  if (!isObject(spec)) throw new GrantValidationError('spec missing');
  if (typeof spec.source !== 'string' || !isSingleHost(spec.source))
    throw new GrantValidationError(`spec.source ${JSON.stringify(spec.source)} is not a single host`);
  if (!Array.isArray(spec.ports) || spec.ports.length === 0 || spec.ports.length > BOUNDS.maxPortsPerGrant)
    throw new GrantValidationError(`spec.ports must list 1-${BOUNDS.maxPortsPerGrant} ports`);
  for (const port of spec.ports) {
    try {
      if (typeof port !== 'string') throw new Error(`invalid port ${JSON.stringify(port)}`);
      parsePort(port);
    } catch (err) {
      throw new GrantValidationError(`spec.ports: ${(err as Error).message}`);
    }
  }
  if (typeof spec.expiresAt !== 'string' || Number.isNaN(Date.parse(spec.expiresAt)))
    throw new GrantValidationError(`spec.expiresAt ${JSON.stringify(spec.expiresAt)} is not a date-time`);
  if (typeof spec.method !== 'string' || !METHODS.has(spec.method))
    throw new GrantValidationError(`spec.method ${JSON.stringify(spec.method)} is not knock, spa or manual`);
  if (value.status !== undefined) {
    if (!isObject(value.status)) throw new GrantValidationError('status is not an object');
    const phase = value.status.phase;
    if (phase !== undefined && (typeof phase !== 'string' || !PHASES.has(phase)))
      throw new GrantValidationError(`status.phase ${JSON.stringify(phase)} is unknown`);
  }
  return value as unknown as AccessGrant;
}

/** Ports in canonical "22/tcp" form, de-duplicated, old ones first. */
export function unionPorts(old: string[], added: string[]): string[] {
  return [...new Set([...old, ...added].map((p) => formatPort(parsePort(p))))];
}

/**
 * What a store keeps of a grant handed to it: a checked copy without status, ports canonical.
 * Throws GrantValidationError naming the grant and the field.
 */
export function validGrantCopy(grant: AccessGrant): AccessGrant {
  const copy = structuredClone(grant);
  delete copy.status;
  try {
    checkGrant(copy);
  } catch (err) {
    const name = (copy as Partial<AccessGrant>).metadata?.name;
    throw new GrantValidationError(`accessgrant ${String(name)}: ${(err as Error).message}`);
  }
  copy.spec.ports = unionPorts([], copy.spec.ports);
  return copy;
}
