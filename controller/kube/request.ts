// One Kubernetes API request with bounded retries: a 429 waits for the server's Retry-After (capped),
// a 5xx or a refused/reset connection waits with exponential backoff, and after `attempts` tries the
// last error is thrown. Every other failure (404, 409, 422, 403, ...) is thrown at once, as a
// KubeApiError that names the request.

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
