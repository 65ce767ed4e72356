// Prometheus metrics of `knockgate standalone` (prom-client), served on 127.0.0.1 only unless told
// otherwise: /metrics and /healthz.

import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface StandaloneMetrics {
  registry: Registry;
  opened: Counter<'policy' | 'method' | 'extended'>;
  refusals: Counter<'policy' | 'reason'>;
  failed: Counter<'policy'>;
  maxGrantsRefused: Counter;
  activeGrants: Gauge;
  captureDrops: Gauge<'interface'>;
}

export function createStandaloneMetrics(): StandaloneMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'knockgate_' });
  return {
    registry,
    opened: new Counter({
      name: 'knockgate_grants_opened_total',
      help: 'Grants opened or extended, by policy and method',
      labelNames: ['policy', 'method', 'extended'],
      registers: [registry],
    }),
    refusals: new Counter({
      name: 'knockgate_refusals_total',
      help: 'Knocks and SPA packets refused, by policy and reason',
      labelNames: ['policy', 'reason'],
      registers: [registry],
    }),
    failed: new Counter({
      name: 'knockgate_grants_failed_total',
      help: 'Grants that could not be applied (firewall or start command failed)',
      labelNames: ['policy'],
      registers: [registry],
    }),
    maxGrantsRefused: new Counter({
      name: 'knockgate_max_grants_refused_total',
      help: 'Grants refused because --max-grants were open',
      registers: [registry],
    }),
    activeGrants: new Gauge({
      name: 'knockgate_active_grants',
      help: 'Live grants at the last firewall resync',
      registers: [registry],
    }),
    captureDrops: new Gauge({
      name: 'knockgate_capture_drops_estimate',
      help: 'Packets dropped on the capture interface since capture started (estimate from interface counters)',
      labelNames: ['interface'],
      registers: [registry],
    }),
  };
}

export class MetricsAddressError extends Error {}

/** Parse "127.0.0.1:9464" / "[::1]:9464". */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([0-9.]+|localhost)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535)
    throw new MetricsAddressError(`invalid metrics address "${text}": want HOST:PORT, e.g. 127.0.0.1:9464`);
  return { host: m[1] ?? m[2]!, port };
}

export async function serveMetrics(
  metrics: Pick<StandaloneMetrics, 'registry'>,
  address: string,
): Promise<Server> {
  const { host, port } = parseListenAddress(address);
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      void metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      });
    } else if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
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
