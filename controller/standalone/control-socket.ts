// The running daemon's control socket: `knockgate revoke` reaches the daemon through it, so access
// closes at once in the process that owns the firewall (not by editing files behind its back).
//
// Wire format: a Unix stream socket at <state-dir>/control.sock (mode 0600, root only), one JSON
// request line, one JSON reply line, then the server closes the connection.
//   → {"op":"revoke","source":"10.1.2.3","policy":"ssh"}      (policy optional)
//   ← {"ok":true,"revoked":["ssh-0a010203"]}   or   {"ok":false,"error":"one line"}

import { chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

export const CONTROL_SOCKET_NAME = 'control.sock';
/** A request longer than this is refused (a line of JSON is a few hundred bytes). */
const MAX_REQUEST_BYTES = 4096;
const CLIENT_TIMEOUT_MS = 10_000;

export interface RevokeRequest {
  op: 'revoke';
  source: string;
  policy?: string;
}

export type ControlRequest = RevokeRequest;

export type ControlReply = { ok: true; revoked: string[] } | { ok: false; error: string };

export class ControlSocketError extends Error {}

export function controlSocketPath(stateDir: string): string {
  return join(stateDir, CONTROL_SOCKET_NAME);
}

function parseRequest(line: string): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ControlSocketError('request is not JSON');
  }
  const r = value as Partial<RevokeRequest>;
  if (r === null || typeof r !== 'object' || r.op !== 'revoke')
    throw new ControlSocketError('unknown request: want {"op":"revoke",...}');
  if (typeof r.source !== 'string') throw new ControlSocketError('revoke: source must be a string');
  if (r.policy !== undefined && typeof r.policy !== 'string')
    throw new ControlSocketError('revoke: policy must be a string');
  return { op: 'revoke', source: r.source, ...(r.policy !== undefined ? { policy: r.policy } : {}) };
}

/** Serve requests with `handle` (which may throw: the error's message is the reply). */
export async function listenControlSocket(
  stateDir: string,
  handle: (req: ControlRequest) => Promise<ControlReply>,
): Promise<Server> {
  const path = controlSocketPath(stateDir);
  // The state dir is locked by this process, so a socket file left there is a dead daemon's.
  await unlink(path).catch(() => undefined);
  const server = createServer((socket: Socket) => {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const end = buffered.indexOf('\n');
      if (end < 0) {
        if (buffered.length > MAX_REQUEST_BYTES) socket.end(reply({ ok: false, error: 'request too long' }));
        return;
      }
      socket.removeAllListeners('data');
      const line = buffered.slice(0, end);
      void (async () => {
        let answer: ControlReply;
        try {
          answer = await handle(parseRequest(line));
        } catch (err) {
          answer = { ok: false, error: (err as Error).message };
        }
        socket.end(reply(answer));
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  return server;
}

function reply(answer: ControlReply): string {
  return `${JSON.stringify(answer)}\n`;
}

/** Send one request to the daemon of `stateDir`. Throws ControlSocketError (one line). */
export function sendControlRequest(stateDir: string, req: ControlRequest): Promise<ControlReply> {
  const path = controlSocketPath(stateDir);
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let text = '';
    const fail = (message: string) => {
      socket.destroy();
      reject(new ControlSocketError(message));
    };
    socket.setTimeout(CLIENT_TIMEOUT_MS, () => fail(`no answer from the daemon at ${path}`));
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? `no knockgate standalone is running with state dir ${stateDir}`
          : `${path}: ${err.message}`,
      ),
    );
    socket.on('end', () => {
      try {
        resolve(JSON.parse(text) as ControlReply);
      } catch {
        reject(new ControlSocketError(`bad answer from the daemon at ${path}`));
      }
    });
  });
}
