// knockgate's own HTTPS transport to the Kubernetes API: one request (JSON in, JSON out), and the
// endpoint (server URL, auth headers, keep-alive agent) a watch opens its stream on.
//
// Why it exists: memory. @kubernetes/client-node 1.4's KubeConfig (dist/config.js) statically
// imports dist/gen/index.js, every generated API class and ~850 models, and its typed APIs import
// the ObjectSerializer of all of them: a node 20 that imports KubeConfig alone idles at ~104 MiB
// RSS against 41 MiB for an empty script (bench/README.md, "Idle RSS of the Kubernetes roles").
// The sniffer has a 64 MiB idle target and needs a dozen requests (list, watch, get, create, merge
// patch, delete of a few resources), so its path (controller/sniffer/*, the stores and informers of
// controller/kube/, the uninstall marker) talks to the API through this module only, with a
// KubeConnection loaded by kubeconfig.ts.
//
// The same modules still accept a client-node KubeConfig (the other roles load one, and the tests
// build them): its server and what its applyToFetchOptions gives (auth headers, TLS agent) are used
// for the request, without loading any of client-node's code from here (type imports only).
//
// Errors have the shapes errors.ts reads: an answer outside 2xx is an ApiStatusError (`code` = the
// HTTP status, `body` = the Status text, lower-case `headers` for Retry-After); no answer is node's
// own socket error (`code` = ECONNREFUSED, ...); a request past its deadline (request.ts) fails as
// an AbortError.

import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { requestTimeoutOf } from './request.js';

/** An answer outside 2xx, in the shape of client-node's ApiException (errors.ts reads it). */
export class ApiStatusError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
    readonly headers: http.IncomingHttpHeaders,
  ) {
    super(`HTTP ${code} from the API server`);
  }
}

/** The largest answer body read (a list of every AccessGrant of a big cluster fits many times). */
const MAX_BODY_BYTES = 256 * 1024 * 1024;

/** A projected ServiceAccount token is rotated by the kubelet; re-read its file this often (as kubectl). */
export const TOKEN_REREAD_MS = 60_000;

export interface KubeConnectionParts {
  /** https://host:port, no path. */
  server: string;
  /** For messages: "kubeconfig /path" or "in-cluster config". */
  source: string;
  /** The user's name in the kubeconfig (messages). */
  user: string;
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string };
  token?: string;
  /** Re-read every TOKEN_REREAD_MS (and after a 401). */
  tokenFile?: string;
  /** Monotonic-enough milliseconds for the token re-read (tests inject one). */
  now?: () => number;
}

/** A cluster connection of knockgate's own (kubeconfig.ts builds it): server, credentials, one keep-alive pool. */
export class KubeConnection {
  readonly server: string;
  readonly source: string;
  readonly user: string;
  readonly agent: https.Agent;
  private readonly tokenFile: string | undefined;
  private readonly now: () => number;
  private token: string | undefined;
  private tokenReadAt = -Infinity;

  constructor(parts: KubeConnectionParts) {
    this.server = parts.server.replace(/\/+$/, '');
    this.source = parts.source;
    this.user = parts.user;
    this.tokenFile = parts.token === undefined ? parts.tokenFile : undefined;
    this.token = parts.token;
    this.now = parts.now ?? Date.now;
    this.agent = new https.Agent({
      keepAlive: true,
      ...(parts.tls.ca ? { ca: parts.tls.ca } : {}),
      ...(parts.tls.cert ? { cert: parts.tls.cert } : {}),
      ...(parts.tls.key ? { key: parts.tls.key } : {}),
      ...(parts.tls.servername ? { servername: parts.tls.servername } : {}),
      rejectUnauthorized: true,
    });
    if (this.tokenFile) this.readToken(true);
  }

  /** The headers that authenticate the next request. */
  headers(): Record<string, string> {
    if (this.tokenFile && this.now() - this.tokenReadAt >= TOKEN_REREAD_MS) this.readToken(false);
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  /** The server said 401: the token may have been rotated under us; read the file again next time. */
  unauthorized(): void {
    this.tokenReadAt = -Infinity;
  }

  /** Close the idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private readToken(first: boolean): void {
    const file = this.tokenFile!;
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (err) {
      // A failed re-read keeps the token read before (it may well still be valid); try again later.
      if (!first && this.token) return void (this.tokenReadAt = this.now());
      throw new Error(`${this.source}: user "${this.user}": token file ${file}: ${(err as Error).message}`);
    }
    if (!text) {
      if (!first && this.token) return void (this.tokenReadAt = this.now());
      throw new Error(`${this.source}: user "${this.user}": token file ${file} is empty`);
    }
    this.token = text;
    this.tokenReadAt = this.now();
  }
}

/** What the Kubernetes modules take: knockgate's connection, or a client-node KubeConfig. */
export type KubeTarget = KubeConnection | KubeConfig;

export interface Endpoint {
  server: string;
  headers: Record<string, string>;
  agent: http.Agent | undefined;
}

/** Server, auth headers and agent of the next request to `target`. */
export async function endpointOf(target: KubeTarget): Promise<Endpoint> {
  if (target instanceof KubeConnection)
    return { server: target.server, headers: target.headers(), agent: target.agent };
  const cluster = target.getCurrentCluster();
  if (!cluster) throw new Error('No currently active cluster');
  // What client-node's own Watch sends: the KubeConfig's agent (TLS, proxy) and headers (auth).
  const init = await target.applyToFetchOptions({});
  const headers: Record<string, string> = {};
  const raw = init.headers as unknown;
  if (raw && typeof (raw as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of raw as Iterable<[string, string]>) headers[k] = v;
  } else if (raw && typeof raw === 'object') {
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) headers[k] = String(v);
  }
  return { server: cluster.server.replace(/\/+$/, ''), headers, agent: init.agent as http.Agent | undefined };
}

/** The full URL of `path` on `server` with `query` (undefined values left out). */
export function urlOf(
  server: string,
  path: string,
  query: Record<string, string | number | boolean | undefined> = {},
): URL {
  const url = new URL(server + path);
  for (const [key, value] of Object.entries(query))
    if (value !== undefined) url.searchParams.set(key, String(value));
  return url;
}

export interface KubeRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** JSON-encoded when given. */
  body?: unknown;
  /** Default application/json. */
  contentType?: string;
}

export const MERGE_PATCH = 'application/merge-patch+json';

/**
 * One API request; resolves with the answer's JSON (undefined for an empty body). Bounded by the
 * target's request timeout (request.ts) from sending to the end of the body, when it has one.
 */
export async function kubeRequest<T = unknown>(target: KubeTarget, spec: KubeRequest): Promise<T> {
  const endpoint = await endpointOf(target);
  const url = urlOf(endpoint.server, spec.path, spec.query);
  const payload = spec.body === undefined ? undefined : Buffer.from(JSON.stringify(spec.body));
  const headers: Record<string, string> = { accept: 'application/json', ...endpoint.headers };
  if (payload) {
    headers['content-type'] = spec.contentType ?? 'application/json';
    headers['content-length'] = String(payload.length);
  }
  const timeoutMs = requestTimeoutOf(target);
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let timedOut: Error | undefined;
    let settled = false;
    const settle = (err: unknown, value?: T) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (timedOut || err) reject(timedOut ?? err);
      else resolve(value as T);
    };
    const req = send(url, { method: spec.method, headers, agent: endpoint.agent });
    if (timeoutMs !== undefined)
      timer = setTimeout(() => {
        // Like an aborted fetch: errors.ts reads it as "timed out" (retryable). The socket is
        // destroyed, so a connection that stopped answering is never reused.
        timedOut = Object.assign(new Error('the request timed out'), { name: 'AbortError' });
        req.destroy(timedOut);
        settle(timedOut);
      }, timeoutMs);
    req.on('error', (err) => settle(err));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          req.destroy();
          return settle(new Error(`the answer is larger than ${MAX_BODY_BYTES} bytes`));
        }
        chunks.push(chunk);
      });
      res.on('error', (err) => settle(err));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const text = Buffer.concat(chunks).toString('utf8');
        if (status < 200 || status > 299) {
          if (status === 401 && target instanceof KubeConnection) target.unauthorized();
          return settle(new ApiStatusError(status, text, res.headers));
        }
        if (!text) return settle(undefined, undefined);
        try {
          settle(undefined, JSON.parse(text) as T);
        } catch {
          settle(new Error(`HTTP ${status} from the API server with a body that is not JSON`));
        }
      });
    });
    req.end(payload);
  });
}
