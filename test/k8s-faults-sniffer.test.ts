// Faults where the sniffer matters, end to end: `knockgate sniffer` (the built CLI) capturing in the
// node's namespace, the real agent driving nftables there, a controller in process, the real
// `knock` client in cli. Grant writes answered 500 and 429 are retried into exactly one grant; with
// the API stopped a knock opens nothing (fail closed: it is not written later either), and a knock
// after it opens. Each scenario ends on the bench's invariant (test/helpers/k8s-faults-harness.ts).

import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessGrant } from '../api/types.js';
import { FaultsBench } from './helpers/k8s-faults-harness.js';
import { skipWithoutNetns, waitFor } from './helpers/netns.js';

const CTL = 'system:serviceaccount:knockgate:controller';

describe.skipIf(skipWithoutNetns('faults with the sniffer, agent + controller'))(
  'sniffer, agent and controller under API faults (knock from a namespace)',
  () => {
    const bench = new FaultsBench();
    let sniffer: { child: ChildProcess; output: () => string };
    const cliGrants = (): AccessGrant[] =>
      bench.grants().filter((g) => g.spec.source === `${bench.cli4}/32` && !g.metadata.deletionTimestamp);
    const active = (g: AccessGrant | undefined) =>
      g !== undefined && bench.phase(g.metadata.name) === 'Active';

    beforeAll(async () => {
      await bench.start([CTL]);
      const ctl = bench.manager(CTL);
      await waitFor(() => ctl.isLeader(), { what: 'the controller to lead' });
      sniffer = await bench.startSniffer();
    }, 90_000);

    afterAll(() => bench.stop(), 60_000);

    it('grant writes answered 500 and 429 are retried: one grant, opened, Active', async () => {
      expect(await bench.connect()).toBe('timeout');
      const since = Date.now();
      const faults = bench.cluster.server.faults;
      faults.fail({ code: 500, count: 2, method: 'POST', pathIncludes: 'accessgrants' });
      faults.fail({
        code: 429,
        count: 1,
        method: 'POST',
        pathIncludes: 'accessgrants',
        retryAfterSeconds: 1,
      });
      await bench.knock();
      await waitFor(() => active(cliGrants()[0]), { what: 'the knock granted', timeoutMs: 30_000 });
      expect(cliGrants()).toHaveLength(1);
      const refused = [...bench.answered(500, since), ...bench.answered(429, since)].filter(
        (r) => r.method === 'POST' && r.url.includes('accessgrants'),
      );
      expect(refused).toHaveLength(3);
      await waitFor(async () => (await bench.connect()) === 'ok', { what: 'cli let in' });
      await bench.invariant('after the throttled grant writes');
      // Closed again for the next scenario.
      const name = cliGrants()[0]!.metadata.name;
      bench.delete(name);
      await waitFor(() => bench.get(name) === undefined, { what: 'revoked and gone' });
      expect(await bench.connect()).toBe('timeout');
    }, 60_000);

    it('with the API stopped a knock opens nothing, now or later; once it is back a knock opens', async () => {
      const before = sniffer.output().length;
      const stopped = bench.cluster.server.faults.stopFor(8_000);
      await new Promise((r) => setTimeout(r, 300));
      await bench.knock();
      await waitFor(() => sniffer.output().slice(before).includes('nothing opened for'), {
        what: 'the sniffer saying it opened nothing',
        timeoutMs: 20_000,
      });
      expect(sniffer.output().slice(before)).toContain(`nothing opened for ${bench.cli4}/32`);
      expect(await bench.hasElement(bench.cli4)).toBe(false);
      expect(await bench.connect()).toBe('timeout');
      await stopped;
      // The refused knock is not written once the API is back.
      await new Promise((r) => setTimeout(r, 3_000));
      expect(cliGrants()).toEqual([]);
      expect(await bench.hasElement(bench.cli4)).toBe(false);
      await waitFor(
        async () => {
          if (cliGrants().length === 0) await bench.knock();
          return active(cliGrants()[0]);
        },
        { what: 'a knock after the stop granted', timeoutMs: 40_000, intervalMs: 2_000 },
      );
      await waitFor(async () => (await bench.connect()) === 'ok', { what: 'cli let in' });
      await bench.invariant('after the stop, with the sniffer');
    }, 90_000);
  },
);
