// Turning a sniffer AccessDecision into an AccessGrant: the grant's name, its expiry on the
// injectable clock, and who saw it. Names follow DESIGN.md so a repeated knock or SPA request from
// the same source for the same policy lands on the same grant (GrantStore.extend):
//   SPA:   spa-<first 16 hex of sha256(policy, source[, node])>
//   knock: <policy>-<source address in hex>[-<node>]  (IPv4: 8 hex characters, IPv6: 32)
// The node is part of the name when the grant opens only the node that saw the request (a
// Local-mode policy on Kubernetes): a knock seen on node B then makes B's own grant instead of
// extending node A's grant, which B's agent would rightly refuse (observedBy is A). A node name
// too long for the knock form is replaced by the first 16 hex of its sha256.

import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { hostCidr } from '../../api/addresses.js';
import type { Clock } from '../../api/clock.js';
import { BOUNDS } from '../../api/limits.js';
import { formatPort, parsePort } from '../../api/ports.js';
import { API_VERSION, type AccessGrant, type AccessGrantSpec } from '../../api/types.js';
import type { AccessDecision } from '../../sniffer/decision.js';
import { checkGrantName, MAX_NAME_LENGTH } from './validate.js';

export class GrantBuildError extends Error {}

const SPA_NAME_HEX_CHARS = 16;

/** The address's bytes in lowercase hex: 8 characters for IPv4, 32 for IPv6 (fully expanded). */
export function addressHex(address: string): string {
  const family = isIP(address);
  if (family === 4)
    return address
      .split('.')
      .map((octet) => Number(octet).toString(16).padStart(2, '0'))
      .join('');
  if (family !== 6) throw new GrantBuildError(`"${address}" is not an IP address`);
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = addressHex(dotted[1]);
    text = `${text.slice(0, -dotted[1].length)}${v4.slice(0, 4)}:${v4.slice(4)}`;
  }
  const [left, right] = text.split('::');
  const head = left ? left.split(':') : [];
  const tail = right ? right.split(':') : [];
  const groups =
    right === undefined
      ? head
      : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

function sourceAddress(source: string): string {
  return source.split('/')[0];
}

/**
 * The grant name for a decision's method, policy and source (a host CIDR or bare address), and
 * the node when the grant is that node's alone (see the header).
 */
export function grantName(method: 'knock' | 'spa', policy: string, source: string, node?: string): string {
  const hex = addressHex(sourceAddress(source));
  let name: string;
  if (method === 'spa') {
    const text = node === undefined ? `${policy}\n${hex}` : `${policy}\n${hex}\n${node}`;
    name = `spa-${sha256Hex(text).slice(0, SPA_NAME_HEX_CHARS)}`;
  } else {
    name = `${policy}-${hex}`;
    if (node !== undefined) {
      const withNode = `${name}-${node}`;
      name = withNode.length <= MAX_NAME_LENGTH ? withNode : `${name}-${sha256Hex(node).slice(0, 16)}`;
    }
  }
  try {
    checkGrantName(name);
  } catch (err) {
    throw new GrantBuildError(`policy "${policy}": ${(err as Error).message}`);
  }
  return name;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export interface GrantContext {
  clock: Clock;
  /** This node (or standalone host): spec.observedBy. */
  node: string;
  /** Targets resolved from the policy. Default: this node only (mode Local). */
  targets?: AccessGrantSpec['targets'];
  /**
   * The KnockPolicy's uid, on Kubernetes: the grant gets an ownerReference to its policy so that
   * deleting the policy revokes its grants. Standalone has no uids and leaves it out.
   */
  policyUid?: string;
  /**
   * Put the node in the grant's name: set on Kubernetes for a policy whose grants open only the
   * node that saw the request (targets.node.mode Local). Standalone leaves it out.
   */
  nameWithNode?: boolean;
}

/** Build the grant for `decision`. Throws GrantBuildError (one line) on anything out of bounds. */
export function buildGrant(decision: AccessDecision, ctx: GrantContext): AccessGrant {
  const where = `policy "${decision.policy}"`;
  let source: string;
  try {
    source = hostCidr(decision.source).toLowerCase();
  } catch (err) {
    throw new GrantBuildError(`${where}: source: ${(err as Error).message}`);
  }
  const duration = decision.durationSeconds;
  if (!Number.isInteger(duration) || duration < 1 || duration > BOUNDS.maxDurationSeconds)
    throw new GrantBuildError(
      `${where}: duration ${duration}s is not 1-${BOUNDS.maxDurationSeconds} seconds`,
    );
  if (decision.ports.length === 0 || decision.ports.length > BOUNDS.maxPortsPerGrant)
    throw new GrantBuildError(
      `${where}: a grant opens 1-${BOUNDS.maxPortsPerGrant} ports, not ${decision.ports.length}`,
    );
  let ports: string[];
  try {
    ports = [...new Set(decision.ports.map((p) => formatPort(parsePort(p))))];
  } catch (err) {
    throw new GrantBuildError(`${where}: ${(err as Error).message}`);
  }

  const grant: AccessGrant = {
    apiVersion: API_VERSION,
    kind: 'AccessGrant',
    metadata: {
      name: grantName(decision.method, decision.policy, source, ctx.nameWithNode ? ctx.node : undefined),
    },
    spec: {
      source,
      ports,
      expiresAt: new Date(ctx.clock.now() + duration * 1000).toISOString(),
      policyRef: { name: decision.policy },
      method: decision.method,
      observedBy: ctx.node,
      targets: ctx.targets ?? { nodes: [ctx.node] },
    },
  };
  if (decision.user !== undefined) grant.spec.user = decision.user;
  if (ctx.policyUid !== undefined)
    grant.metadata.ownerReferences = [
      {
        apiVersion: API_VERSION,
        kind: 'KnockPolicy',
        name: decision.policy,
        uid: ctx.policyUid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ];
  return grant;
}
