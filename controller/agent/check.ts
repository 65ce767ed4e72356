// The agent never trusts a grant's spec alone (DESIGN.md, Trust boundaries): before anything is
// opened, the grant is checked against the live KnockPolicy it names and against the agent's own
// configuration. The verdict is either the firewall entries to apply or a one-line reason.
//
//   knock/spa grant: policy exists and is valid, method matches the policy's kind, ports ⊆ the
//     policy's grant ports, expiresAt − now ≤ the policy's cap (+ clock skew), source one host,
//     security groups ⊆ the policy's, the policy targets nodes (mode Local: only the node that
//     saw it).
//   manual grant: prefix no wider than largestManualPrefix; with a policyRef, the policy's bounds
//     as above; without one, ports ⊆ this node's protected ports and at most a week.
//   every grant: no address of its source in neverGrant (config, built-ins, this node's addresses).
//   a grant of a policy with targets.node.mode Selector (manual ones too): this node's labels (its own
//     Node object, which the agent watches) must match grant.targets.node.nodeSelector, so a grant
//     whose targets name nodes the policy does not select opens nothing there. While the Node is
//     not known yet the verdict is "wait" (kept unapplied, Pending, decided again when it arrives).

import { isIP } from 'node:net';
import type { CidrSet } from '../../api/addresses.js';
import { parseCidr, type Cidr } from '../../api/addresses.js';
import { BOUNDS } from '../../api/limits.js';
import { formatPort, parsePort, type PortRef } from '../../api/ports.js';
import type { AccessGrant, KnockPolicy } from '../../api/types.js';
import { validatePolicy } from '../../api/validate.js';
import type { FirewallGrant } from '../firewall/types.js';
import { expiresAtMs } from '../grants/phase.js';
import { addressHex } from '../grants/build.js';
import { labelsMatch } from '../sniffer/selection.js';

export interface CheckContext {
  node: string;
  now: number;
  neverGrant: CidrSet;
  protectedPorts: readonly PortRef[];
  largestManualPrefix: { ipv4: number; ipv6: number };
  clockSkewMs: number;
  /** This node's labels from its Node object; undefined while that object is not known. */
  nodeLabels?: Record<string, string> | undefined;
}

/**
 * ok: the entries to apply. Refused: `reason`, final for this grant as it is (Failed). With `wait`,
 * the grant cannot be decided yet (this node's Node object is not known): nothing applied, Pending.
 */
export type Verdict = { ok: true; entries: FirewallGrant[] } | { ok: false; reason: string; wait?: boolean };

const refuse = (reason: string): Verdict => ({ ok: false, reason });

/** Check `grant` (live, targeting this node) against `policy` (undefined: not in the cache). */
export function checkGrant(grant: AccessGrant, policy: KnockPolicy | undefined, ctx: CheckContext): Verdict {
  const spec = grant.spec;
  let ports: PortRef[];
  try {
    if (!Array.isArray(spec.ports)) throw new Error('not a list');
    ports = spec.ports.map((p) => parsePort(p));
  } catch (err) {
    return refuse(`spec.ports: ${(err as Error).message}`);
  }
  if (ports.length === 0 || ports.length > BOUNDS.maxPortsPerGrant)
    return refuse(`spec.ports: want 1-${BOUNDS.maxPortsPerGrant} ports`);
  let source: Cidr;
  try {
    source = parseCidr(spec.source);
  } catch (err) {
    return refuse(`spec.source: ${(err as Error).message}`);
  }
  const hostPrefix = source.family === 4 ? 32 : 128;
  if (spec.method === 'manual') {
    const widest = source.family === 4 ? ctx.largestManualPrefix.ipv4 : ctx.largestManualPrefix.ipv6;
    if (source.prefix < widest)
      return refuse(`source ${spec.source} is wider than the largest manual prefix /${widest} of this node`);
  } else if (source.prefix !== hostPrefix) {
    return refuse(`source ${spec.source} is not a single host`);
  }
  const addresses = hostsOf(source);
  const never = addresses.find((a) => ctx.neverGrant.has(a));
  if (never !== undefined) return refuse(`source ${spec.source}: ${never} is never granted on this node`);

  const remainingMs = expiresAtMs(grant) - ctx.now;
  const policyName = spec.policyRef?.name;
  if (policyName === undefined) {
    if (spec.method !== 'manual') return refuse(`a ${spec.method} grant without spec.policyRef`);
    const protectedSet = new Set(ctx.protectedPorts.map(formatPort));
    const extra = ports.map(formatPort).filter((p) => !protectedSet.has(p));
    if (extra.length > 0) return refuse(`port ${extra.join(', ')} is not protected on this node`);
    if (remainingMs > BOUNDS.maxDurationSeconds * 1000 + ctx.clockSkewMs)
      return refuse(`expiresAt ${spec.expiresAt} is more than ${BOUNDS.maxDurationSeconds} s away`);
  } else {
    const problem = checkAgainstPolicy(grant, ports, remainingMs, policyName, policy, ctx);
    if (problem) return refuse(problem);
    const target = policy!.spec.grant.targets?.node;
    if (target?.mode === 'Selector') {
      if (ctx.nodeLabels === undefined)
        return {
          ok: false,
          wait: true,
          reason: `waiting for node ${ctx.node}'s labels (policy "${policyName}" selects nodes by label)`,
        };
      if (!labelsMatch(target.nodeSelector, ctx.nodeLabels))
        return refuse(
          `policy "${policyName}" opens only nodes labelled ${formatSelector(target.nodeSelector)}: node ${ctx.node} is not`,
        );
    }
  }
  const expiresAt = expiresAtMs(grant);
  const name = grant.metadata.name;
  // One entry per address; a wider manual source gets names that no grant can have ("..").
  const entries =
    addresses.length === 1
      ? [{ name, source: `${addresses[0]}/${hostPrefix}`, ports, expiresAt }]
      : addresses.map((a, i) => ({ name: `${name}..${i}`, source: `${a}/${hostPrefix}`, ports, expiresAt }));
  return { ok: true, entries };
}

function checkAgainstPolicy(
  grant: AccessGrant,
  ports: PortRef[],
  remainingMs: number,
  policyName: string,
  policy: KnockPolicy | undefined,
  ctx: CheckContext,
): string | undefined {
  const problem = exceedsPolicy(grant, ports, remainingMs, policyName, policy, ctx.clockSkewMs);
  if (problem !== undefined) return problem;
  const g = policy!.spec.grant;
  const method = grant.spec.method;
  const target = g.targets?.node?.mode ?? 'Local';
  if (target === 'None') return `policy "${policyName}" opens no node firewall (targets.node.mode None)`;
  if (target === 'Local' && method !== 'manual' && grant.spec.observedBy !== ctx.node)
    return `policy "${policyName}" opens only the node that saw the request (${String(grant.spec.observedBy)}), not ${ctx.node}`;
  return undefined;
}

/**
 * What `grant` asks beyond the policy it names, whatever it opens: the policy exists and is valid,
 * the method is the policy's kind, ports ⊆ the policy's, expiresAt within its cap, security groups
 * ⊆ its targets. The agent adds its node checks; the controller runs exactly this before any AWS
 * call (controller/aws/sg-reconciler.ts), so both refuse the same grants.
 */
export function exceedsPolicy(
  grant: AccessGrant,
  ports: PortRef[],
  remainingMs: number,
  policyName: string,
  policy: KnockPolicy | undefined,
  clockSkewMs: number,
): string | undefined {
  if (!policy || policy.metadata.deletionTimestamp) return `policy "${policyName}" does not exist`;
  const invalid = policyProblem(policy);
  if (invalid !== undefined) return `policy "${policyName}" is invalid: ${invalid}`;
  const kind = policy.spec.knock ? 'knock' : 'spa';
  const method = grant.spec.method;
  if (method !== 'manual' && method !== kind)
    return `method ${method} does not match policy "${policyName}" (a ${kind} policy)`;
  const allowed = new Set(policy.spec.grant.ports.map((p) => formatPort(parsePort(p))));
  const extra = ports.map(formatPort).filter((p) => !allowed.has(p));
  if (extra.length > 0) return `port ${extra.join(', ')} is not granted by policy "${policyName}"`;
  const g = policy.spec.grant;
  const capSeconds = Math.max(g.durationSeconds, g.maxDurationSeconds ?? g.durationSeconds);
  if (remainingMs > capSeconds * 1000 + clockSkewMs)
    // Stable wording (no "N s left"): a status message must not change from one pass to the next.
    return `expiresAt ${grant.spec.expiresAt} is further away than policy "${policyName}" allows (${capSeconds} s)`;
  // Targets a subset of the policy's, security groups included: a grant naming a group its policy
  // does not is refused whole here, not opened on the node until the controller fails it.
  const groupKey = (s: { groupId: string; region: string }) => `${s.region}/${s.groupId}`;
  const allowedGroups = new Set((g.targets?.awsSecurityGroups ?? []).map(groupKey));
  const otherGroup = (grant.spec.targets?.awsSecurityGroups ?? []).find(
    (s) => !allowedGroups.has(groupKey(s)),
  );
  if (otherGroup !== undefined)
    return `security group ${otherGroup.groupId} is not one of policy "${policyName}"'s targets`;
  return undefined;
}

function formatSelector(selector: Record<string, string> | undefined): string {
  return Object.entries(selector ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/**
 * What is wrong with a policy, or undefined. Remembered per object: a cache hands out the same
 * object until it changes, so a resync of many grants validates each policy once.
 */
const validated = new WeakMap<KnockPolicy, string | undefined>();
function policyProblem(policy: KnockPolicy): string | undefined {
  if (validated.has(policy)) return validated.get(policy);
  const e = validatePolicy(policy).errors[0];
  const problem = e ? `${e.path ? `${e.path}: ` : ''}${e.message}` : undefined;
  validated.set(policy, problem);
  return problem;
}

/** Every address of `c` (at most 256, as the config bounds manual prefixes), canonical text. */
export function hostsOf(c: Cidr): string[] {
  const bits = c.family === 4 ? 32 : 128;
  const count = 1n << BigInt(bits - c.prefix);
  if (count > 256n) throw new Error(`${c.address}/${c.prefix}: more than 256 addresses`);
  const base = (toBigInt(c.address) >> BigInt(bits - c.prefix)) << BigInt(bits - c.prefix);
  const out: string[] = [];
  for (let i = 0n; i < count; i++) out.push(fromBigInt(base + i, c.family));
  return out;
}

function toBigInt(address: string): bigint {
  return BigInt(`0x${addressHex(address)}`);
}

function fromBigInt(n: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((n >> s) & 0xffffn).toString(16));
  const text = new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
  if (isIP(text) !== 6) throw new Error(`bad IPv6 address ${text}`);
  return text;
}
