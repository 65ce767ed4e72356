// Just enough of Kubernetes' protobuf encoding to read what kubectl sends as protobuf to the
// emulator: the "k8s\0" envelope (runtime.Unknown) and the messages named below. kubectl sends
// built-in kinds such as SelfSubjectAccessReview (`kubectl auth can-i`) as protobuf and accepts JSON
// back, so only decoding is needed.

import { badRequest } from './status.js';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]); // "k8s\0"

type Field = { no: number; bytes?: Buffer; varint?: bigint };

/** The fields of one protobuf message (wire types varint, 64-bit, length-delimited, 32-bit). */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (i >= buf.length) throw badRequest('protobuf: truncated varint');
      const b = buf[i++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
    throw badRequest('protobuf: varint too long');
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    switch (key & 7) {
      case 0:
        out.push({ no, varint: varint() });
        break;
      case 1:
        i += 8;
        break;
      case 2: {
        const len = Number(varint());
        if (i + len > buf.length) throw badRequest('protobuf: truncated field');
        out.push({ no, bytes: buf.subarray(i, i + len) });
        i += len;
        break;
      }
      case 5:
        i += 4;
        break;
      default:
        throw badRequest(`protobuf: unsupported wire type ${key & 7}`);
    }
    if (i > buf.length) throw badRequest('protobuf: truncated message');
  }
  return out;
}

const bytesOf = (fs: Field[], no: number) => fs.find((f) => f.no === no)?.bytes;
const stringOf = (fs: Field[], no: number) => bytesOf(fs, no)?.toString('utf8');

/** Unwrap the runtime.Unknown envelope: the kind and the raw message. */
export function decodeEnvelope(body: Buffer): { apiVersion: string; kind: string; raw: Buffer } {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC))
    throw badRequest('protobuf: the body does not start with the k8s\\0 prefix');
  const unknown = fields(body.subarray(4));
  const typeMeta = fields(bytesOf(unknown, 1) ?? Buffer.alloc(0));
  return {
    apiVersion: stringOf(typeMeta, 1) ?? '',
    kind: stringOf(typeMeta, 2) ?? '',
    raw: bytesOf(unknown, 2) ?? Buffer.alloc(0),
  };
}

/** A SelfSubjectAccessReview (authorization.k8s.io/v1 generated.proto) as its JSON form. */
export function decodeSelfSubjectAccessReview(raw: Buffer): Record<string, unknown> {
  const review = fields(raw);
  const spec = fields(bytesOf(review, 2) ?? Buffer.alloc(0));
  const out: Record<string, unknown> = {};
  const resource = bytesOf(spec, 1);
  if (resource) {
    const r = fields(resource);
    // namespace=1 verb=2 group=3 version=4 resource=5 subresource=6 name=7
    const names = ['', 'namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'];
    out.resourceAttributes = Object.fromEntries(
      names.flatMap((n, no) => (n && stringOf(r, no) !== undefined ? [[n, stringOf(r, no)]] : [])),
    );
  }
  const nonResource = bytesOf(spec, 2);
  if (nonResource) {
    const r = fields(nonResource);
    out.nonResourceAttributes = { path: stringOf(r, 1) ?? '', verb: stringOf(r, 2) ?? '' };
  }
  return { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: out };
}

const stringsOf = (fs: Field[], no: number) =>
  fs.filter((f) => f.no === no && f.bytes).map((f) => f.bytes!.toString('utf8'));

/** A protobuf map<string, V> field: repeated entries of key=1, value=2. */
function mapOf(fs: Field[], no: number, value: (b: Buffer) => string): Record<string, string> | undefined {
  const entries = fs.filter((f) => f.no === no && f.bytes);
  if (entries.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const e of entries) {
    const kv = fields(e.bytes!);
    out[stringOf(kv, 1) ?? ''] = value(bytesOf(kv, 2) ?? Buffer.alloc(0));
  }
  return out;
}

/** The ObjectMeta fields a client sets on a create or update (apimachinery generated.proto). */
function decodeObjectMeta(raw: Buffer): Record<string, unknown> {
  const m = fields(raw);
  const utf8 = (b: Buffer) => b.toString('utf8');
  const meta: Record<string, unknown> = {};
  // name=1 generateName=2 namespace=3 uid=5 resourceVersion=6 labels=11 annotations=12 finalizers=14
  for (const [no, key] of [
    [1, 'name'],
    [2, 'generateName'],
    [3, 'namespace'],
    [5, 'uid'],
    [6, 'resourceVersion'],
  ] as const) {
    const v = stringOf(m, no);
    if (v) meta[key] = v;
  }
  const labels = mapOf(m, 11, utf8);
  if (labels) meta.labels = labels;
  const annotations = mapOf(m, 12, utf8);
  if (annotations) meta.annotations = annotations;
  const finalizers = stringsOf(m, 14);
  if (finalizers.length) meta.finalizers = finalizers;
  return meta;
}

/**
 * A core/v1 Secret (k8s.io/api/core/v1 generated.proto) as its JSON form: what `kubectl create
 * secret` sends. metadata=1, data=2 (map<string, bytes>, base64 in JSON), type=3, stringData=4,
 * immutable=5.
 */
export function decodeSecret(raw: Buffer): Record<string, unknown> {
  const s = fields(raw);
  const out: Record<string, unknown> = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: decodeObjectMeta(bytesOf(s, 1) ?? Buffer.alloc(0)),
  };
  const data = mapOf(s, 2, (b) => b.toString('base64'));
  if (data) out.data = data;
  const type = stringOf(s, 3);
  if (type) out.type = type;
  const stringData = mapOf(s, 4, (b) => b.toString('utf8'));
  if (stringData) out.stringData = stringData;
  const immutable = s.find((f) => f.no === 5)?.varint;
  if (immutable !== undefined) out.immutable = immutable !== 0n;
  return out;
}

/**
 * meta.k8s.io/v1 DeleteOptions (what client-go's typed clients, Helm's release storage among them,
 * send as the body of a DELETE): gracePeriodSeconds 1, preconditions 2 {uid 1, resourceVersion 2},
 * orphanDependents 3, propagationPolicy 4, dryRun 5 (repeated).
 */
export function decodeDeleteOptions(raw: Buffer): Record<string, unknown> {
  const fs = fields(raw);
  const out: Record<string, unknown> = {};
  const pre = bytesOf(fs, 2);
  if (pre) {
    const p = fields(pre);
    out.preconditions = {
      ...(stringOf(p, 1) !== undefined ? { uid: stringOf(p, 1) } : {}),
      ...(stringOf(p, 2) !== undefined ? { resourceVersion: stringOf(p, 2) } : {}),
    };
  }
  const policy = stringOf(fs, 4);
  if (policy !== undefined) out.propagationPolicy = policy;
  const dryRun = stringsOf(fs, 5);
  if (dryRun.length) out.dryRun = dryRun;
  return out;
}
