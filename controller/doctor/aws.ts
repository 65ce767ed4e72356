// With AWS access: whether the node's security groups let the SPA port in (DESIGN "Cloud bastion
// topology": SPA reaches the node at its address or through a load balancer keeping the client
// address, and the node's group must allow it), and which groups carry this cluster's tag (the
// ones knockgate opens). DescribeSecurityGroups only: read-only, the controller's own IAM allows it.

import { DescribeSecurityGroupsCommand, type IpPermission, type SecurityGroup } from '@aws-sdk/client-ec2';
import { formatPort, type PortRef } from '../../api/ports.js';
import { awsErrorLine, type Ec2Clients } from '../aws/client.js';
import { TAG_CLUSTER } from '../aws/tags.js';
import { fail, ok, warn, type CheckResult } from './report.js';

/** The sources of `perm` when it lets `port` in, else []. */
function sourcesFor(perm: IpPermission, port: PortRef): string[] {
  const proto = perm.IpProtocol;
  const covers =
    proto === '-1' ||
    (proto === port.proto && (perm.FromPort ?? 0) <= port.port && port.port <= (perm.ToPort ?? 65535));
  if (!covers) return [];
  return [
    ...(perm.IpRanges ?? []).map((r) => r.CidrIp ?? '?'),
    ...(perm.Ipv6Ranges ?? []).map((r) => r.CidrIpv6 ?? '?'),
    ...(perm.PrefixListIds ?? []).map((r) => r.PrefixListId ?? '?'),
    ...(perm.UserIdGroupPairs ?? []).map((r) => r.GroupId ?? '?'),
  ];
}

/** One line per SPA port: which of the groups let it in, from where. */
export function securityGroupCheck(
  groups: readonly SecurityGroup[],
  spaPorts: readonly PortRef[],
): CheckResult {
  const name = 'aws-sg';
  const ids = groups.map((g) => g.GroupId).join(', ');
  const parts: string[] = [];
  const closed: string[] = [];
  for (const port of spaPorts) {
    const from = [
      ...new Set(groups.flatMap((g) => (g.IpPermissions ?? []).flatMap((p) => sourcesFor(p, port)))),
    ];
    if (from.length === 0) closed.push(formatPort(port));
    else parts.push(`${formatPort(port)} from ${from.join(', ')}`);
  }
  if (closed.length > 0)
    return fail(
      name,
      `${ids} allow${groups.length === 1 ? 's' : ''} no inbound ${closed.join(', ')}: SPA packets are dropped before they ` +
        'reach the node — add an ingress rule for the SPA port (UDP) to the node security group',
    );
  return ok(name, `${ids} allow${groups.length === 1 ? 's' : ''} ${parts.join('; ')}`);
}

export interface AwsDoctorOptions {
  clients: Ec2Clients;
  region: string;
  securityGroups: readonly string[];
  clusterId?: string;
  spaPorts: readonly PortRef[];
}

export async function awsChecks(o: AwsDoctorOptions): Promise<CheckResult[]> {
  const ec2 = o.clients.get(o.region);
  const out: CheckResult[] = [];
  if (o.securityGroups.length === 0) {
    out.push(
      warn('aws-sg', "no --security-group given: name the node's security groups to check the SPA port"),
    );
  } else if (o.spaPorts.length === 0) {
    out.push(
      warn('aws-sg', 'no SPA port configured (give --config, --agent-config or --port): nothing to check'),
    );
  } else {
    try {
      const r = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [...o.securityGroups] }));
      out.push(securityGroupCheck(r.SecurityGroups ?? [], o.spaPorts));
    } catch (err) {
      out.push(fail('aws-sg', `DescribeSecurityGroups in ${o.region}: ${awsErrorLine(err)}`));
    }
  }
  if (o.clusterId !== undefined) {
    try {
      const r = await ec2.send(
        new DescribeSecurityGroupsCommand({
          Filters: [{ Name: `tag:${TAG_CLUSTER}`, Values: [o.clusterId] }],
        }),
      );
      const ids = (r.SecurityGroups ?? []).map((g) => g.GroupId);
      out.push(
        ids.length > 0
          ? ok('aws-tags', `${o.region}: ${ids.join(', ')} carry ${TAG_CLUSTER}=${o.clusterId}`)
          : warn(
              'aws-tags',
              `${o.region}: no security group carries ${TAG_CLUSTER}=${o.clusterId}: grants with awsSecurityGroups targets will fail there`,
            ),
      );
    } catch (err) {
      out.push(fail('aws-tags', `DescribeSecurityGroups in ${o.region}: ${awsErrorLine(err)}`));
    }
  }
  return out;
}
