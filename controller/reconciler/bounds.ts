// Reconcilers never trust a grant's spec alone (DESIGN.md, trust boundaries). A knock or SPA grant
// must fit the live KnockPolicy it names; a manual grant must fit the controller's own bounds
// (ControllerConfig.manualGrants). The first violation is returned as a one-line reason; a grant
// with one is Failed and refused, never opened.

import { parseCidr } from '../../api/addresses.js';
import { DEFAULTS } from '../../api/limits.js';
import { portsSubset } from '../../api/ports.js';
import type { AccessGrant, AwsSecurityGroupRef, KnockPolicy } from '../../api/types.js';
import type { ControllerConfig } from './config.js';

export interface Refusal {
  /** A condition reason (CamelCase). */
  reason: 'PolicyMismatch' | 'PolicyReplaced' | 'PolicyNotFound' | 'OutOfBounds';
  message: string;
}

export interface BoundsContext {
  now: number;
  config: ControllerConfig;
  /** The live policy the grant names (undefined: not found). */
  policy?: KnockPolicy;
  /** Node labels by name, for policies that target nodes by selector (undefined: unknown node). */
  nodeLabels(node: string): Record<string, string> | undefined;
}

/** Clock skew tolerated between the sniffer that set expiresAt and this controller. */
const SKEW_MS = DEFAULTS.replayClockSkewSeconds * 1000;

function sgKey(g: AwsSecurityGroupRef): string {
  return `${g.region}/${g.groupId}`;
}

function extraGroups(want: AwsSecurityGroupRef[] | undefined, allowed: AwsSecurityGroupRef[] = []): string[] {
  const ok = new Set(allowed.map(sgKey));
  return (want ?? []).filter((g) => !ok.has(sgKey(g))).map((g) => g.groupId);
}

function remainingMs(grant: AccessGrant, now: number): number {
  return Date.parse(grant.spec.expiresAt) - now;
}

/** checkBounds with node labels read from a Node cache (undefined: the node is not known). */
export function checkBoundsWithNodes(
  grant: AccessGrant,
  ctx: Omit<BoundsContext, 'nodeLabels'>,
  nodes: { get(name: string): { metadata: { labels?: Record<string, string> } } | undefined } | undefined,
): Refusal | undefined {
  return checkBounds(grant, {
    ...ctx,
    nodeLabels: (n) => {
      const node = nodes?.get(n);
      return node ? (node.metadata.labels ?? {}) : undefined;
    },
  });
}

export function checkBounds(grant: AccessGrant, ctx: BoundsContext): Refusal | undefined {
  return grant.spec.method === 'manual' ? checkManual(grant, ctx) : checkAgainstPolicy(grant, ctx);
}

function checkAgainstPolicy(grant: AccessGrant, ctx: BoundsContext): Refusal | undefined {
  const name = grant.spec.policyRef?.name;
  const policy = ctx.policy;
  if (!name || !policy) return { reason: 'PolicyNotFound', message: `policy "${name ?? ''}" does not exist` };
  const fail = (message: string): Refusal => ({
    reason: 'PolicyMismatch',
    message: `policy "${name}": ${message}`,
  });
  const owner = grant.metadata.ownerReferences?.find((o) => o.kind === 'KnockPolicy' && o.name === name);
  if (owner && policy.metadata.uid && owner.uid !== policy.metadata.uid)
    return { reason: 'PolicyReplaced', message: `policy "${name}" was deleted and created again` };
  let source;
  try {
    source = parseCidr(grant.spec.source);
  } catch (err) {
    return fail(`spec.source: ${(err as Error).message}`);
  }
  if (source.prefix !== (source.family === 4 ? 32 : 128))
    return fail(`spec.source ${grant.spec.source} is not a single host`);
  const t = policy.spec.grant;
  if (!portsSubset(grant.spec.ports, t.ports))
    return fail(`spec.ports ${grant.spec.ports.join(',')} are not a subset of ${t.ports.join(',')}`);
  const capSeconds = Math.max(t.durationSeconds, t.maxDurationSeconds ?? t.durationSeconds);
  if (remainingMs(grant, ctx.now) > capSeconds * 1000 + SKEW_MS)
    return fail(`spec.expiresAt ${grant.spec.expiresAt} is more than ${capSeconds} s ahead`);
  const nodes = grant.spec.targets?.nodes ?? [];
  const target = t.targets?.node ?? { mode: 'Local' as const };
  if (target.mode === 'None' && nodes.length > 0) return fail('targets no node, but the grant names nodes');
  if (target.mode === 'Local') {
    const other = nodes.find((n) => n !== grant.spec.observedBy);
    if (other !== undefined) return fail(`targets only the observing node, not "${other}"`);
  }
  if (target.mode === 'Selector') {
    const selector = target.nodeSelector ?? {};
    for (const n of nodes) {
      const labels = ctx.nodeLabels(n);
      if (!labels || !Object.entries(selector).every(([k, v]) => labels[k] === v))
        return fail(`node "${n}" does not match the policy's nodeSelector`);
    }
  }
  const extra = extraGroups(grant.spec.targets?.awsSecurityGroups, t.targets?.awsSecurityGroups);
  if (extra.length > 0) return fail(`security group ${extra[0]} is not one of the policy's`);
  return undefined;
}

function checkManual(grant: AccessGrant, ctx: BoundsContext): Refusal | undefined {
  const bounds = ctx.config.manualGrants;
  const fail = (message: string): Refusal => ({ reason: 'OutOfBounds', message: `manual grant: ${message}` });
  let source;
  try {
    source = parseCidr(grant.spec.source);
  } catch (err) {
    return fail(`spec.source: ${(err as Error).message}`);
  }
  const largest = source.family === 4 ? bounds.largestPrefix.ipv4 : bounds.largestPrefix.ipv6;
  if (source.prefix < largest)
    return fail(`spec.source ${grant.spec.source} is wider than /${largest}, the largest prefix allowed`);
  if (remainingMs(grant, ctx.now) > bounds.maxDurationSeconds * 1000 + SKEW_MS)
    return fail(`spec.expiresAt ${grant.spec.expiresAt} is more than ${bounds.maxDurationSeconds} s ahead`);
  if (!bounds.allowedNodes.includes('*')) {
    const other = (grant.spec.targets?.nodes ?? []).find((n) => !bounds.allowedNodes.includes(n));
    if (other !== undefined) return fail(`node "${other}" is not an allowed target`);
  }
  const extra = extraGroups(grant.spec.targets?.awsSecurityGroups, bounds.allowedSecurityGroups);
  if (extra.length > 0) return fail(`security group ${extra[0]} is not an allowed target`);
  return undefined;
}
