// 10,000 concurrent grants from distinct sources with the nftables and ipset backends, in a network
// namespace: every one reaches the kernel through the per-grant path (the long-lived nft/ipset
// process), the kernel holds them all, the next one beyond maxGrants is refused, and the kernel
// ends them all on its own. Also the whole-state path (sync) with the same 10,000.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../api/clock.js';
import type { FirewallBackend } from '../api/standalone.js';
import { createFirewall } from '../controller/firewall/firewall.js';
import { MaxGrantsError, type Firewall, type FirewallGrant } from '../controller/firewall/types.js';
import { baseConfig, silentLogger } from './helpers/firewall-scenarios.js';
import { skipWithoutNetns, Topology, waitFor, type Host } from './helpers/netns.js';

const COUNT = 10_000;
const PORT = 2222;

function source(i: number): string {
  return `10.${100 + Math.floor(i / 65_536)}.${Math.floor(i / 256) % 256}.${(i % 256) + 0}`;
}

function grants(expiresAt: number, prefix: string): FirewallGrant[] {
  return Array.from({ length: COUNT }, (_, i) => ({
    name: `${prefix}-${i}`,
    source: source(i),
    ports: [{ port: PORT, proto: 'tcp' as const }],
    expiresAt,
  }));
}

/** Grant elements the kernel holds now (expired ones are not listed by either tool). */
async function kernelCount(host: Host, backend: FirewallBackend): Promise<number> {
  if (backend === 'nftables') {
    const { stdout } = await host.run('nft', ['list', 'set', 'inet', 'knockgate', 'grants4']);
    return stdout.match(/\d+\.\d+\.\d+\.\d+ \. tcp \. 2222/g)?.length ?? 0;
  }
  const { stdout } = await host.run('ipset', ['list', 'knockgate-grants4']);
  return stdout.split('\n').filter((l) => /^\d+\.\d+\.\d+\.\d+,tcp:2222\b/.test(l)).length;
}

for (const backend of ['nftables', 'ipset'] as const) {
  describe.skipIf(skipWithoutNetns(`firewall ${backend} scale`))(
    `firewall ${backend}: ${COUNT} grants`,
    () => {
      let net: Topology;
      let srv: Host;
      let fw: Firewall;

      beforeAll(async () => {
        net = await Topology.create(['srv']);
        srv = net.ns('srv');
        fw = createFirewall({
          backend,
          logger: silentLogger,
          clock: systemClock,
          commandPrefix: ['ip', 'netns', 'exec', srv.netns],
        });
        await fw.install({ ...baseConfig(), maxGrants: COUNT });
      });

      afterAll(async () => {
        await fw?.cleanup().catch(() => undefined);
        await fw?.close();
        await net?.destroy();
      });

      it('applies 10,000 concurrent adds through the long-lived process, refuses the next, expires them all', async () => {
        const lifetimeMs = 30_000;
        const started = Date.now();
        await Promise.all(grants(started + lifetimeMs, 'scale').map((g) => fw.add(g)));
        const applyMs = Date.now() - started;
        expect(fw.stats().grants).toBe(COUNT);
        expect(await kernelCount(srv, backend)).toBe(COUNT);
        await expect(
          fw.add({
            name: 'one-more',
            source: '10.99.0.1',
            ports: [{ port: PORT, proto: 'tcp' }],
            expiresAt: started + lifetimeMs,
          }),
        ).rejects.toThrow(MaxGrantsError);
        expect(fw.stats().refusedMaxGrants).toBe(1);
        console.log(`${backend}: ${COUNT} adds applied in ${applyMs} ms`);
        await waitFor(async () => (await kernelCount(srv, backend)) === 0, {
          timeoutMs: lifetimeMs + 30_000,
          intervalMs: 2_000,
          what: `all ${COUNT} ${backend} grants to expire in the kernel`,
        });
        console.log(`${backend}: all expired ${Date.now() - started - lifetimeMs} ms after their end`);
      }, 150_000);

      it('applies 10,000 grants as one whole-state sync, and an empty sync clears them', async () => {
        const started = Date.now();
        await fw.sync(grants(started + 120_000, 'sync'));
        const applyMs = Date.now() - started;
        expect(await kernelCount(srv, backend)).toBe(COUNT);
        console.log(`${backend}: sync of ${COUNT} grants in ${applyMs} ms`);
        await fw.sync([]);
        expect(await kernelCount(srv, backend)).toBe(0);
      }, 120_000);
    },
  );
}
