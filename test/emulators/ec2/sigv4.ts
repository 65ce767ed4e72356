// Signature Version 4 verification for the emulator (test infrastructure; the product never signs by
// hand, it uses @aws-sdk/client-ec2). What is checked, from the SigV4 specification:
//   Authorization: AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/ec2/aws4_request,
//                  SignedHeaders=h1;h2;..., Signature=hex
//   canonical request = METHOD \n path \n canonical query \n "name:value\n" per signed header \n
//                       signed headers \n hex(sha256(body))
//   string to sign    = "AWS4-HMAC-SHA256" \n X-Amz-Date \n scope \n hex(sha256(canonical request))
//   signing key       = HMAC chain "AWS4"+secret → date → region → service → "aws4_request"
// plus: host and x-amz-date signed, the credential date equal to X-Amz-Date's day, X-Amz-Date within
// 15 minutes of the emulator's clock, x-amz-content-sha256 (when sent) equal to the body's hash, and
// the session token (X-Amz-Security-Token) of temporary credentials.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { authFailure, Ec2Error } from './errors.js';

export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials: the token the request must carry, and when they stop working. */
  sessionToken?: string;
  expiresAt?: number;
}

export interface Signed {
  accessKeyId: string;
  region: string;
}

const SKEW_MS = 15 * 60_000;
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function canonicalQuery(search: string): string {
  const pairs = [...new URLSearchParams(search)].map(([k, v]) => [enc(k), enc(v)]);
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function enc(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function verifySigV4(
  req: { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer },
  lookup: (accessKeyId: string) => Credential | undefined,
  now: number,
): Signed {
  const auth = header(req.headers, 'authorization');
  if (!auth) throw authFailure('AWS was not able to validate the provided access credentials');
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) throw authFailure('AWS was not able to validate the provided access credentials');
  const [, accessKeyId, day, region, service, signedHeaders, signature] = m;
  const cred = lookup(accessKeyId);
  if (!cred) throw authFailure('AWS was not able to validate the provided access credentials');
  if (service !== 'ec2') throw authFailure(`Credential should be scoped to correct service: 'ec2'.`);
  const amzDate = header(req.headers, 'x-amz-date') ?? '';
  const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!dm) throw authFailure('AWS was not able to validate the provided access credentials');
  const at = Date.UTC(+dm[1], +dm[2] - 1, +dm[3], +dm[4], +dm[5], +dm[6]);
  if (amzDate.slice(0, 8) !== day) throw authFailure('Credential should be scoped to a valid date.');
  if (Math.abs(at - now) > SKEW_MS)
    throw new Ec2Error('RequestExpired', `Request has expired. Timestamp date is ${amzDate}`);
  const names = signedHeaders.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date'))
    throw authFailure('AWS was not able to validate the provided access credentials');
  const bodyHash = sha256(req.body);
  const claimed = header(req.headers, 'x-amz-content-sha256');
  if (claimed !== undefined && claimed !== bodyHash)
    throw authFailure('The provided x-amz-content-sha256 header does not match what was computed.');
  const url = new URL(req.url, 'http://emulator');
  const canonicalHeaders = names
    .map((n) => `${n}:${(header(req.headers, n) ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const canonical = [
    req.method,
    url.pathname || '/',
    canonicalQuery(url.search),
    canonicalHeaders,
    signedHeaders,
    bodyHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac(`AWS4${cred.secretAccessKey}`, day);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const expected = createHmac('sha256', key).update(toSign).digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex')))
    throw authFailure(
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    );
  if (cred.sessionToken !== undefined) {
    const token = header(req.headers, 'x-amz-security-token');
    if (token !== cred.sessionToken || !names.includes('x-amz-security-token'))
      throw authFailure('The security token included in the request is invalid.');
    if (cred.expiresAt !== undefined && now >= cred.expiresAt)
      throw authFailure('The security token included in the request is expired');
  }
  return { accessKeyId, region };
}
