// `knockgate standalone` end to end with the ipset and iptables backends (a smoke test of the
// scenario the nftables file covers in full): knockgate YAML with a knock door and an SPA door, the
// real `knock` client (IPv4 and IPv6) and `knockgate spa`; closed before, open for cli only, third
// never; after expiry new connections fail and a held one survives. Also what each backend leaves
// in the kernel while running, and that a clean stop keeps the ports protected. The protected port
// is reached through an iptables nat PREROUTING REDIRECT to the listener's port (the NodePort-like
// case; the nftables file does it with an nft nat rule): the guard sits before DNAT.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutNetns } from './helpers/netns.js';
import {
  grantLifecycle,
  keygen,
  knockgate,
  runCommand,
  Lab,
  yamlConfig,
  type SpaKeys,
} from './helpers/standalone-harness.js';

const PORT = 2222;
/** Where the listener is: nothing listens on PORT itself. */
const TARGET = 8023;

describe.skipIf(skipWithoutNetns('standalone e2e (ipset, iptables)'))(
  'knockgate standalone, ipset and iptables backends',
  () => {
    let lab: Lab;
    let keys: SpaKeys;

    beforeAll(async () => {
      lab = await Lab.create();
      keys = await keygen();
      await lab.listen([TARGET]);
      for (const tool of ['iptables', 'ip6tables']) {
        const nat = await runCommand(lab.srv, tool, [
          '-t',
          'nat',
          '-A',
          'PREROUTING',
          '-p',
          'tcp',
          '--dport',
          String(PORT),
          '-j',
          'REDIRECT',
          '--to-ports',
          String(TARGET),
        ]);
        expect(nat.code, nat.stderr).toBe(0);
      }
    });

    afterAll(async () => {
      await lab?.destroy();
    });

    for (const backend of ['ipset', 'iptables'] as const) {
      it(`${backend}: knock and SPA, IPv4 and IPv6, the port reached through a nat REDIRECT`, async () => {
        const spaPort = backend === 'ipset' ? 40201 : 40202;
        const config = lab.write(`${backend}.yaml`, yamlConfig(keys, spaPort, PORT));
        const d = await lab.startDaemon({ config, backend, stateDir: `${lab.dir}/state-${backend}` });
        try {
          expect(d.events('reconcile')[0]).toMatchObject({ backend });
          const installed = await lab.firewallState(backend);
          expect(installed).toMatch(/KNOCKGATE/i);
          // No nftables table of knockgate's own: this backend is what guards the port.
          expect(await lab.ruleset()).not.toContain('table inet knockgate');
          await grantLifecycle(lab, d, {
            port: PORT,
            families: [4, 6],
            open: (family) => lab.knock('cli', ['7101:udp', '7102:tcp'], family),
          });
          await grantLifecycle(lab, d, {
            port: PORT,
            families: [4, 6],
            open: (family) => lab.spa('cli', keys, `tcp/${PORT}`, spaPort, family),
          });
        } finally {
          expect((await d.stop()).code).toBe(0);
        }
        // A stopped daemon leaves the port protected (its rules stay, grants expire on their own).
        expect(await lab.connect('cli', PORT)).toBe('closed');
        const cleanup = await knockgate(lab.srv, ['standalone', '--cleanup', '--backend', backend]);
        expect(cleanup.code, cleanup.stderr).toBe(0);
        expect(await lab.firewallState(backend)).not.toMatch(/KNOCKGATE/i);
        await lab.waitReach('cli', PORT, 'open', { timeoutMs: 5000 });
      });
    }
  },
);
