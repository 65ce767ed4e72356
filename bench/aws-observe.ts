// The observer of the AWS benchmark, run in the server namespace (the EC2 emulator listens on its
// loopback), through the real @aws-sdk/client-ec2:
//   node dist/bench/aws-observe.js '<json ObserveArgs>'
// op "create": create a security group, print {"groupId": ...}.
// op "watch":  DescribeSecurityGroupRules on the group in a loop (POLL_GAP_MS between calls), until
//              every expected source's rule has appeared and gone again or the deadline; prints
//              "ready" after the first call, then {"appearedAt": {cidr: ms}, "goneAt": {...},
//              "describeCalls": n} (epoch ms, sub-ms: the time the answer that first showed the
//              change arrived).
// op "requests": the emulator's request log (admin endpoint), counted by action.

import {
  CreateSecurityGroupCommand,
  DescribeSecurityGroupRulesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ObserveArgs {
  op: 'create' | 'watch' | 'requests';
  url: string;
  region: string;
  adminToken?: string;
  groupId?: string;
  cidrs?: string[];
  timeoutMs?: number;
  /** watch: stop once every expected rule has appeared (do not wait for them to go). */
  untilAppeared?: boolean;
}

const POLL_GAP_MS = 2;
const epochMs = () => performance.timeOrigin + performance.now();

async function watch(client: EC2Client, args: ObserveArgs): Promise<void> {
  const expected = new Set(args.cidrs);
  const appearedAt: Record<string, number> = {};
  const goneAt: Record<string, number> = {};
  const end = Date.now() + (args.timeoutMs ?? 120_000);
  let describeCalls = 0;
  let first = true;
  const done = () => Object.keys(args.untilAppeared ? appearedAt : goneAt).length >= expected.size;
  while (Date.now() < end && !done()) {
    const res = await client.send(
      new DescribeSecurityGroupRulesCommand({
        Filters: [{ Name: 'group-id', Values: [args.groupId!] }],
        MaxResults: 1000,
      }),
    );
    describeCalls++;
    const at = epochMs();
    const present = new Set((res.SecurityGroupRules ?? []).filter((r) => !r.IsEgress).map((r) => r.CidrIpv4));
    for (const cidr of expected) {
      if (present.has(cidr) && appearedAt[cidr] === undefined) appearedAt[cidr] = at;
      if (!present.has(cidr) && appearedAt[cidr] !== undefined && goneAt[cidr] === undefined)
        goneAt[cidr] = at;
    }
    if (first) process.stdout.write('ready\n');
    first = false;
    await sleep(POLL_GAP_MS);
  }
  process.stdout.write(`${JSON.stringify({ appearedAt, goneAt, describeCalls })}\n`);
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const args = JSON.parse(process.argv[2]!) as ObserveArgs;
  const client = new EC2Client({ endpoint: args.url, region: args.region, maxAttempts: 1 });
  try {
    if (args.op === 'create') {
      const r = await client.send(
        new CreateSecurityGroupCommand({ GroupName: `bench-${Date.now()}`, Description: 'bench bastion' }),
      );
      process.stdout.write(`${JSON.stringify({ groupId: r.GroupId })}\n`);
    } else if (args.op === 'watch') await watch(client, args);
    else {
      const r = await fetch(`${args.url}/emulator/v1/requests`, {
        headers: { authorization: `Bearer ${args.adminToken ?? ''}` },
      });
      const counts: Record<string, number> = {};
      for (const q of (await r.json()) as { action: string }[])
        counts[q.action] = (counts[q.action] ?? 0) + 1;
      process.stdout.write(`${JSON.stringify({ counts })}\n`);
    }
  } finally {
    client.destroy();
  }
}

await main();
