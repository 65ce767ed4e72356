// One firewall (controller/firewall) run inside the namespace this process was started in
// (`ip netns exec NS node firewall-driver.js`), as the daemon runs it: no command prefix, so the
// nftables backend uses libnftables in this process as it does in production. The grant-scale
// scenario drives it over stdin, one JSON request a line, and reads one JSON answer a line:
//
//   {"op":"install","backend":"nftables","count":N,"port":P,"client":"10.0.0.2"}  → {"ok":true}
//   {"op":"client"}  the client's own grant                                        → {"ms":...}
//   {"op":"apply"}   N grants at once (per-grant adds; iptables: one sync)         → {"ms":...}
//   {"op":"sync"}    the whole state again (the N grants and the client's)         → {"ms":...}
//   {"op":"expire"}  the N grants removed (per grant; iptables: one sync)          → {"ms":...}
//   {"op":"end"}     cleanup, close, exit                                          → {"ok":true}
//
// A failure answers {"error":"..."} and the scenario stops.

import { createInterface } from 'node:readline';
import { systemClock } from '../../api/clock.js';
import { createLogger } from '../../api/log.js';
import type { FirewallBackend } from '../../api/standalone.js';
import { createFirewall } from '../../controller/firewall/firewall.js';
import type { Firewall, FirewallGrant } from '../../controller/firewall/types.js';

interface Request {
  op: string;
  backend?: FirewallBackend;
  count?: number;
  port?: number;
  client?: string;
}

let firewall: Firewall | undefined;
let perGrant = true;
let client: FirewallGrant;
let grants: FirewallGrant[] = [];

async function timed(op: () => Promise<unknown>): Promise<{ ms: number }> {
  const t = performance.now();
  await op();
  return { ms: performance.now() - t };
}

async function handle(r: Request): Promise<object> {
  if (r.op === 'install') {
    const backend = r.backend!;
    const count = r.count!;
    const ports = [{ port: r.port!, proto: 'tcp' as const }];
    firewall = createFirewall({
      backend,
      logger: createLogger({ level: 'warn', destination: process.stderr }),
      clock: systemClock,
      config: {
        protectedPorts: ports,
        knockPorts: [],
        alwaysAllow: [],
        mode: 'Enforce',
        maxGrants: count + 1,
        conntrackFlush: false,
      },
    });
    perGrant = backend !== 'iptables';
    const expiresAt = Date.now() + 3600_000;
    client = { name: 'bench-client', source: `${r.client!}/32`, ports, expiresAt };
    grants = Array.from({ length: count }, (_, i) => ({
      name: `bench-${i}`,
      source: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
      ports,
      expiresAt,
    }));
    await firewall.install();
    return { ok: true };
  }
  const fw = firewall;
  if (!fw) throw new Error('install first');
  switch (r.op) {
    case 'client':
      return timed(() => (perGrant ? fw.add(client) : fw.sync([client])));
    case 'apply':
      return timed(() =>
        perGrant ? Promise.all(grants.map((g) => fw.add(g))) : fw.sync([...grants, client]),
      );
    case 'sync':
      return timed(() => fw.sync([...grants, client]));
    case 'expire':
      return timed(() =>
        perGrant ? Promise.all(grants.map((g) => fw.remove(g, 'expired'))) : fw.sync([client]),
      );
    case 'end':
      await fw.cleanup().catch(() => undefined);
      await fw.close();
      return { ok: true };
    default:
      throw new Error(`unknown op "${r.op}"`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  let answer: object;
  let end = false;
  try {
    const r = JSON.parse(line) as Request;
    end = r.op === 'end';
    answer = await handle(r);
  } catch (err) {
    answer = { error: (err as Error).message };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
  if (end) break;
}
lines.close();
