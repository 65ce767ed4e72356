// The security-group rules the live grants need, computed whole (the kube-proxy way): one ingress
// rule per (region, group, protocol, port, source), holding the latest expiresAt of the grants that
// need it. Nothing here calls AWS; region-sync.ts compares this with what EC2 reports.

import type { AwsSecurityGroupRef } from '../../api/types.js';
import { parsePort, type PortRef } from '../../api/ports.js';

/** What the reconciler knows of a grant, already re-validated against its policy. */
export interface SgGrant {
  /** The AccessGrant's name (cluster-scoped). */
  name: string;
  /** One host: a.b.c.d/32 or an IPv6 /128. */
  source: string;
  ports: string[];
  /** ms since the epoch. */
  expiresAt: number;
  groups: AwsSecurityGroupRef[];
}

export interface DesiredRule {
  key: string;
  region: string;
  groupId: string;
  protocol: PortRef['proto'];
  port: number;
  cidr: string;
  /** The latest end of the grants that need it. */
  expiresAt: number;
  /** The grant whose end that is (the rule's grant tag). */
  grant: string;
  /** Every grant that needs it (each one's status names this rule). */
  grants: string[];
}

/** Lower-case, so an IPv6 source matches EC2's canonical form. */
export function ruleKey(
  region: string,
  groupId: string,
  protocol: string,
  port: number,
  cidr: string,
): string {
  return `${region}/${groupId}/${protocol}/${port}/${cidr.toLowerCase()}`;
}

/** The status key of a group in a grant's status.securityGroups. */
export function groupKey(ref: AwsSecurityGroupRef): string {
  return `${ref.region}/${ref.groupId}`;
}

/** The rules the grants live at `now` need, by key. */
export function desiredRules(grants: SgGrant[], now: number): Map<string, DesiredRule> {
  const out = new Map<string, DesiredRule>();
  for (const g of grants) {
    if (g.expiresAt <= now) continue;
    for (const ref of g.groups)
      for (const spec of g.ports) {
        const p = parsePort(spec);
        const key = ruleKey(ref.region, ref.groupId, p.proto, p.port, g.source);
        const have = out.get(key);
        if (!have) {
          out.set(key, {
            key,
            region: ref.region,
            groupId: ref.groupId,
            protocol: p.proto,
            port: p.port,
            cidr: g.source.toLowerCase(),
            expiresAt: g.expiresAt,
            grant: g.name,
            grants: [g.name],
          });
          continue;
        }
        have.grants.push(g.name);
        if (g.expiresAt > have.expiresAt) {
          have.expiresAt = g.expiresAt;
          have.grant = g.name;
        }
      }
  }
  return out;
}
