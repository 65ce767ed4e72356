// SelfSubjectAccessReview (authorization.k8s.io/v1), what `kubectl auth can-i` creates: answers
// whether the caller's own RBAC rules allow a request, without making it.

import type { Authorizer, RbacUser } from './rbac.js';
import { badRequest } from './status.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** Non-resource URLs every authenticated user may GET (system:discovery, system:public-info-viewer). */
const DISCOVERY_PATHS = [/^\/api(\/.*)?$/, /^\/apis(\/.*)?$/, /^\/openapi(\/.*)?$/, /^\/version\/?$/];

export function selfSubjectAccessReview(authorizer: Authorizer, user: RbacUser, body: unknown): Json {
  if (!isObject(body) || !isObject(body.spec)) throw badRequest('SelfSubjectAccessReview: spec is required');
  const spec = body.spec;
  let allowed: boolean;
  if (isObject(spec.resourceAttributes)) {
    const a = spec.resourceAttributes;
    allowed = authorizer.allows(user, {
      verb: str(a.verb),
      group: str(a.group),
      resource: str(a.resource),
      subresource: str(a.subresource) || undefined,
      namespace: str(a.namespace) || undefined,
      name: str(a.name) || undefined,
    });
  } else if (isObject(spec.nonResourceAttributes)) {
    const a = spec.nonResourceAttributes;
    allowed = str(a.verb) === 'get' && DISCOVERY_PATHS.some((re) => re.test(str(a.path)));
  } else {
    throw badRequest('SelfSubjectAccessReview: exactly one of resourceAttributes or nonResourceAttributes');
  }
  return {
    kind: 'SelfSubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec,
    status: allowed
      ? { allowed: true, reason: `allowed by the emulator's rules for "${user.name}"` }
      : { allowed: false },
  };
}
