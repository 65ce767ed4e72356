// What tests do through the real SDK against the EC2 emulator: make a group, read its inbound rules.

import {
  CreateSecurityGroupCommand,
  DescribeSecurityGroupRulesCommand,
  type EC2Client,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';

export async function createGroup(client: EC2Client, name: string): Promise<string> {
  return (await client.send(new CreateSecurityGroupCommand({ GroupName: name, Description: 'bastion' })))
    .GroupId!;
}

/** The group's inbound rules as DescribeSecurityGroupRules reports them. */
export async function ingressRules(client: EC2Client, groupId: string): Promise<SecurityGroupRule[]> {
  const r = await client.send(
    new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }),
  );
  return (r.SecurityGroupRules ?? []).filter((x) => !x.IsEgress);
}
