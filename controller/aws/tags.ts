// The tags and description knockgate puts on every security-group rule it adds (DESIGN.md "Cloud
// bastion topology"). They are what lets anything — the controller's sweep, `knockgate sweep` in a
// cron job or a Lambda, an IAM condition — tell this cluster's rules from everyone else's and know
// when each one ends, even when the cluster that added it is gone.

/** Which knockgate installation owns the rule. Required configuration, no default. */
export const TAG_CLUSTER = 'knockgate.io/cluster';
/**
 * The grant the rule was added for: the one with the latest end when several share it; for rules
 * added in one call for several grants ending in the same second, the first of them (each rule's
 * description, "knockgate <grant>", names its own).
 */
export const TAG_GRANT = 'knockgate.io/grant';
/** When the rule must be gone: RFC 3339 UTC, whole seconds ("2026-12-06T04:00:00Z"). */
export const TAG_EXPIRES_AT = 'knockgate.io/expires-at';

/**
 * A cluster id is a tag value, an IAM condition value and a filter value: keep it to characters
 * that mean nothing to any of them (no `*` or `?`, which DescribeSecurityGroupRules' filters take
 * as wildcards, so `--cluster 'p*'` can never select another cluster's rules).
 */
const CLUSTER_ID = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/** Null when `id` is a usable cluster id, else what is wrong with it (one line). */
export function clusterIdProblem(id: string): string | null {
  if (CLUSTER_ID.test(id)) return null;
  return `cluster id "${id}": want 1-63 letters, digits, ".", "_" or "-", starting and ending with a letter or digit`;
}

/** The rule description: "knockgate <namespace/name>" (EC2 allows a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*). */
export function ruleDescription(grant: string): string {
  return `knockgate ${grant}`.replace(/[^a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]/g, '_').slice(0, 255);
}

/** The expires-at tag value for an instant (ms since the epoch), rounded up to the second. */
export function formatExpiresAt(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/** The instant an expires-at tag value names, or undefined when it is not one knockgate writes. */
export function parseExpiresAt(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/.test(value))
    return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The tags of a new rule, for AuthorizeSecurityGroupIngress' TagSpecifications. */
export function ruleTags(
  clusterId: string,
  grant: string,
  expiresAt: number,
): { Key: string; Value: string }[] {
  return [
    { Key: TAG_CLUSTER, Value: clusterId },
    { Key: TAG_GRANT, Value: grant },
    { Key: TAG_EXPIRES_AT, Value: formatExpiresAt(expiresAt) },
  ];
}
