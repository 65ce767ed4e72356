// A kubeconfig loader of knockgate's own, for the sniffer: the KubeConnection (connection.ts) of a
// kubeconfig file (--kubeconfig, else the first file of $KUBECONFIG) or, inside a pod, of the
// service account (KUBERNETES_SERVICE_HOST/PORT, /var/run/secrets/kubernetes.io/serviceaccount/
// {token,ca.crt}).
//
// Why it exists: memory. Loading a kubeconfig through @kubernetes/client-node means importing its
// KubeConfig, whose module imports every generated API and model: ~60 MiB of the sniffer's ~105 MiB
// idle RSS (bench/README.md, "Idle RSS of the Kubernetes roles"), against a 64 MiB target. This
// reads the handful of fields a node's sniffer needs with the `yaml` dependency the config loader
// already has (loaded only for a file: the in-cluster path reads no YAML).
//
// Supported: clusters[].cluster.server (https only), certificate-authority / -data,
// tls-server-name, insecure-skip-tls-verify false; users[].user.token / tokenFile (re-read every
// minute and after a 401: a projected ServiceAccount token rotates), client-certificate / -data with
// client-key / -data; current-context or --context. Refused with one line naming the kubeconfig and
// the user (or cluster): exec and auth-provider plugins, username/password, impersonation, proxies,
// insecure-skip-tls-verify true, plain http. Relative file paths are relative to the kubeconfig's
// directory (as kubectl reads them).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { KubeConnection, type KubeConnectionParts } from './connection.js';
import { applyRequestTimeout } from './request.js';

export class KubeConfigError extends Error {}

export interface KubeConnectionOptions {
  /** A kubeconfig file. Default: $KUBECONFIG (its first file), else the in-cluster service account. */
  kubeconfig?: string;
  /** A context of that file other than its current-context. */
  context?: string;
  /** Environment to read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Root under which the service account files live (tests); default "" (= /var/run/secrets/...). */
  serviceAccountRoot?: string;
  /** Deadline of every API request but watches (request.ts); default KUBE_STORE_DEFAULTS.requestTimeoutMs. */
  requestTimeoutMs?: number;
  /** Clock of the token file's re-reads (tests). */
  now?: () => number;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The connection of `opts`, every request bounded by the request timeout. Throws KubeConfigError. */
export async function loadKubeConnection(opts: KubeConnectionOptions = {}): Promise<KubeConnection> {
  const env = opts.env ?? process.env;
  const file = opts.kubeconfig ?? (env.KUBECONFIG ? env.KUBECONFIG.split(':')[0] : undefined);
  const parts = file ? await fromFile(file, opts) : fromCluster(env, opts);
  let connection: KubeConnection;
  try {
    connection = new KubeConnection({ ...parts, ...(opts.now ? { now: opts.now } : {}) });
  } catch (err) {
    throw new KubeConfigError(firstLine(err));
  }
  return applyRequestTimeout(connection, opts.requestTimeoutMs);
}

type Doc = Record<string, unknown>;

function isObject(x: unknown): x is Doc {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The `key` entry named `name` of a kubeconfig list (clusters, users, contexts). */
function named(doc: Doc, list: string, key: string, name: unknown): Doc | undefined {
  const entries = doc[list];
  if (!Array.isArray(entries)) return undefined;
  const entry: unknown = entries.find((e) => isObject(e) && e.name === name);
  return isObject(entry) && isObject(entry[key]) ? entry[key] : isObject(entry) ? {} : undefined;
}

async function fromFile(file: string, opts: KubeConnectionOptions): Promise<KubeConnectionParts> {
  const where = `kubeconfig ${file}`;
  const fail = (why: string): never => {
    throw new KubeConfigError(`${where}: ${why}`);
  };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return fail(`cannot read: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    // JSON is YAML; the parser loads only here (the in-cluster path needs none).
    const { parse } = await import('yaml');
    doc = parse(text);
  } catch (err) {
    return fail(firstLine(err));
  }
  if (!isObject(doc)) return fail('not a kubeconfig (want a YAML mapping with clusters, users, contexts)');
  const contextName = opts.context ?? doc['current-context'];
  if (typeof contextName !== 'string' || !contextName)
    return fail('no current-context (pass --context NAME)');
  const context = named(doc, 'contexts', 'context', contextName);
  if (!context) return fail(`no context "${contextName}"`);
  const cluster = named(doc, 'clusters', 'cluster', context.cluster);
  if (!cluster || typeof context.cluster !== 'string') return fail('the current context names no cluster');
  const user = named(doc, 'users', 'user', context.user);
  if (!user || typeof context.user !== 'string') return fail('the current context names no user');
  const base = dirname(resolve(file));
  const clusterWhere = `cluster "${context.cluster}"`;
  const userWhere = `user "${context.user}"`;

  // --- cluster ---------------------------------------------------------------------------------
  const server = cluster.server;
  if (typeof server !== 'string' || !server) return fail(`${clusterWhere} has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return fail(`${clusterWhere}: server "${server}" is not a URL`);
  }
  if (url.protocol !== 'https:')
    return fail(
      `${clusterWhere}: server ${server}: only https is supported (credentials would travel in clear)`,
    );
  if (url.pathname !== '/' && url.pathname !== '')
    return fail(`${clusterWhere}: server ${server}: a path after the host is not supported`);
  if (cluster['insecure-skip-tls-verify'] === true)
    return fail(`${clusterWhere}: insecure-skip-tls-verify true is not supported (give its CA)`);
  for (const key of ['proxy-url', 'disable-compression'])
    if (cluster[key] !== undefined) return fail(`${clusterWhere}: ${key} is not supported`);
  const ca = material(cluster, 'certificate-authority', base, (why) => fail(`${clusterWhere}: ${why}`));
  const servername = cluster['tls-server-name'];
  if (servername !== undefined && typeof servername !== 'string')
    return fail(`${clusterWhere}: tls-server-name must be a string`);

  // --- user ------------------------------------------------------------------------------------
  const refuse = (what: string) =>
    fail(
      `${userWhere}: ${what} is not supported by knockgate's kubeconfig loader (use a token, a tokenFile or a client certificate)`,
    );
  if (user.exec !== undefined) refuse('an exec credential plugin');
  if (user['auth-provider'] !== undefined) refuse('an auth-provider plugin');
  if (user.username !== undefined || user.password !== undefined) refuse('username/password');
  for (const key of ['as', 'as-uid', 'as-groups', 'as-user-extra'])
    if (user[key] !== undefined) refuse(`impersonation (${key})`);
  const userFail = (why: string) => fail(`${userWhere}: ${why}`);
  const cert = material(user, 'client-certificate', base, userFail);
  const key = material(user, 'client-key', base, userFail);
  if ((cert === undefined) !== (key === undefined))
    return userFail('client-certificate and client-key go together: one of them is missing');
  let token: string | undefined;
  let tokenFile: string | undefined;
  if (user.token !== undefined) {
    if (typeof user.token !== 'string' || !user.token) return userFail('token must be a non-empty string');
    token = user.token;
  } else if (user.tokenFile !== undefined) {
    if (typeof user.tokenFile !== 'string' || !user.tokenFile)
      return userFail('tokenFile must be a file name');
    tokenFile = resolve(base, user.tokenFile);
  }
  return {
    server: url.origin,
    source: where,
    user: context.user,
    tls: {
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(servername ? { servername } : {}),
    },
    ...(token !== undefined ? { token } : {}),
    ...(tokenFile !== undefined ? { tokenFile } : {}),
  };
}

/** `<name>-data` (base64) or `<name>` (a file, relative to `base`), or undefined. */
function material(entry: Doc, name: string, base: string, fail: (why: string) => never): Buffer | undefined {
  const data = entry[`${name}-data`];
  if (data !== undefined) {
    if (typeof data !== 'string' || !/^[A-Za-z0-9+/=\s]+$/.test(data))
      return fail(`${name}-data is not base64`);
    const bytes = Buffer.from(data, 'base64');
    if (bytes.length === 0) return fail(`${name}-data is empty`);
    return bytes;
  }
  const path = entry[name];
  if (path === undefined) return undefined;
  if (typeof path !== 'string' || !path) return fail(`${name} must be a file name`);
  try {
    return readFileSync(resolve(base, path));
  } catch (err) {
    return fail(`${name} ${path}: cannot read: ${(err as Error).message}`);
  }
}

function fromCluster(env: NodeJS.ProcessEnv, opts: KubeConnectionOptions): KubeConnectionParts {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new KubeConfigError(
      'no Kubernetes API: pass --kubeconfig (or set KUBECONFIG), or run in a pod (KUBERNETES_SERVICE_HOST is not set)',
    );
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    throw new KubeConfigError(`in-cluster config: KUBERNETES_SERVICE_PORT "${port}" is not a port`);
  if (!/^[A-Za-z0-9.:-]+$/.test(host))
    throw new KubeConfigError(
      `in-cluster config: KUBERNETES_SERVICE_HOST "${host}" is not a host name or address`,
    );
  const root = opts.serviceAccountRoot ?? '';
  const files = { token: '', ca: '' };
  for (const [k, f] of [
    ['token', 'token'],
    ['ca', 'ca.crt'],
  ] as const) {
    const path = `${root}${join(SERVICE_ACCOUNT_DIR, f)}`;
    if (!existsSync(path))
      throw new KubeConfigError(`in-cluster config: ${path} is missing (no service account token mounted?)`);
    files[k] = path;
  }
  let ca: Buffer;
  try {
    ca = readFileSync(files.ca);
  } catch (err) {
    throw new KubeConfigError(`in-cluster config: ${files.ca}: cannot read: ${(err as Error).message}`);
  }
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    source: 'in-cluster config',
    user: 'service account',
    tls: { ca },
    tokenFile: files.token,
  };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
