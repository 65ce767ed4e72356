// What went wrong talking to the Kubernetes API, from the shapes @kubernetes/client-node produces:
// ApiException (typed API calls: `code`, a JSON Status body, lower-case headers), the Watch's
// Error with `statusCode`, and node-fetch's FetchError (`code` = ECONNREFUSED, ...). Messages are one
// line: the server's Status message, never a request body.

/** An API request failed; `status` is the HTTP status (0 = no answer: connection refused, reset, ...). */
export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string | undefined,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

/** A Kubernetes Status object as the API sends it in an error body. */
interface StatusBody {
  message?: unknown;
  reason?: unknown;
}

const RETRYABLE_NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);

/** HTTP status of an error from client-node (0 when the server did not answer). */
export function statusOf(err: unknown): number {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  if (err instanceof KubeApiError) return err.status;
  return 0;
}

function parseStatusBody(body: unknown): StatusBody {
  if (typeof body === 'object' && body !== null) return body as StatusBody;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as unknown;
      if (typeof parsed === 'object' && parsed !== null) return parsed as StatusBody;
    } catch {
      // not JSON: no Status to read
    }
  }
  return {};
}

function retryAfterMs(headers: unknown): number | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  const value = (headers as Record<string, unknown>)['retry-after'];
  const seconds = Number(value);
  return typeof value === 'string' && Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/** One line, no newlines, bounded length. */
function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 297)}...` : flat;
}

/** Turn anything client-node throws into a KubeApiError saying what (`what`) failed and why. */
export function toKubeApiError(what: string, err: unknown): KubeApiError {
  if (err instanceof KubeApiError) return err;
  const status = statusOf(err);
  const e = err as { body?: unknown; headers?: unknown; code?: unknown; message?: unknown };
  if (status > 0) {
    const body = parseStatusBody(e.body);
    const message =
      typeof body.message === 'string' && body.message ? body.message : `HTTP ${status} from the API server`;
    return new KubeApiError(
      `${what}: ${oneLine(message)} (HTTP ${status})`,
      status,
      typeof body.reason === 'string' ? body.reason : undefined,
      retryAfterMs(e.headers),
    );
  }
  if (isAbort(err))
    // The deadline of request.ts's applyRequestTimeout: the server took the request and said nothing.
    return new KubeApiError(
      `${what}: timed out: no answer from the API server within the request timeout`,
      0,
      'ETIMEDOUT',
      undefined,
    );
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return new KubeApiError(
    `${what}: API server unreachable: ${oneLine(code && !message.includes(code) ? `${code} ${message}` : message)}`,
    0,
    code,
    undefined,
  );
}

/** node-fetch's AbortError (the request's signal fired), or a DOM TimeoutError/AbortError. */
function isAbort(err: unknown): boolean {
  const e = err as { name?: unknown; type?: unknown };
  return e?.name === 'AbortError' || e?.name === 'TimeoutError' || e?.type === 'aborted';
}

/** Worth trying again: throttled (429), a server-side failure (5xx), a refused/reset connection or a timeout. */
export function isRetryable(err: KubeApiError): boolean {
  if (err.status === 429 || (err.status >= 500 && err.status <= 504)) return true;
  return err.status === 0 && err.reason !== undefined && RETRYABLE_NETWORK.has(err.reason);
}
