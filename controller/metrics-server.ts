// The small HTTP server every role serves its Prometheus registry on (127.0.0.1 unless told
// otherwise): /metrics, /healthz (the process answers) and, for a role that says when it is ready,
// /readyz (200, or 503 with the reason in one line). Used by standalone, sniffer, controller and
// agent; controller/standalone/metrics.ts re-exports it for the existing callers.

import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export class MetricsAddressError extends Error {}

/** Parse "127.0.0.1:9464" / "[::1]:9464". */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([0-9.]+|localhost)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535)
    throw new MetricsAddressError(`invalid metrics address "${text}": want HOST:PORT, e.g. 127.0.0.1:9464`);
  return { host: m[1] ?? m[2]!, port };
}

export interface HealthChecks {
  /** undefined when ready, else why not (one line). Without it /readyz is 404. */
  notReady?: () => string | undefined;
  /**
   * When ready, what kind of ready (one line, e.g. "standby: the Lease is held by pod-b"): the
   * body is then "ok: <note>", so a probe log or a curl says more than 200 does.
   */
  readyNote?: () => string | undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

export async function serveMetrics(
  metrics: { registry: Registry },
  address: string,
  checks: HealthChecks = {},
): Promise<Server> {
  const { host, port } = parseListenAddress(address);
  const text = (res: import('node:http').ServerResponse, code: number, body: string) => {
    res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`${body}\n`);
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(body);
        },
        (err: unknown) => text(res, 500, `metrics: ${(err as Error).message}`),
      );
    } else if (path === '/healthz') {
      text(res, 200, 'ok');
    } else if (path === '/readyz' && checks.notReady) {
      let why: string | undefined;
      let note: string | undefined;
      try {
        why = checks.notReady();
        if (why === undefined) note = checks.readyNote?.();
      } catch (err) {
        why = `readiness check failed: ${(err as Error).message}`;
      }
      if (why !== undefined) text(res, 503, oneLine(why));
      else text(res, 200, note ? `ok: ${oneLine(note)}` : 'ok');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
