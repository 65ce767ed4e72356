// This cluster's security-group rules in one region, as DescribeSecurityGroupRules reports them:
// selected server-side by the `tag:knockgate.io/cluster` filter (the only way to find them without
// knowing the groups; EC2 filters rules on group-id, security-group-rule-id and tags only), read
// page by page (MaxResults 1000), then checked again client-side: only ingress rules whose cluster
// tag is exactly this id count. Untagged rules and other clusters' rules never come out of here.

import {
  DescribeSecurityGroupRulesCommand,
  type EC2Client,
  type Filter,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { parseExpiresAt, TAG_CLUSTER, TAG_EXPIRES_AT, TAG_GRANT } from './tags.js';

/** Rules per DescribeSecurityGroupRules page (the API's maximum). */
export const RULES_PAGE_SIZE = 1000;
/** Pages per listing: a bound on the loop (1,000 rules x groups per interface is EC2's own cap). */
export const MAX_RULE_PAGES = 1000;

export interface ClusterRule {
  ruleId: string;
  groupId: string;
  protocol: string;
  fromPort: number;
  toPort: number;
  /** CidrIpv4 or CidrIpv6. */
  cidr: string;
  grant?: string;
  /** The expires-at tag as an instant; undefined when missing or not a time knockgate writes. */
  expiresAt?: number;
  /** The raw expires-at tag, for messages. */
  expiresAtTag?: string;
  /** "knockgate <grant>": the grant it was added for (the grant tag may name another of its call). */
  description?: string;
}

function toClusterRule(r: SecurityGroupRule, clusterId: string): ClusterRule | undefined {
  const tags = new Map((r.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  const cidr = r.CidrIpv4 ?? r.CidrIpv6;
  if (
    tags.get(TAG_CLUSTER) !== clusterId ||
    r.IsEgress !== false ||
    !r.SecurityGroupRuleId ||
    !r.GroupId ||
    !cidr
  )
    return undefined;
  return {
    ruleId: r.SecurityGroupRuleId,
    groupId: r.GroupId,
    protocol: r.IpProtocol ?? '',
    fromPort: r.FromPort ?? -1,
    toPort: r.ToPort ?? -1,
    cidr,
    grant: tags.get(TAG_GRANT),
    expiresAt: parseExpiresAt(tags.get(TAG_EXPIRES_AT)),
    expiresAtTag: tags.get(TAG_EXPIRES_AT),
    ...(r.Description !== undefined ? { description: r.Description } : {}),
  };
}

/**
 * Every ingress rule tagged for `clusterId` in the client's region; with `ruleIds`, only those
 * (a re-read just before revoking, so a rule whose expiry was extended meanwhile is kept).
 */
export async function listClusterRules(
  client: EC2Client,
  clusterId: string,
  options: { groupIds?: string[]; ruleIds?: string[] } = {},
): Promise<ClusterRule[]> {
  const filters: Filter[] = [{ Name: `tag:${TAG_CLUSTER}`, Values: [clusterId] }];
  if (options.groupIds?.length) filters.push({ Name: 'group-id', Values: options.groupIds });
  if (options.ruleIds?.length) filters.push({ Name: 'security-group-rule-id', Values: options.ruleIds });
  const out: ClusterRule[] = [];
  let nextToken: string | undefined;
  for (let page = 0; page < MAX_RULE_PAGES; page++) {
    const res = await client.send(
      new DescribeSecurityGroupRulesCommand({
        Filters: filters,
        MaxResults: RULES_PAGE_SIZE,
        NextToken: nextToken,
      }),
    );
    for (const r of res.SecurityGroupRules ?? []) {
      const rule = toClusterRule(r, clusterId);
      if (rule) out.push(rule);
    }
    nextToken = res.NextToken || undefined;
    if (!nextToken) return out;
  }
  throw new Error(`DescribeSecurityGroupRules: more than ${MAX_RULE_PAGES} pages of rules, stopped`);
}
