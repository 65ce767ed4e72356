// Fault injection for the emulator, driven in-process (server.faults) or over HTTP
// (POST /emulator/v1/faults with the admin token): errors for the next N matching requests (429 with
// Retry-After, 500, ...), latency on every request, dropped watches, a full stop of the listener
// (connections refused) for a while, and compaction of the watch history (410 Gone on resume).

import { ApiError } from './status.js';

export interface FailSpec {
  /** HTTP status to answer: 429, 500, 503, ... */
  code: number;
  /** How many matching requests fail (default 1). */
  count?: number;
  /** For 429/503: the Retry-After header and details.retryAfterSeconds (default 1). */
  retryAfterSeconds?: number;
  /** Only requests with this HTTP method (GET, POST, PATCH, ...). */
  method?: string;
  /** Only requests whose path contains this text. */
  pathIncludes?: string;
  /** Only watch requests (true) or only non-watch requests (false). */
  watch?: boolean;
}

/** What the HTTP admin endpoint accepts: any combination, applied in this order. */
export interface FaultRequest {
  latencyMs?: number;
  fail?: FailSpec;
  dropWatches?: boolean;
  compact?: boolean;
  stopForMs?: number;
  clear?: boolean;
}

export interface FaultTarget {
  dropWatches(): number;
  compact(): void;
  stopFor(ms: number): Promise<void>;
}

export class Faults {
  latencyMs = 0;
  private pending: (FailSpec & { left: number })[] = [];

  constructor(private readonly target: FaultTarget) {}

  /** Fail the next `count` requests that match. */
  fail(spec: FailSpec): void {
    if (!Number.isInteger(spec.code) || spec.code < 400 || spec.code > 599)
      throw new Error(`fail.code ${spec.code}: want 400-599`);
    this.pending.push({ ...spec, left: spec.count ?? 1 });
  }

  /** Add `ms` of delay before every request is answered (0 = none). */
  setLatency(ms: number): void {
    if (!(ms >= 0 && ms <= 600_000)) throw new Error(`latencyMs ${ms}: want 0-600000`);
    this.latencyMs = ms;
  }

  /** End every open watch; returns how many. */
  dropWatches(): number {
    return this.target.dropWatches();
  }

  /** Forget the watch history: watches resuming from an older resourceVersion get 410 Gone. */
  compact(): void {
    this.target.compact();
  }

  /** Close the listener and every connection, refuse connections for `ms`, then listen again on the same port. */
  stopFor(ms: number): Promise<void> {
    return this.target.stopFor(ms);
  }

  clear(): void {
    this.pending = [];
    this.latencyMs = 0;
  }

  async apply(req: FaultRequest): Promise<Record<string, unknown>> {
    if (req.clear) this.clear();
    if (req.latencyMs !== undefined) this.setLatency(req.latencyMs);
    if (req.fail) this.fail(req.fail);
    const out: Record<string, unknown> = {};
    if (req.dropWatches) out.droppedWatches = this.dropWatches();
    if (req.compact) this.compact();
    if (req.stopForMs !== undefined) {
      if (!(req.stopForMs > 0 && req.stopForMs <= 600_000))
        throw new Error(`stopForMs ${req.stopForMs}: want 1-600000`);
      // Answer first, then stop: the caller learns the stop was accepted.
      setImmediate(() => void this.stopFor(req.stopForMs!));
      out.stoppingForMs = req.stopForMs;
    }
    return out;
  }

  /** The injected error for this request, if one is due. */
  check(method: string, path: string, isWatch: boolean): ApiError | undefined {
    const i = this.pending.findIndex(
      (f) =>
        (!f.method || f.method.toUpperCase() === method) &&
        (!f.pathIncludes || path.includes(f.pathIncludes)) &&
        (f.watch === undefined || f.watch === isWatch),
    );
    if (i < 0) return undefined;
    const f = this.pending[i];
    if (--f.left <= 0) this.pending.splice(i, 1);
    return injectedError(f);
  }
}

function injectedError(f: FailSpec): ApiError {
  const retry = f.retryAfterSeconds ?? 1;
  switch (f.code) {
    case 429:
      return new ApiError(
        429,
        'TooManyRequests',
        'Too many requests, please try again later.',
        { retryAfterSeconds: retry },
        { 'Retry-After': String(retry) },
      );
    case 500:
      return new ApiError(
        500,
        'InternalError',
        'Internal error occurred: injected by the emulator fault API',
        {
          causes: [{ reason: '', message: 'injected by the emulator fault API' }],
        },
      );
    case 503:
      return new ApiError(
        503,
        'ServiceUnavailable',
        'the server is currently unable to handle the request',
        { retryAfterSeconds: retry },
        { 'Retry-After': String(retry) },
      );
    case 504:
      return new ApiError(
        504,
        'Timeout',
        'the server was unable to return a response in the time allotted, but may still be processing the request',
      );
    default:
      return new ApiError(f.code, 'InternalError', `injected error ${f.code}`);
  }
}
