// What an earlier run with another --backend left behind. SIGTERM leaves a backend's objects in
// place on purpose (the doors stay as the grants say across a restart), so a run with a different
// backend finds the old one's DROP still in force: every knock would be honoured by the new
// backend and still dropped by the old one. After installing its own state, each backend removes
// the others' objects (Backend.removeOthers) and says, one line per object, what it removed.
//
//   nftables  owns  table inet knockgate
//   ipset     owns  the knockgate-* sets + KNOCKGATE, KNOCKGATE-GUARD, KNOCKGATE-RAW chains
//   iptables  owns  KNOCKGATE, KNOCKGATE-GUARD, KNOCKGATE-GRANTS, KNOCKGATE-RAW chains
//
// The ipset and iptables backends share three chain names; each spares those of its own
// iptables flavour (legacy or nf_tables) and removes the rest.

import { CommandError, type Commands } from './command.js';
import { NAMES } from './limits.js';

/** The listing's output, or undefined when the tool is not installed (nothing of ours can exist). */
async function listing(commands: Commands, cmd: string, args: string[]): Promise<string | undefined> {
  try {
    return (await commands.run(cmd, args)).stdout;
  } catch (err) {
    if (err instanceof CommandError && err.notFound) return undefined;
    throw err;
  }
}

/** Remove table inet knockgate when it exists; one line when it did, none when nft is absent. */
export async function removeNftTable(commands: Commands): Promise<string[]> {
  const listed = await listing(commands, 'nft', ['list', 'tables']);
  if (listed === undefined) return [];
  const table = `table inet ${NAMES.nftTable}`;
  if (!listed.split('\n').some((l) => l.trim() === table)) return [];
  await commands.run('nft', ['delete', 'table', 'inet', NAMES.nftTable]);
  return [`nft ${table}`];
}

/** Destroy every knockgate-* ipset (no rule may reference them any more); one line per set. */
export async function destroyOwnSets(commands: Commands): Promise<string[]> {
  const listed = await listing(commands, 'ipset', ['list', '-n']);
  if (listed === undefined) return [];
  const ours = listed
    .split('\n')
    .map((l) => l.trim())
    .filter((n) => n.startsWith(NAMES.ipsetPrefix))
    .sort();
  for (const n of ours) await commands.run('ipset', ['destroy', n]);
  return ours.map((n) => `ipset ${n}`);
}
