// Which policies this node's sniffer runs, and where their grants apply: pure functions over the
// cached KnockPolicies, Nodes and Secrets.
//
// - A policy runs here when its spec.nodeSelector matches this node's labels (an empty or absent
//   selector matches every node) and it passes validatePolicy. Without this node's Node object no
//   policy runs: its labels are unknown, and the sniffer opens nothing it cannot justify.
// - Targets: Local → this node; Selector → every known node whose labels match
//   grant.targets.node.nodeSelector; None → no node. awsSecurityGroups are copied as they are.
// - Keys: the Secret named by spec.spa.keySecretRef in the release namespace, its data decoded from
//   base64 into the KEY/KEY_BASE64/HMAC_KEY/HMAC_KEY_BASE64 strings spaKeysFromSecretData reads.

import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { CidrSet, hostCidr, parseCidr } from '../../api/addresses.js';
import { validatePolicy } from '../../api/validate.js';
import type { AccessGrantSpec, KnockPolicy } from '../../api/types.js';

/** What the sniffer reads of a Node. */
export interface NodeLike {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
  status?: { addresses?: { type?: string; address?: string }[] };
}

/** What the sniffer reads of a Secret. */
export interface SecretLike {
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
}

/** Does `selector` (matchLabels semantics) select an object with `labels`? */
export function labelsMatch(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  for (const [key, value] of Object.entries(selector ?? {})) if (labels?.[key] !== value) return false;
  return true;
}

export interface PolicySelection {
  /** Valid policies whose nodeSelector matches this node, sorted by name. */
  policies: KnockPolicy[];
  /** Policies left out for being invalid: one line each (name and first field error). */
  invalid: string[];
}

/** The policies this node runs. `node` undefined (not found) selects none. */
export function selectPolicies(all: readonly KnockPolicy[], node: NodeLike | undefined): PolicySelection {
  const policies: KnockPolicy[] = [];
  const invalid: string[] = [];
  if (!node) return { policies, invalid };
  for (const candidate of all) {
    const { policy, errors } = validatePolicy(candidate);
    const name = String(candidate?.metadata?.name ?? '');
    if (!policy) {
      const first = errors[0];
      invalid.push(
        `KnockPolicy ${name}: ${first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : 'invalid'}`,
      );
      continue;
    }
    if (labelsMatch(policy.spec.nodeSelector, node.metadata.labels)) policies.push(policy);
  }
  policies.sort((a, b) =>
    a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0,
  );
  return { policies, invalid };
}

/** The targets of a grant made on `node` under `policy`. */
export function resolveTargets(
  policy: KnockPolicy,
  node: string,
  nodes: readonly NodeLike[],
): NonNullable<AccessGrantSpec['targets']> {
  const target = policy.spec.grant.targets?.node ?? { mode: 'Local' as const };
  let names: string[];
  switch (target.mode) {
    case 'None':
      names = [];
      break;
    case 'Selector':
      names = nodes
        .filter((n) => labelsMatch(target.nodeSelector, n.metadata.labels))
        .map((n) => n.metadata.name)
        .sort();
      break;
    default:
      names = [node];
  }
  const groups = policy.spec.grant.targets?.awsSecurityGroups;
  return groups?.length
    ? { nodes: names, awsSecurityGroups: groups.map((g) => ({ ...g })) }
    : { nodes: names };
}

/**
 * Never granted, whatever a packet says: every node's own addresses and pod CIDRs (DESIGN.md, trust
 * boundaries). Entries that do not parse are skipped (a Node is not the sniffer's to validate).
 */
export function clusterNeverGrant(nodes: readonly NodeLike[]): CidrSet {
  const cidrs: string[] = [];
  const add = (text: string | undefined, asHost: boolean) => {
    if (typeof text !== 'string') return;
    try {
      cidrs.push(asHost ? hostCidr(text) : `${parseCidr(text).address}/${parseCidr(text).prefix}`);
    } catch {
      // not an address: nothing to add
    }
  };
  for (const n of nodes) {
    for (const a of n.status?.addresses ?? []) if (isIP(a.address ?? '')) add(a.address, true);
    add(n.spec?.podCIDR, false);
    for (const c of n.spec?.podCIDRs ?? []) add(c, false);
  }
  return new CidrSet(cidrs);
}

export class SecretDataError extends Error {}

/** The Secret's data as strings (values base64-decoded). Throws SecretDataError naming the key. */
export function secretStrings(secret: SecretLike): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(secret.data ?? {})) {
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
      throw new SecretDataError(`Secret ${secret.metadata.name}: data.${key} is not base64`);
    out[key] = Buffer.from(value, 'base64').toString('utf8');
  }
  return out;
}

/** A digest of a Secret's data: tells a rotated key without keeping or logging the key. */
export function secretFingerprint(secret: SecretLike | undefined): string {
  if (!secret) return 'absent';
  const entries = Object.entries(secret.data ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex');
}
