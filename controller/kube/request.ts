// One Kubernetes API request with bounded retries: a 429 waits for the server's Retry-After (capped),
// a 5xx, a refused/reset connection or a request that timed out waits with exponential backoff, and
// after `attempts` tries the last error is thrown. Every other failure (404, 409, 422, 403, ...) is
// thrown at once, as a KubeApiError that names the request.
//
// Every request has a deadline (applyRequestTimeout): an API server or proxy that accepts the
// connection and never answers would otherwise hang the caller forever (client-node sets none).
// Watches are long-lived and excluded; the informer detects a silent watch itself (paced-watch.ts).
// The deadline is kept per target (a KubeConnection of connection.ts, or a client-node KubeConfig):
// connection.ts's requests read it, and a KubeConfig's typed API clients get it through its
// authentication hook.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../../api/clock.js';
import { Backoff, sleep } from './backoff.js';
import { isRetryable, toKubeApiError } from './errors.js';
import { KUBE_STORE_DEFAULTS } from './limits.js';

export interface RetryPolicy {
  clock: Clock;
  attempts?: number;
  initialMs?: number;
  maxMs?: number;
  random?: () => number;
}

export async function withRetries<T>(what: string, fn: () => Promise<T>, policy: RetryPolicy): Promise<T> {
  const attempts = policy.attempts ?? KUBE_STORE_DEFAULTS.requestAttempts;
  const maxMs = policy.maxMs ?? KUBE_STORE_DEFAULTS.requestBackoffMaxMs;
  const backoff = new Backoff({
    initialMs: policy.initialMs ?? KUBE_STORE_DEFAULTS.requestBackoffInitialMs,
    maxMs,
    random: policy.random,
  });
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (raw) {
      const err = toKubeApiError(what, raw);
      if (!isRetryable(err) || attempt >= attempts) throw err;
      await sleep(policy.clock, Math.min(maxMs, err.retryAfterMs ?? backoff.next()));
    }
  }
}

/** The request timeout a target was given (for tests and messages). */
const timeouts = new WeakMap<object, number>();

export function requestTimeoutOf(target: object): number | undefined {
  return timeouts.get(target);
}

/**
 * Give every request of every API client made from `kubeConfig` (makeApiClient: CustomObjectsApi,
 * CoreV1Api, ...) a deadline of `timeoutMs`, from sending the request to the end of the answer's
 * body. A request past it is aborted and fails as a retryable KubeApiError (status 0, ETIMEDOUT)
 * naming the request. Watches (client-node's Watch) do not go through this path and keep no
 * deadline. Idempotent: applying it again changes the deadline. It runs on the real clock, like a
 * socket timeout: it bounds real network I/O, not product time. Returns `kubeConfig`.
 */
export function applyRequestTimeout<K extends object>(
  kubeConfig: K,
  timeoutMs: number = KUBE_STORE_DEFAULTS.requestTimeoutMs,
): K {
  if (!(Number.isInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= 3_600_000))
    throw new Error(`request timeout ${timeoutMs} ms: want 1 ms to 1 h`);
  const first = !timeouts.has(kubeConfig);
  timeouts.set(kubeConfig, timeoutMs);
  if (!first || !isClientNodeConfig(kubeConfig)) return kubeConfig;
  // Every API client authenticates each request through the KubeConfig (its only auth method),
  // which is the one hook client-node gives on every request context: the deadline is set there.
  const kc: KubeConfig = kubeConfig;
  const authenticate = kc.applySecurityAuthentication.bind(kc);
  kc.applySecurityAuthentication = async (context) => {
    await authenticate(context);
    const ms = timeouts.get(kubeConfig)!;
    const deadline = AbortSignal.timeout(ms);
    const own = context.getSignal();
    context.setSignal(own ? AbortSignal.any([own, deadline]) : deadline);
  };
  return kubeConfig;
}

function isClientNodeConfig(target: object): target is KubeConfig {
  return typeof (target as Partial<KubeConfig>).applySecurityAuthentication === 'function';
}
