// Grant scale: the time to apply and then expire N grants per firewall backend, through the firewall
// module itself inside the server namespace (nftables and ipset: concurrent per-grant add/remove,
// batched by the long-lived session; iptables: one atomic sync, its rule list being linear).

import { systemClock } from '../../api/clock.js';
import { createLogger } from '../../api/log.js';
import type { FirewallBackend } from '../../api/standalone.js';
import { createFirewall } from '../../controller/firewall/firewall.js';
import type { FirewallGrant } from '../../controller/firewall/types.js';
import type { Host } from '../../test/helpers/netns.js';
import {
  PROTECTED_PORT,
  type Figure,
  type RunOptions,
  type Scenario,
  type ScenarioResult,
} from '../lib/setup.js';
import { fmt, markdownTable } from '../lib/stats.js';
import { withTopology } from '../lib/topology.js';

const BACKENDS: FirewallBackend[] = ['nftables', 'ipset', 'iptables'];
const NAME = 'grant-scale';

interface Row {
  backend: FirewallBackend;
  grants: number;
  applyMs: number;
  expireMs: number;
  how: string;
}

async function measure(srv: Host, count: number): Promise<Row[]> {
  const rows: Row[] = [];
  const logger = createLogger({ level: 'warn', destination: process.stderr });
  for (const backend of BACKENDS) {
    const firewall = createFirewall({
      backend,
      logger,
      clock: systemClock,
      commandPrefix: ['ip', 'netns', 'exec', srv.netns],
      config: {
        protectedPorts: [{ port: PROTECTED_PORT, proto: 'tcp' }],
        knockPorts: [],
        alwaysAllow: [],
        mode: 'Enforce',
        maxGrants: count,
        conntrackFlush: false,
      },
    });
    try {
      await firewall.install();
      const expiresAt = Date.now() + 3600_000;
      const grants: FirewallGrant[] = Array.from({ length: count }, (_, i) => ({
        name: `bench-${i}`,
        source: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
        ports: [{ port: PROTECTED_PORT, proto: 'tcp' }],
        expiresAt,
      }));
      const perGrant = backend !== 'iptables';
      let t = performance.now();
      if (perGrant) await Promise.all(grants.map((g) => firewall.add(g)));
      else await firewall.sync(grants);
      const applyMs = performance.now() - t;
      t = performance.now();
      if (perGrant) await Promise.all(grants.map((g) => firewall.remove(g, 'expired')));
      else await firewall.sync([]);
      const expireMs = performance.now() - t;
      rows.push({
        backend,
        grants: count,
        applyMs,
        expireMs,
        how: perGrant
          ? 'concurrent add/remove per grant (long-lived session, batched)'
          : 'one atomic iptables-restore',
      });
      console.error(`  ${backend}: ${count} grants applied in ${fmt(applyMs, 0)} ms`);
    } finally {
      await firewall.cleanup().catch(() => undefined);
      await firewall.close();
    }
  }
  return rows;
}

export const grantScale: Scenario = {
  name: NAME,
  description: 'apply and expire N grants per firewall backend',
  async run(opts: RunOptions): Promise<ScenarioResult> {
    const counts = opts.quick ? [1000] : [1000, 10_000];
    console.error(`${NAME}: ${counts.join(' and ')} grants per backend`);
    const rows = await withTopology(async (net) => {
      const all: Row[] = [];
      for (const n of counts) all.push(...(await measure(net.ns('srv'), n)));
      return all;
    });
    const figures: Figure[] = rows.flatMap((r) =>
      (['apply', 'expire'] as const).map((what) => {
        const v = what === 'apply' ? r.applyMs : r.expireMs;
        return {
          scenario: NAME,
          daemon: `knockgate (${r.backend})`,
          name: `${what} ${r.grants} grants`,
          unit: 'ms',
          median: v,
          p99: v,
          runs: 1,
          values: [v],
          ...(r.grants === 10_000 && r.backend !== 'iptables' ? { target: '< 1000 ms' } : {}),
        };
      }),
    );
    return {
      name: NAME,
      command: `npm run bench -- --only ${NAME}${opts.quick ? ' --quick' : ''}`,
      markdown: [
        '### Grant scale (one run per point)',
        '',
        markdownTable(
          ['backend', 'grants', 'apply all (ms)', 'expire all (ms)', 'how'],
          rows.map((s) => [s.backend, String(s.grants), fmt(s.applyMs, 0), fmt(s.expireMs, 0), s.how]),
        ),
      ].join('\n'),
      figures,
    };
  },
};
