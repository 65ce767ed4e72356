// The nftables backend's per-grant path in the daemon's own process (as `knockgate standalone`
// runs it inside its namespace): element changes straight over nfnetlink (native/nft_elements.c),
// checked against what `nft` lists, and the refusals the kernel and the addon give. The backend
// code runs in a child started in the namespace (the addon acts in its process's namespace).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutNetns, Topology, type Host } from './helpers/netns.js';

const DIST = join(import.meta.dirname, '..', 'dist');

// In the namespace: a firewall (libnftables for the table, netlink for the changes), grants opened,
// extended and closed, then the addon's call asked for what it must refuse. Prints one JSON line.
const SCRIPT = `
const { createFirewall } = await import('${DIST}/controller/firewall/firewall.js');
const { pcapAddon } = await import('${DIST}/sniffer/capture/addon.js');
const { pino } = await import('pino');
const { execFileSync } = await import('node:child_process');
const clock = { now: () => Date.now(), setTimeout: (f, ms) => { const t = setTimeout(f, ms); return { cancel: () => clearTimeout(t) }; } };
const ports = [{ port: 2222, proto: 'tcp' }, { port: 53, proto: 'udp' }];
const fw = createFirewall({ backend: 'nftables', logger: pino({ level: 'silent' }), clock,
  config: { protectedPorts: ports, knockPorts: [], alwaysAllow: [], mode: 'Enforce', conntrackFlush: false } });
await fw.install();
const at = (s) => Date.now() + s * 1000;
await fw.add({ name: 'a', source: '10.20.0.1/32', ports, expiresAt: at(60) });
await fw.add({ name: 'b', source: 'fd00::20/128', ports: [ports[0]], expiresAt: at(30) });
await fw.add({ name: 'c', source: '10.20.0.3/32', ports: [ports[0]], expiresAt: at(30) });
await fw.add({ name: 'a', source: '10.20.0.1/32', ports, expiresAt: at(600) });
await fw.remove({ name: 'c' }, 'revoked');
const list = (set) => JSON.parse(execFileSync('nft', ['-j', 'list', 'set', 'inet', 'knockgate', set]).toString())
  .nftables.find((x) => x.set).set.elem ?? [];
const a = pcapAddon();
const missing = a.nftElements('knockgate', [{ op: 1, set: 'grants4', family: 4, addresses: ['10.20.9.9'], protos: [6], ports: [2222] }]);
const noTable = a.nftElements('nosuch', [{ op: 0, set: 'grants4', family: 4, addresses: ['10.20.9.9'], protos: [6], ports: [2222], timeoutsMs: [1000] }]);
let malformed = '';
try { a.nftElements('knockgate', [{ op: 0, set: 'grants4', family: 4, addresses: ['fd00::1'], protos: [6], ports: [22], timeoutsMs: [1000] }]); }
catch (e) { malformed = e.message; }
const out = { v4: list('grants4'), v6: list('grants6'), missing, noTable, malformed };
await fw.cleanup();
await fw.close();
process.stdout.write(JSON.stringify(out));
`;

interface Elem {
  elem: { val: { concat: (string | number)[] }; timeout: number; expires: number };
}

describe.skipIf(skipWithoutNetns('nftables element changes over netlink'))(
  'nftables element changes over netlink, in the daemon process (root)',
  () => {
    let net: Topology;
    let srv: Host;
    beforeAll(async () => {
      net = await Topology.create(['srv']);
      srv = net.ns('srv');
    });
    afterAll(async () => {
      await net?.destroy();
    });

    it('opens, extends and closes exactly the elements nft lists; refusals are one line', async () => {
      const { stdout } = await srv.run('node', ['--input-type=module', '-e', SCRIPT], { timeoutMs: 60_000 });
      const out = JSON.parse(stdout) as {
        v4: Elem[];
        v6: Elem[];
        missing: string;
        noTable: string;
        malformed: string;
      };
      const show = (e: Elem[]) =>
        e
          .map((x) => [x.elem.val.concat.join(' '), x.elem.timeout])
          .sort((p, q) => String(p).localeCompare(String(q)));
      // a: extended to 600 s on both ports; c: closed; b: IPv6, one port.
      expect(show(out.v4)).toEqual([
        ['10.20.0.1 tcp 2222', 600],
        ['10.20.0.1 udp 53', 600],
      ]);
      expect(show(out.v6)).toEqual([['fd00::20 tcp 2222', 30]]);
      expect(out.missing).toBe(
        'nftables netlink: delete element (operation 0) refused: No such file or directory',
      );
      expect(out.noTable).toMatch(/^nftables netlink: add element \(operation 0\) refused: /);
      expect(out.malformed).toBe(
        'nftElements: operation 0: an element needs an address of its family, protocol 6 or 17, port 1-65535',
      );
    });
  },
);
