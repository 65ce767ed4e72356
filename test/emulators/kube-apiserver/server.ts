// The Kubernetes API emulator's HTTP server (test infrastructure): routing, authentication and
// RBAC, discovery, OpenAPI, CRUD, watch, Table output and fault injection, on 127.0.0.1 (or an
// address of a test's network namespace). Usable in-process (new KubeApiServer(...).start()) and
// from the CLI (main.ts).

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { stringify } from 'yaml';
import { systemClock, type Clock, type TimerHandle } from '../../../api/clock.js';
import { selfSubjectAccessReview } from './access-review.js';
import {
  decodeDeleteOptions,
  decodeEnvelope,
  decodeSecret,
  decodeSelfSubjectAccessReview,
} from './protobuf.js';
import {
  aggregated,
  AGGREGATED_CONTENT_TYPE,
  coreVersions,
  group,
  groupList,
  resourceList,
  VERSION_INFO,
  wantsAggregated,
} from './discovery.js';
import { Faults, type FaultRequest } from './faults.js';
import { collectionOf, ObjectApi, type FieldValidation, type WriteOptions } from './objects.js';
import { gvDocument, index } from './openapi.js';
import { Authorizer, type RbacUser } from './rbac.js';
import type { ResourceType } from './resources.js';
import { fieldSelector, labelSelector } from './selectors.js';
import { ApiError, badRequest, methodNotAllowed } from './status.js';
import { Storage, TooOldError, type KubeObject, type StoredEvent } from './storage.js';
import { toTable } from './table.js';
import { loopbackIdentity, type TlsIdentity } from './tls.js';

export interface KubeApiServerOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /**
   * The IP address to listen on (default 127.0.0.1). Another address only inside a network
   * namespace a test made (e.g. 10.x.y.z), so the emulator is reachable from other namespaces.
   */
  host?: string;
  /** Bearer tokens and their rules; default: one "admin" user allowed everything, random token. */
  users?: RbacUser[];
  clock?: Clock;
  /** Watch events kept for resuming; older resourceVersions get 410 Gone. Default 1000. */
  historyLimit?: number;
  /** Also forget events older than this (ms, on the clock), like the real server's window. Default 0: no limit. */
  historyWindowMs?: number;
  /** How often a watch with allowWatchBookmarks gets a BOOKMARK. Default 5000 ms. */
  bookmarkIntervalMs?: number;
  /** Namespaces that exist from the start (besides default, kube-system, kube-public, kube-node-lease). */
  namespaces?: string[];
}

/** One request as a client sent it (for recording what kubectl and client-node send). */
export interface RecordedRequest {
  method: string;
  url: string;
  accept?: string;
  contentType?: string;
  userAgent?: string;
  user?: string;
  /** The HTTP status answered (set when the response is sent; a watch's is 200 from its start). */
  status?: number;
}

const MAX_BODY_BYTES = 3 * 1024 * 1024;
const MAX_RECORDED = 2000;
const TABLE_ACCEPT = /as=Table/;

interface OpenWatch {
  res: ServerResponse;
  close(): void;
}

export class KubeApiServer {
  readonly api: ObjectApi;
  readonly storage: Storage;
  readonly faults: Faults;
  readonly users: RbacUser[];
  /** The latest requests, oldest first (bounded). */
  readonly requests: RecordedRequest[] = [];
  private readonly authorizer: Authorizer;
  private readonly clock: Clock;
  private readonly bookmarkIntervalMs: number;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly watches = new Set<OpenWatch>();
  private boundPort = 0;
  private readonly host: string;
  private readonly tls: TlsIdentity;
  private stopped = true;

  constructor(private readonly options: KubeApiServerOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    if (isIP(this.host) === 0) throw new Error(`host ${this.host}: want an IP address`);
    this.tls = loopbackIdentity(this.host);
    this.clock = options.clock ?? systemClock;
    this.bookmarkIntervalMs = options.bookmarkIntervalMs ?? 5000;
    this.users = options.users ?? [
      {
        name: 'admin',
        token: randomBytes(24).toString('hex'),
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
      },
    ];
    this.authorizer = new Authorizer(this.users);
    this.storage = new Storage(options.historyLimit ?? 1000, {
      now: () => this.clock.now(),
      windowMs: options.historyWindowMs ?? 0,
    });
    const namespaces = [
      'default',
      'kube-system',
      'kube-public',
      'kube-node-lease',
      ...(options.namespaces ?? []),
    ];
    this.api = new ObjectApi(this.storage, this.clock, [...new Set(namespaces)]);
    this.faults = new Faults({
      dropWatches: () => this.dropWatches(),
      compact: () => this.storage.compact(),
      stopFor: (ms) => this.stopFor(ms),
    });
  }

  get port(): number {
    return this.boundPort;
  }

  /** The self-signed certificate to trust (PEM). */
  get caCert(): string {
    return this.tls.cert;
  }

  get url(): string {
    return `https://${isIP(this.host) === 6 ? `[${this.host}]` : this.host}:${this.boundPort}`;
  }

  /** Listen on the host address (the option's port, or a free one). */
  async start(): Promise<void> {
    await this.listen(this.boundPort || this.options.port || 0);
  }

  /** Close the listener, every connection and every watch. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.dropWatches();
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Refuse connections for `ms`, then listen again on the same port. */
  async stopFor(ms: number): Promise<void> {
    await this.stop();
    await new Promise<void>((resolve) => this.clock.setTimeout(resolve, ms));
    await this.listen(this.boundPort);
  }

  /** A kubeconfig with one context per user (named by the last part of the user name). */
  kubeconfig(currentUser = this.users[0].name): string {
    const ctx = (name: string) => name.split(':').pop() || name;
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'knockgate-emulator',
          cluster: {
            server: this.url,
            'certificate-authority-data': Buffer.from(this.tls.cert).toString('base64'),
          },
        },
      ],
      users: this.users.map((u) => ({ name: u.name, user: { token: u.token } })),
      contexts: this.users.map((u) => ({
        name: ctx(u.name),
        context: { cluster: 'knockgate-emulator', user: u.name },
      })),
      'current-context': ctx(currentUser),
    });
  }

  tokenOf(userName: string): string {
    const u = this.users.find((x) => x.name === userName);
    if (!u) throw new Error(`no user ${userName}`);
    return u.token;
  }

  private listen(port: number): Promise<void> {
    const server: Server = createServer(this.tls, (req, res) => void this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.host, () => {
        server.off('error', reject);
        const addr = server.address();
        this.boundPort = typeof addr === 'object' && addr ? addr.port : port;
        this.stopped = false;
        resolve();
      });
    });
  }

  private dropWatches(): number {
    const n = this.watches.size;
    for (const w of [...this.watches]) w.close();
    return n;
  }

  private record(req: IncomingMessage, res: ServerResponse, user?: string): void {
    const entry: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      accept: req.headers.accept,
      contentType: req.headers['content-type'],
      userAgent: req.headers['user-agent'],
      user,
    };
    this.requests.push(entry);
    const done = () => (entry.status = res.statusCode);
    if (res.headersSent) done();
    else {
      res.once('finish', done);
      res.once('close', done);
    }
    if (this.requests.length > MAX_RECORDED) this.requests.splice(0, this.requests.length - MAX_RECORDED);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const raw = await readBody(req);
      const body = raw.toString('utf8');
      if (this.faults.latencyMs > 0)
        await new Promise<void>((r) => this.clock.setTimeout(r, this.faults.latencyMs));
      if (this.stopped) {
        res.destroy();
        return;
      }
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const isWatch =
        ['true', '1'].includes(url.searchParams.get('watch') ?? '') || url.pathname.includes('/watch/');
      const injected = this.faults.check(req.method ?? 'GET', url.pathname, isWatch);
      let user: RbacUser;
      try {
        user = this.authorizer.authenticate(req.headers.authorization);
        this.record(req, res, user.name);
      } catch (err) {
        this.record(req, res);
        throw err;
      }
      if (url.pathname === '/emulator/v1/faults') return await this.handleFaults(req, res, user, body);
      if (injected) throw injected;
      await this.route(req, res, url, user, body, raw);
    } catch (err) {
      this.sendError(res, err);
    }
  }

  private async handleFaults(
    req: IncomingMessage,
    res: ServerResponse,
    user: RbacUser,
    body: string,
  ): Promise<void> {
    this.authorizer.authorize(user, { verb: '*', group: '*', resource: '*' });
    if (req.method !== 'POST') throw methodNotAllowed();
    let request: FaultRequest;
    try {
      request = JSON.parse(body) as FaultRequest;
    } catch {
      throw badRequest('fault request: want a JSON object');
    }
    try {
      send(res, 200, await this.faults.apply(request));
    } catch (err) {
      throw badRequest(`fault request: ${(err as Error).message}`);
    }
  }

  private sendError(res: ServerResponse, err: unknown): void {
    const e =
      err instanceof ApiError
        ? err
        : new ApiError(
            500,
            'InternalError',
            `Internal error occurred: ${err instanceof Error ? err.message : String(err)}`,
          );
    if (res.headersSent) {
      res.end();
      return;
    }
    for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
    send(res, e.code, e.toStatus());
  }

  private async route(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    user: RbacUser,
    body: string,
    raw: Buffer,
  ): Promise<void> {
    let parts: string[];
    try {
      parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      throw badRequest(`malformed path ${JSON.stringify(url.pathname)}`);
    }
    const accept = req.headers.accept;
    const types = this.api.allTypes();
    const method = req.method ?? 'GET';
    const [p0, p1, p2, p3] = parts;
    // Discovery and OpenAPI: any authenticated user (system:discovery).
    if (method === 'GET') {
      if (parts.length === 1 && p0 === 'version') return send(res, 200, VERSION_INFO);
      if (parts.length === 1 && p0 === 'api') {
        if (wantsAggregated(accept)) return send(res, 200, aggregated(types, true), AGGREGATED_CONTENT_TYPE);
        return send(res, 200, coreVersions(new URL(this.url).host));
      }
      if (parts.length === 1 && p0 === 'apis') {
        if (wantsAggregated(accept)) return send(res, 200, aggregated(types, false), AGGREGATED_CONTENT_TYPE);
        return send(res, 200, groupList(types));
      }
      if (parts.length === 2 && p0 === 'api' && p1 === 'v1')
        return send(res, 200, resourceList('', 'v1', types));
      if (parts.length === 2 && p0 === 'apis') {
        const g = group(p1, types);
        if (g) return send(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...g });
      }
      if (parts.length === 3 && p0 === 'apis' && types.some((t) => t.group === p1 && t.version === p2))
        return send(res, 200, resourceList(p1, p2, types));
      if (p0 === 'openapi' && p1 === 'v3') {
        if (parts.length === 2) return send(res, 200, index(types));
        const [g, v] = p2 === 'api' ? ['', p3] : [p3, parts[4]];
        if (types.some((t) => t.group === g && t.version === v))
          return send(res, 200, gvDocument(g, v, types));
      }
    }
    // Resources: /api/v1/... or /apis/<group>/<version>/...
    let groupName: string;
    let version: string;
    let rest: string[];
    if (p0 === 'api' && p1 === 'v1') [groupName, version, rest] = ['', 'v1', parts.slice(2)];
    else if (p0 === 'apis' && parts.length >= 4) [groupName, version, rest] = [p1, p2, parts.slice(3)];
    else throw notFoundPath();
    let namespace: string | undefined;
    if (
      rest[0] === 'namespaces' &&
      rest.length >= 3 &&
      !(groupName === '' && rest.length === 3 && rest[2] === 'status')
    ) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, subresource, ...extra] = rest;
    const type = this.api.type(groupName, version, plural);
    if (!type || extra.length || (namespace !== undefined && !type.namespaced)) throw notFoundPath();
    const isWatch = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
    const verb = verbOf(method, name !== undefined, isWatch);
    // Every authenticated user may ask what it may do (system:basic-user).
    if (type.kind === 'SelfSubjectAccessReview') {
      if (verb !== 'create') throw methodNotAllowed();
      const review = isProtobuf(req)
        ? decodeSelfSubjectAccessReview(decodeEnvelope(raw).raw)
        : parseJson(body);
      return send(res, 201, selfSubjectAccessReview(this.authorizer, user, review));
    }
    this.authorizer.authorize(user, {
      verb,
      group: groupName,
      resource: plural,
      subresource,
      namespace,
      // As the real RequestInfoFactory: a list or watch whose field selector requires one
      // metadata.name is authorized as a request for that name (RBAC resourceNames apply).
      name: name ?? (verb === 'list' || verb === 'watch' ? selectedName(url.searchParams) : undefined),
    });
    // The emulator reads JSON, and as protobuf only what kubectl sends that way: the
    // SelfSubjectAccessReview above, a Secret it creates or replaces (`kubectl create secret`), and
    // the DeleteOptions of a DELETE (client-go's typed clients: Helm's release Secrets).
    let protobufObject: Record<string, unknown> | undefined;
    if (isProtobuf(req)) {
      if (type.kind === 'Secret' && !subresource && (verb === 'create' || verb === 'update')) {
        const envelope = decodeEnvelope(raw);
        if (envelope.kind !== 'Secret')
          throw badRequest(`protobuf: a ${envelope.kind || 'message'} sent as a Secret`);
        protobufObject = decodeSecret(envelope.raw);
      } else if (verb === 'delete' && raw.length > 0) {
        const envelope = decodeEnvelope(raw);
        if (envelope.kind !== 'DeleteOptions')
          throw badRequest(`protobuf: a ${envelope.kind || 'message'} sent as DeleteOptions`);
        protobufObject = decodeDeleteOptions(envelope.raw);
      } else
        throw new ApiError(
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`,
        );
    }
    const q = url.searchParams;
    const writeOpts: WriteOptions = {
      fieldValidation: (['Strict', 'Warn', 'Ignore'].includes(q.get('fieldValidation') ?? '')
        ? q.get('fieldValidation')
        : 'Warn') as FieldValidation,
      dryRun: q.getAll('dryRun').includes('All'),
      userInfo: { username: user.name, groups: user.groups, extra: user.extra },
    };
    switch (verb) {
      case 'get': {
        const obj = this.api.get(type, namespace, name);
        if (TABLE_ACCEPT.test(accept ?? ''))
          return send(
            res,
            200,
            toTable(type, [obj], {
              now: this.clock.now(),
              includeObject: q.get('includeObject') ?? 'Metadata',
            }),
          );
        return send(res, 200, obj);
      }
      case 'list':
        return this.list(res, type, namespace, q, accept);
      case 'watch':
        return this.watch(req, res, type, namespace, q, accept);
      case 'create': {
        const r = this.api.create(type, namespace, protobufObject ?? parseJson(body), writeOpts);
        return send(res, 201, r.object, undefined, r.warnings);
      }
      case 'update': {
        const r = this.api.update(
          type,
          namespace,
          name,
          protobufObject ?? parseJson(body),
          subresource,
          writeOpts,
        );
        return send(res, r.created ? 201 : 200, r.object, undefined, r.warnings);
      }
      case 'patch': {
        const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim();
        const r = this.api.patch(type, namespace, name, contentType, parseJson(body), subresource, writeOpts);
        return send(res, 200, r.object, undefined, r.warnings);
      }
      case 'delete': {
        const opts =
          protobufObject ??
          (body.trim() && !isProtobuf(req) ? (parseJson(body) as Record<string, unknown>) : {});
        const obj = this.api.delete(type, namespace, name, {
          propagationPolicy:
            (opts.propagationPolicy as string | undefined) ?? q.get('propagationPolicy') ?? undefined,
          preconditions: opts.preconditions as { uid?: string; resourceVersion?: string } | undefined,
          dryRun: writeOpts.dryRun || (Array.isArray(opts.dryRun) && opts.dryRun.includes('All')),
          userInfo: writeOpts.userInfo,
        });
        return send(res, 200, obj);
      }
      case 'deletecollection': {
        const { items } = this.api.list(type, namespace, {
          labelSelector: q.get('labelSelector'),
          fieldSelector: q.get('fieldSelector'),
        });
        const deleted = items.map((o) =>
          this.api.delete(type, o.metadata.namespace, o.metadata.name, {
            dryRun: writeOpts.dryRun,
            userInfo: writeOpts.userInfo,
          }),
        );
        return send(res, 200, this.listBody(type, deleted));
      }
      default:
        throw methodNotAllowed();
    }
  }

  private listBody(type: ResourceType, items: KubeObject[], continueToken?: string) {
    const metadata: Record<string, string> = { resourceVersion: String(this.storage.currentRevision) };
    if (continueToken) metadata.continue = continueToken;
    return {
      apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
      kind: type.listKind,
      metadata,
      items,
    };
  }

  private list(
    res: ServerResponse,
    type: ResourceType,
    namespace: string | undefined,
    q: URLSearchParams,
    accept?: string,
  ): void {
    const rv = q.get('resourceVersion');
    if (rv && q.get('resourceVersionMatch') === 'Exact' && Number(rv) < this.storage.oldestResumable)
      throw new ApiError(410, 'Expired', `The resourceVersion for the provided list is too old.`);
    const limit = Number(q.get('limit') ?? 0);
    const { items, continueToken } = this.api.list(type, namespace, {
      labelSelector: q.get('labelSelector'),
      fieldSelector: q.get('fieldSelector'),
      limit: Number.isFinite(limit) ? limit : 0,
      continueToken: q.get('continue') ?? undefined,
    });
    if (TABLE_ACCEPT.test(accept ?? '')) {
      return send(
        res,
        200,
        toTable(type, items, {
          now: this.clock.now(),
          resourceVersion: String(this.storage.currentRevision),
          continueToken,
          includeObject: q.get('includeObject') ?? 'Metadata',
        }),
      );
    }
    send(res, 200, this.listBody(type, items, continueToken));
  }

  private watch(
    req: IncomingMessage,
    res: ServerResponse,
    type: ResourceType,
    namespace: string | undefined,
    q: URLSearchParams,
    accept?: string,
  ): void {
    const byLabel = labelSelector(q.get('labelSelector'));
    const byField = fieldSelector(q.get('fieldSelector'));
    const matches = (o: KubeObject | undefined) =>
      !!o && (namespace === undefined || o.metadata.namespace === namespace) && byLabel(o) && byField(o);
    const asTable = TABLE_ACCEPT.test(accept ?? '');
    const rvParam = q.get('resourceVersion');
    const since = rvParam && rvParam !== '0' ? Number(rvParam) : undefined;
    if (since !== undefined && !Number.isInteger(since))
      throw badRequest(`invalid resourceVersion "${rvParam}"`);
    let backlog: StoredEvent[] = [];
    let tooOld: TooOldError | undefined;
    if (since !== undefined) {
      try {
        backlog = this.storage.eventsSince(collectionOf(type), since);
      } catch (err) {
        if (!(err instanceof TooOldError)) throw err;
        tooOld = err;
      }
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    const write = (eventType: string, object: unknown) =>
      res.write(`${JSON.stringify({ type: eventType, object })}\n`);
    if (tooOld) {
      write('ERROR', new ApiError(410, 'Expired', tooOld.message).toStatus());
      res.end();
      return;
    }
    const render = (o: KubeObject) => {
      const presented = this.api.present(type, structuredClone(o));
      return asTable
        ? toTable(type, [presented], {
            now: this.clock.now(),
            includeObject: q.get('includeObject') ?? 'Metadata',
          })
        : presented;
    };
    const deliver = (e: StoredEvent) => {
      const now = matches(e.object) && e.type !== 'DELETED';
      const before = e.type !== 'ADDED' && matches(e.previous);
      if (e.type === 'DELETED') {
        if (before) write('DELETED', render(e.object));
      } else if (now && before) write('MODIFIED', render(e.object));
      else if (now) write('ADDED', render(e.object));
      else if (before) write('DELETED', render(e.object));
    };
    let timers: TimerHandle[] = [];
    const unregister = this.storage.addWatcher({ collection: collectionOf(type), deliver });
    const watch: OpenWatch = {
      res,
      close: () => {
        unregister();
        for (const t of timers) t.cancel();
        timers = [];
        this.watches.delete(watch);
        if (!res.writableEnded) res.end();
      },
    };
    this.watches.add(watch);
    req.on('close', () => watch.close());
    res.on('close', () => watch.close());
    if (since === undefined) {
      for (const o of this.storage.list(collectionOf(type), type.namespaced ? namespace : undefined))
        if (matches(o)) write('ADDED', render(o));
    } else for (const e of backlog) deliver(e);
    if (q.get('allowWatchBookmarks') === 'true' || q.get('allowWatchBookmarks') === '1') {
      const bookmark = () => {
        write('BOOKMARK', {
          kind: type.kind,
          apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
          metadata: { resourceVersion: String(this.storage.currentRevision), creationTimestamp: null },
        });
        timers.push(this.clock.setTimeout(bookmark, this.bookmarkIntervalMs));
      };
      timers.push(this.clock.setTimeout(bookmark, this.bookmarkIntervalMs));
    }
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    if (timeout > 0) timers.push(this.clock.setTimeout(() => watch.close(), timeout * 1000));
  }
}

function verbOf(method: string, named: boolean, isWatch: boolean): string {
  switch (method) {
    case 'GET':
      return isWatch ? 'watch' : named ? 'get' : 'list';
    case 'POST':
      if (named) throw methodNotAllowed();
      return 'create';
    case 'PUT':
      if (!named) throw methodNotAllowed();
      return 'update';
    case 'PATCH':
      if (!named) throw methodNotAllowed();
      return 'patch';
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    default:
      throw methodNotAllowed();
  }
}

/** The name a field selector requires exactly (metadata.name=X or ==X), if any. */
function selectedName(q: URLSearchParams): string | undefined {
  for (const term of (q.get('fieldSelector') ?? '').split(',')) {
    const m = /^\s*metadata\.name\s*==?\s*([^=!\s]+)\s*$/.exec(term);
    if (m) return m[1];
  }
  return undefined;
}

function isProtobuf(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').startsWith('application/vnd.kubernetes.protobuf');
}

function notFoundPath(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {
    causes: [{ reason: 'UnexpectedServerResponse', message: '404 page not found' }],
  });
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(
  res: ServerResponse,
  code: number,
  body: unknown,
  contentType = 'application/json',
  warnings: string[] = [],
): void {
  if (warnings.length)
    res.setHeader(
      'Warning',
      warnings.map((w) => `299 - ${JSON.stringify(w)}`),
    );
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
