// `knockgate standalone` guarding a bastion elsewhere: policies with awsSecurityGroups targets, the
// real fwknop client in cli, the daemon in srv, and the EC2 emulator on srv's loopback (seen through
// the real @aws-sdk/client-ec2, also in srv):
//   - an SPA packet puts an ingress rule for cli's address, tagged for this host's --cluster-id, in
//     the policy's group (DescribeSecurityGroupRules) and the grant is Active; at expiry it is revoked;
//   - a policy naming an unknown group as well: the grant fails with GroupNotFound in one log line,
//     and the known group is left without a rule for cli (nothing half-applied);
//   - kill -9 with a live grant, restarted after its end: the rule is revoked on start;
//   - `knockgate revoke ADDRESS` revokes the rule of a 10-minute grant at once;
//   - a wrong AWS secret (SigV4 refused, AuthFailure): the grant fails with the reason, nothing open;
//   - no --cluster-id with an AWS target: exit 2 and one line.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessGrant } from '../api/types.js';
import { skipWithoutNetns, waitFor } from './helpers/netns.js';
import {
  EC2_ENV,
  keygen,
  knockgate,
  Lab,
  type Daemon,
  type Ec2InSrv,
  type SpaKeys,
} from './helpers/standalone-harness.js';

const REGION = 'eu-west-1';
const CLUSTER = 'bastion-e2e';
const SPA_PORT = 40401;
const BAD_SPA_PORT = 40402;
const LONG_SPA_PORT = 40403;
const GRANT_SECONDS = 2;
const UNKNOWN_GROUP = 'sg-0000000000000dead';

function config(keys: SpaKeys, group: string): string {
  const policy = (name: string, port: number, groups: string[], seconds = GRANT_SECONDS) => [
    'apiVersion: knockgate.io/v1alpha1',
    'kind: KnockPolicy',
    `metadata: {name: ${name}}`,
    'spec:',
    `  spa: {keySecretRef: {name: keys}, port: "${port}/udp", requireSourceAddress: true}`,
    '  grant:',
    `    ports: ["22/tcp"]`,
    `    durationSeconds: ${seconds}`,
    '    targets:',
    '      node: {mode: None}',
    `      awsSecurityGroups: [${groups.map((g) => `{groupId: ${g}, region: ${REGION}}`).join(', ')}]`,
    '---',
  ];
  return [
    ...policy('bastion', SPA_PORT, [group]),
    ...policy('bastion-bad', BAD_SPA_PORT, [group, UNKNOWN_GROUP]),
    ...policy('bastion-long', LONG_SPA_PORT, [group], 600),
    'apiVersion: v1',
    'kind: Secret',
    'metadata: {name: keys}',
    'stringData:',
    `  KEY_BASE64: ${keys.key}`,
    `  HMAC_KEY_BASE64: ${keys.hmac}`,
    '',
  ].join('\n');
}

describe.skipIf(skipWithoutNetns('standalone AWS targets e2e'))(
  'knockgate standalone: awsSecurityGroups targets end to end',
  () => {
    let lab: Lab;
    let keys: SpaKeys;
    let ec2: Ec2InSrv;
    let group: string;
    let file: string;

    beforeAll(async () => {
      lab = await Lab.create();
      [keys, ec2] = await Promise.all([keygen(), lab.startEc2()]);
      group = await ec2.createGroup('bastion');
      file = lab.write('aws.yaml', config(keys, group));
    });

    afterAll(async () => {
      await lab?.destroy();
    });

    const start = (env: Record<string, string> = EC2_ENV): Promise<Daemon> =>
      lab.startDaemon({
        config: file,
        extraArgs: ['--cluster-id', CLUSTER, '--aws-endpoint', ec2.url],
        env,
      });

    const cliRules = async () => (await ec2.ingress(group)).filter((r) => r.cidr === `${lab.addr('cli')}/32`);

    const waitRules = (n: number, what: string) =>
      waitFor(async () => (await cliRules()).length === n, { timeoutMs: 20_000, intervalMs: 100, what });

    it('SPA → a tagged rule for the client in the group, Active; expiry → revoked; an unknown group → Failed, nothing open', async () => {
      const d = await start();
      await lab.fwknop('cli', keys, 'tcp/22', SPA_PORT);
      await waitRules(1, 'the rule for cli');
      const [rule] = await cliRules();
      expect(rule).toMatchObject({ protocol: 'tcp', port: 22 });
      expect(rule!.tags['knockgate.io/cluster']).toBe(CLUSTER);
      expect(rule!.tags['knockgate.io/expires-at']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const opened = await d.waitEvent('open');
      expect(rule!.tags['knockgate.io/grant']).toBe(opened.grant);
      expect(rule!.description).toBe(`knockgate ${String(opened.grant)}`);
      const stored = JSON.parse(await lab.grants(lab.stateDir, ['--output', 'json'])) as AccessGrant[];
      const active = stored.find((g) => g.metadata.name === opened.grant)!;
      expect(active.status?.phase).toBe('Active');
      expect(active.status?.securityGroups?.[`${REGION}/${group}`]).toMatchObject({
        state: 'Applied',
        ruleId: rule!.ruleId,
      });
      await d.waitLog((l) => l.event === 'expire' && l.grant === opened.grant, 'expire', 20_000);
      await waitRules(0, 'the rule revoked at expiry');
      await d.waitEvent('aws-revoke');

      await lab.fwknop('cli', keys, 'tcp/22', BAD_SPA_PORT);
      const failed = await d.waitEvent('failed', 'the unknown group refused');
      expect(failed.msg).toMatch(
        new RegExp(`failed: aws: security group ${UNKNOWN_GROUP} \\(${REGION}\\) tcp/22: GroupNotFound: `),
      );
      expect(String(failed.msg).split('\n')).toHaveLength(1);
      // The known group got its rule in the same pass; the failure took it away again.
      await waitRules(0, 'nothing left in the known group');

      // A live grant, the daemon killed, restarted after the grant's end: revoked on start.
      const mark = d.lines.length;
      await lab.fwknop('cli', keys, 'tcp/22', SPA_PORT);
      await d.waitLog((l) => l.event === 'open', 'second open', 20_000, mark);
      await waitRules(1, 'the second rule');
      await d.kill9();
      await new Promise((r) => setTimeout(r, GRANT_SECONDS * 1000 + 1200));
      expect(await cliRules()).toHaveLength(1); // nothing revoked it while the daemon was down
      const again = await start();
      await again.waitEvent('aws-revoke', 'revoked on start');
      expect(await cliRules()).toEqual([]);

      await lab.fwknop('cli', keys, 'tcp/22', LONG_SPA_PORT);
      await waitRules(1, 'the 10-minute rule');
      const r = await knockgate(undefined, ['revoke', lab.addr('cli'), '--state-dir', lab.stateDir]);
      expect(r.code).toBe(0);
      await waitRules(0, 'the rule revoked by knockgate revoke');
      expect(again.events('revoke')).toHaveLength(1);
      await again.stop();
    });

    it('a wrong AWS secret: AuthFailure, the grant Failed with the reason, nothing open', async () => {
      const d = await start({ ...EC2_ENV, AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
      await d.waitEvent('aws-error', 'the start listing refused');
      await lab.fwknop('cli', keys, 'tcp/22', SPA_PORT);
      const failed = await d.waitEvent('failed', 'the grant refused');
      expect(failed.msg).toMatch(/failed: aws: security group sg-\w+ \(eu-west-1\) tcp\/22: AuthFailure: /);
      expect(await cliRules()).toEqual([]);
      await d.stop();
    });

    it('an AWS target without --cluster-id: exit 2, one line', async () => {
      const r = await knockgate(lab.srv, ['standalone', '--config', file, '--state-dir', `${lab.dir}/none`]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toMatch(
        /^knockgate: policy "bastion" targets security group sg-\w+ \(eu-west-1\): --cluster-id is required/,
      );
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    });
  },
);
