// The standalone daemon's own checks on a decision, on top of the policy's: sources that are never
// granted whatever a packet says (the always-never list, this host's own addresses, the config's
// neverGrant), and the cap on live grants. Fail closed: anything unparsable is refused.

import { networkInterfaces } from 'node:os';
import { ALWAYS_NEVER_GRANT, CidrSet } from '../../api/addresses.js';

/** The CIDRs never granted on this host: built-ins, neverGrant, and every local address. */
export function neverGrantSet(neverGrant: readonly string[]): CidrSet {
  const own: string[] = [];
  for (const list of Object.values(networkInterfaces()))
    for (const info of list ?? []) own.push(info.address.split('%')[0]!);
  return new CidrSet([...ALWAYS_NEVER_GRANT, ...neverGrant, ...own]);
}
