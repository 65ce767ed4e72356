// The three daemons the flood scenarios compare, behind one shape: started in the server namespace
// on the veth facing the client, their PID (for /proc), which of a list of sources they opened the
// door for, and a stop that leaves the namespace's firewall empty.

import { readFileSync } from 'node:fs';
import type { Host } from '../../test/helpers/netns.js';
import { knockgateGrantSources, knockgateMetrics, startKnockgate, stopKnockgate } from './knockgate.js';
import {
  dropProtectedPort,
  dropTriggerPorts,
  flushIptables,
  startFwknopd,
  startKnockd,
  stopPeer,
} from './peers.js';
import { KNOCK_PORTS, PROTECTED_PORT, SPA_PORT, type SpaKeys } from './setup.js';

export type DaemonKind = 'knockgate' | 'knockd' | 'fwknopd';

export const DAEMON_LABEL: Record<DaemonKind, string> = {
  knockgate: 'knockgate (nftables)',
  knockd: 'knockd 0.8',
  fwknopd: 'fwknopd 2.6.10',
};

export interface Daemon {
  kind: DaemonKind;
  label: string;
  pid: number;
  /** The given sources the daemon opened the protected port for. */
  opened(sources: readonly string[]): Promise<Set<string>>;
  /** knockgate: packets its engine refused plus grants it opened (from its metrics). */
  examined?(): Promise<number>;
  stop(): Promise<void>;
}

export async function startDaemon(
  kind: DaemonKind,
  srv: Host,
  dir: string,
  keys: SpaKeys,
  bufferBytes?: number,
): Promise<Daemon> {
  const iface = srv.ifname['cli']!;
  const label = DAEMON_LABEL[kind];
  const pick = (sources: readonly string[], seen: Iterable<string>) => {
    const wanted = new Set(sources);
    return new Set([...seen].filter((s) => wanted.has(s)));
  };
  if (kind === 'knockgate') {
    const kg = await startKnockgate(srv, dir, iface, 'nftables', keys, bufferBytes);
    return {
      kind,
      label,
      pid: kg.pid,
      opened: async (sources) => pick(sources, await knockgateGrantSources(srv, kg.stateDir)),
      examined: async () => {
        const m = await knockgateMetrics(srv);
        return (m.get('knockgate_refusals_total') ?? 0) + (m.get('knockgate_grants_opened_total') ?? 0);
      },
      stop: () => stopKnockgate(srv, kg),
    };
  }
  // The peers' hosts drop the flooded ports too, as knockgate's raw rules do: the same kernel work.
  await dropProtectedPort(srv, PROTECTED_PORT);
  if (kind === 'knockd') {
    await dropTriggerPorts(
      srv,
      KNOCK_PORTS.map((port) => ({ proto: 'tcp' as const, port })),
    );
    // Completion is read from knockd's log ("<source>: bench: OPEN SESAME"), whatever the family.
    const peer = await startKnockd(srv, dir, iface, KNOCK_PORTS, PROTECTED_PORT, '/bin/true %IP%');
    return {
      kind,
      label,
      pid: peer.process.pid!,
      opened: async (sources) => {
        let log = '';
        try {
          log = readFileSync(peer.logFile!, 'utf8');
        } catch {
          /* no log yet: nothing opened */
        }
        const seen = [...log.matchAll(/\] ([0-9a-fA-F.:]+): \S+: OPEN SESAME/g)].map((m) => m[1]!);
        return pick(sources, seen);
      },
      stop: async () => {
        await stopPeer(peer);
        await flushIptables(srv);
      },
    };
  }
  await dropTriggerPorts(srv, [{ proto: 'udp', port: SPA_PORT }]);
  const peer = await startFwknopd(srv, dir, iface, SPA_PORT, PROTECTED_PORT, keys);
  return {
    kind,
    label,
    pid: peer.process.pid!,
    opened: async (sources) => {
      const { stdout } = await srv.run('iptables', ['-w', '5', '-S', 'FWKNOP_INPUT']);
      const seen = [...stdout.matchAll(/-s ([0-9.]+)\/32/g)].map((m) => m[1]!);
      return pick(sources, seen);
    },
    stop: async () => {
      await stopPeer(peer);
      await flushIptables(srv);
    },
  };
}
