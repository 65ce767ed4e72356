// Every scenario builds its own namespaces through withTopology(), which tears them down when the
// scenario ends, fails, or the run is interrupted (SIGINT/SIGTERM: every live topology is destroyed,
// then the process exits).

import { Topology } from '../../test/helpers/netns.js';

const live = new Set<Topology>();
const hooks: (() => void)[] = [];
let interrupted = false;

/** Something else to undo when interrupted (after the topologies are gone), e.g. the scratch dir. */
export function onInterrupt(hook: () => void): void {
  hooks.push(hook);
}

async function onSignal(signal: NodeJS.Signals): Promise<void> {
  if (interrupted) return;
  interrupted = true;
  console.error(`${signal}: tearing down ${live.size} topolog${live.size === 1 ? 'y' : 'ies'}`);
  await Promise.allSettled([...live].map((t) => t.destroy()));
  for (const hook of hooks) {
    try {
      hook();
    } catch {
      /* best effort: keep undoing the rest */
    }
  }
  process.exit(130);
}

process.once('SIGINT', (s) => void onSignal(s));
process.once('SIGTERM', (s) => void onSignal(s));

export async function withTopology<T>(fn: (net: Topology) => Promise<T>): Promise<T> {
  const net = await Topology.create(['srv', 'cli']);
  live.add(net);
  try {
    return await fn(net);
  } finally {
    await net.destroy();
    live.delete(net);
  }
}
