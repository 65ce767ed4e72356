// The EC2 Query API emulator over HTTP (test infrastructure, never shipped): POST / with a
// form-encoded body, SigV4 checked, one Region (state.ts) per region named in the credential scope.
// In a test:
//   const ec2 = new Ec2Emulator({ credentials: [{ accessKeyId, secretAccessKey }] });
//   await ec2.start();   // ec2.url → EC2Client({ endpoint: ec2.url, region, credentials })
//   ec2.faults.fail({ status: 503, count: 2 }); ec2.setSettings({ requestsPerSecond: 5 });
//   await ec2.stop();
// Order of checks per request: body bound, SigV4 (AuthFailure), region, injected faults, the
// region's token bucket (RequestLimitExceeded), Version, deny list (UnauthorizedOperation), action.

import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { systemClock, type Clock } from '../../../api/clock.js';
import { authFailure, Ec2Error } from './errors.js';
import {
  checkSettings,
  DEFAULT_SETTINGS,
  Faults,
  TokenBucket,
  type FaultRequest,
  type Settings,
} from './faults.js';
import { MAX_BODY, Params } from './query.js';
import { Region } from './region.js';
import { verifySigV4, type Credential } from './sigv4.js';
import { errorXml, responseXml } from './xml.js';

export const EC2_API_VERSION = '2016-11-15';
const REGION_NAME = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;

export interface Ec2EmulatorOptions {
  port?: number;
  host?: string;
  /** Accepted credentials (default: one pair, DEFAULT_CREDENTIAL). */
  credentials?: Credential[];
  clock?: Clock;
  settings?: Partial<Settings>;
  /** Bearer token of the /emulator/v1/ admin endpoints (default: random, see adminToken). */
  adminToken?: string;
}

export const DEFAULT_CREDENTIAL: Credential = {
  accessKeyId: 'AKIAKNOCKGATEEMULATOR',
  secretAccessKey: 'knockgate-emulator-secret-access-key',
};

export interface RequestRecord {
  action: string;
  region?: string;
  accessKeyId?: string;
  status: number;
  code?: string;
}

export class Ec2Emulator {
  readonly faults = new Faults();
  readonly settings: Settings;
  readonly adminToken: string;
  /** Every EC2 request answered (or dropped: status 0), in order. */
  readonly requests: RequestRecord[] = [];
  private readonly clock: Clock;
  private readonly credentials = new Map<string, Credential>();
  private readonly regions = new Map<string, Region>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly sockets = new Set<Socket>();
  private server?: Server;
  private boundPort = 0;

  constructor(private readonly options: Ec2EmulatorOptions = {}) {
    this.clock = options.clock ?? systemClock;
    checkSettings(options.settings ?? {});
    this.settings = { ...DEFAULT_SETTINGS, ...options.settings, deny: { ...options.settings?.deny } };
    this.adminToken = options.adminToken ?? randomBytes(16).toString('hex');
    for (const c of options.credentials ?? [DEFAULT_CREDENTIAL]) this.addCredential(c);
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `http://${this.options.host ?? '127.0.0.1'}:${this.boundPort}`;
  }

  addCredential(c: Credential): void {
    this.credentials.set(c.accessKeyId, c);
  }

  /** Temporary credentials (with a session token) valid for `ttlMs`, as STS would issue them. */
  issueTemporaryCredential(ttlMs = 3_600_000): Required<Credential> {
    const c = {
      accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(20).toString('base64'),
      sessionToken: randomBytes(32).toString('base64'),
      expiresAt: this.clock.now() + ttlMs,
    };
    this.addCredential(c);
    return c;
  }

  setSettings(s: Partial<Settings>): void {
    checkSettings(s);
    Object.assign(this.settings, s);
  }

  /** The state of one region (created on first use, as every region exists on AWS). */
  region(name: string): Region {
    let r = this.regions.get(name);
    if (!r) {
      r = new Region(name, () => this.settings);
      this.regions.set(name, r);
    }
    return r;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => resolve());
    });
    this.server = server;
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : 0;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch {
      return void sendXml(
        res,
        413,
        errorXml('RequestEntityTooLarge', `body over ${MAX_BODY} bytes`, randomUUID()),
      );
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path.startsWith('/emulator/v1/')) return this.admin(req, res, path, body);
    const requestId = randomUUID();
    const record: RequestRecord = { action: '', status: 200 };
    this.requests.push(record);
    if (this.faults.latencyMs > 0)
      await new Promise<void>((r) => this.clock.setTimeout(r, this.faults.latencyMs));
    try {
      if (req.method !== 'POST')
        throw new Ec2Error('InvalidAction', 'The EC2 emulator takes POST requests only');
      const params = Params.parse(body.toString('utf8'));
      record.action = params.require('Action');
      const signed = verifySigV4(
        { method: req.method, url: req.url ?? '/', headers: req.headers, body },
        (id) => this.credentials.get(id),
        this.clock.now(),
      );
      record.accessKeyId = signed.accessKeyId;
      record.region = signed.region;
      if (!REGION_NAME.test(signed.region))
        throw authFailure('Credential should be scoped to a valid region.');
      const fault = this.faults.take(record.action, signed.region);
      if (fault && 'drop' in fault) {
        record.status = 0;
        req.socket.destroy();
        return;
      }
      if (fault)
        throw fault.status === 500
          ? new Ec2Error('InternalError', 'An internal error has occurred.', 500)
          : new Ec2Error('Unavailable', "The server is overloaded and can't handle the request.", 503);
      if (!this.bucket(signed.region).take())
        throw new Ec2Error('RequestLimitExceeded', 'Request limit exceeded.', 503);
      const version = params.require('Version');
      if (version !== EC2_API_VERSION)
        throw new Ec2Error(
          'InvalidParameterValue',
          `The EC2 emulator speaks Version ${EC2_API_VERSION}, not ${version}`,
        );
      if (this.settings.deny[signed.accessKeyId]?.includes(record.action))
        throw new Ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403);
      const result = this.region(signed.region).run(record.action, params);
      res.setHeader('x-amzn-requestid', requestId);
      sendXml(res, 200, responseXml(record.action, requestId, result));
    } catch (err) {
      const e =
        err instanceof Ec2Error ? err : new Ec2Error('InternalError', 'An internal error has occurred.', 500);
      record.status = e.status;
      record.code = e.code;
      res.setHeader('x-amzn-requestid', requestId);
      sendXml(res, e.status, errorXml(e.code, e.message, requestId));
    }
  }

  private bucket(region: string): TokenBucket {
    let b = this.buckets.get(region);
    if (!b) {
      b = new TokenBucket(this.clock, () => this.settings);
      this.buckets.set(region, b);
    }
    return b;
  }

  /**
   * Test-only admin endpoints (JSON): POST /emulator/v1/faults (FaultRequest), POST
   * /emulator/v1/settings (Partial<Settings>), GET /emulator/v1/requests.
   */
  private admin(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): void {
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (req.headers.authorization !== `Bearer ${this.adminToken}`)
      return json(401, { error: 'admin endpoints need Authorization: Bearer <admin token>' });
    try {
      if (req.method === 'GET' && path === '/emulator/v1/requests') return json(200, this.requests);
      if (req.method !== 'POST') return json(405, { error: `${req.method} ${path}: want POST` });
      const value = JSON.parse(body.toString('utf8') || '{}') as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return json(400, { error: 'want a JSON object' });
      if (path === '/emulator/v1/faults') this.faults.apply(value as FaultRequest);
      else if (path === '/emulator/v1/settings') this.setSettings(value as Partial<Settings>);
      else return json(404, { error: `${path}: no such admin endpoint` });
      return json(200, { ok: true, latencyMs: this.faults.latencyMs, settings: this.settings });
    } catch (err) {
      return json(400, { error: err instanceof Error ? err.message : String(err) });
    }
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('too large'));
        req.pause();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendXml(res: ServerResponse, status: number, xml: string): void {
  res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8' });
  res.end(xml);
}
