// api/validate.ts against the KnockPolicy CRD schema (crds/knockgate.io_knockpolicies.yaml, OpenAPI
// part only: ajv, x-kubernetes-* ignored). Each case says whether both accept, both refuse, or —
// listed with the reason — where they differ, so that any new difference fails here and is looked at.

import { describe, expect, it } from 'vitest';
import type { KnockPolicy } from '../api/types.js';
import { validatePolicy } from '../api/validate.js';
import { crdValidator } from './fixtures/config/crd-schema.js';

const crd = crdValidator('knockgate.io_knockpolicies.yaml');

const knock = (): KnockPolicy => ({
  apiVersion: 'knockgate.io/v1alpha1',
  kind: 'KnockPolicy',
  metadata: { name: 'ssh' },
  spec: {
    knock: { sequence: ['7000/tcp', '8000/udp'], sequenceTimeoutSeconds: 15, tcpFlags: ['syn', '!ack'] },
    grant: { ports: ['22/tcp'], durationSeconds: 60 },
  },
});
const spa = (): KnockPolicy => ({
  apiVersion: 'knockgate.io/v1alpha1',
  kind: 'KnockPolicy',
  metadata: { name: 'bastion' },
  spec: {
    spa: {
      keySecretRef: { name: 'bastion-keys' },
      port: '62201/udp',
      maxPacketAgeSeconds: 120,
      allowedSources: ['0.0.0.0/0', '::/0'],
      requireSourceAddress: true,
      requireUsername: 'alice',
      hmacDigestType: 'sha3_512',
      encryptionMode: 'legacy',
      allowMissingHmac: false,
    },
    grant: {
      ports: ['22/tcp', '3389/tcp'],
      durationSeconds: 60,
      maxDurationSeconds: 3600,
      targets: {
        node: { mode: 'Selector', nodeSelector: { 'kubernetes.io/os': 'linux' } },
        awsSecurityGroups: [
          { groupId: 'sg-0123abcd', region: 'eu-west-1' },
          { groupId: 'sg-0123456789abcdef0', region: 'us-gov-west-1' },
        ],
      },
    },
    nodeSelector: { role: 'edge' },
    interface: 'eth0.100',
  },
});

type Policy = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Verdict = 'both accept' | 'both refuse' | { validate: boolean; crd: boolean; why: string };

const CEL = 'the CRD checks this in a CEL rule (x-kubernetes-validations), not evaluated by this test';
const PRUNED =
  'the API server prunes unknown fields; validate.ts refuses them (a typo must not disable a rule)';

const cases: [string, () => Policy, Verdict][] = [
  ['a knock policy', knock, 'both accept'],
  ['an SPA policy with every field', spa, 'both accept'],
  [
    'one-time sequences',
    () => ({ ...knock(), spec: { ...knock().spec, knock: { oneTimeSequences: [['1/tcp'], ['2/udp']] } } }),
    'both accept',
  ],
  ['interface ""', () => set(knock(), (p) => (p.spec.interface = '')), 'both accept'],
  [
    'a repeated knock port',
    () => set(knock(), (p) => (p.spec.knock.sequence = ['7000/tcp', '7000/tcp', '8000/tcp'])),
    'both accept',
  ],

  ['port /icmp', () => set(knock(), (p) => (p.spec.grant.ports = ['22/icmp'])), 'both refuse'],
  ['port without protocol', () => set(knock(), (p) => (p.spec.knock.sequence = ['22'])), 'both refuse'],
  ['empty sequence', () => set(knock(), (p) => (p.spec.knock.sequence = [])), 'both refuse'],
  ['65 knocks', () => set(knock(), (p) => (p.spec.knock.sequence = Array(65).fill('1/tcp'))), 'both refuse'],
  ['no grant ports', () => set(knock(), (p) => (p.spec.grant.ports = [])), 'both refuse'],
  ['duration 0', () => set(knock(), (p) => (p.spec.grant.durationSeconds = 0)), 'both refuse'],
  ['duration over a week', () => set(knock(), (p) => (p.spec.grant.durationSeconds = 604801)), 'both refuse'],
  ['duration 1.5', () => set(knock(), (p) => (p.spec.grant.durationSeconds = 1.5)), 'both refuse'],
  ['no grant', () => set(knock(), (p) => delete p.spec.grant), 'both refuse'],
  ['unknown TCP flag', () => set(knock(), (p) => (p.spec.knock.tcpFlags = ['syn', 'ece'])), 'both refuse'],
  [
    'sequence timeout 3601',
    () => set(knock(), (p) => (p.spec.knock.sequenceTimeoutSeconds = 3601)),
    'both refuse',
  ],
  ['source not a CIDR', () => set(spa(), (p) => (p.spec.spa.allowedSources = ['bastion'])), 'both refuse'],
  ['source /33', () => set(spa(), (p) => (p.spec.spa.allowedSources = ['10.0.0.0/33'])), 'both refuse'],
  [
    'source without prefix',
    () => set(spa(), (p) => (p.spec.spa.allowedSources = ['10.0.0.1'])),
    'both refuse',
  ],
  ['packet age 0', () => set(spa(), (p) => (p.spec.spa.maxPacketAgeSeconds = 0)), 'both refuse'],
  ['digest sha224', () => set(spa(), (p) => (p.spec.spa.hmacDigestType = 'sha224')), 'both refuse'],
  ['mode ecb', () => set(spa(), (p) => (p.spec.spa.encryptionMode = 'ecb')), 'both refuse'],
  ['no keySecretRef', () => set(spa(), (p) => delete p.spec.spa.keySecretRef), 'both refuse'],
  [
    'Secret name with capitals',
    () => set(spa(), (p) => (p.spec.spa.keySecretRef.name = 'Keys')),
    'both refuse',
  ],
  [
    'user name of 65 characters',
    () => set(spa(), (p) => (p.spec.spa.requireUsername = 'a'.repeat(65))),
    'both refuse',
  ],
  [
    'node mode Everywhere',
    () => set(spa(), (p) => (p.spec.grant.targets.node = { mode: 'Everywhere' })),
    'both refuse',
  ],
  [
    'bad region',
    () => set(spa(), (p) => (p.spec.grant.targets.awsSecurityGroups[0].region = 'europe')),
    'both refuse',
  ],
  ['interface with a slash', () => set(knock(), (p) => (p.spec.interface = 'eth0/1')), 'both refuse'],
  [
    'interface of 16 characters',
    () => set(knock(), (p) => (p.spec.interface = 'a'.repeat(16))),
    'both refuse',
  ],
  ['allowMissingHmac "yes"', () => set(spa(), (p) => (p.spec.spa.allowMissingHmac = 'yes')), 'both refuse'],

  [
    'port 0',
    () => set(knock(), (p) => (p.spec.grant.ports = ['0/tcp'])),
    { validate: false, crd: true, why: CEL },
  ],
  [
    'port 65536',
    () => set(knock(), (p) => (p.spec.knock.sequence = ['65536/udp'])),
    { validate: false, crd: true, why: CEL },
  ],
  [
    'knock and spa',
    () => set(spa(), (p) => (p.spec.knock = knock().spec.knock)),
    { validate: false, crd: true, why: CEL },
  ],
  [
    'neither knock nor spa',
    () => set(knock(), (p) => delete p.spec.knock),
    { validate: false, crd: true, why: CEL },
  ],
  [
    'sequence and oneTimeSequences',
    () => set(knock(), (p) => (p.spec.knock.oneTimeSequences = [['1/tcp']])),
    { validate: false, crd: true, why: CEL },
  ],
  [
    'maxDuration below duration',
    () => set(spa(), (p) => (p.spec.grant.maxDurationSeconds = 30)),
    { validate: false, crd: true, why: CEL },
  ],
  [
    'Selector without nodeSelector',
    () => set(spa(), (p) => (p.spec.grant.targets.node = { mode: 'Selector' })),
    { validate: false, crd: true, why: CEL },
  ],
  [
    'an unknown field',
    () => set(knock(), (p) => (p.spec.grant.duration = 5)),
    { validate: false, crd: true, why: PRUNED },
  ],
  [
    'keySecretRef.namespace',
    () => set(spa(), (p) => (p.spec.spa.keySecretRef.namespace = 'kube-system')),
    { validate: false, crd: true, why: PRUNED },
  ],
  ['name with a dot', () => set(knock(), (p) => (p.metadata.name = 'ssh.example')), 'both refuse'],

  // Differences between the two files (reported), and bounds both share:
  [
    'contradicting TCP flags',
    () => set(knock(), (p) => (p.spec.knock.tcpFlags = ['syn', '!syn'])),
    {
      validate: false,
      crd: true,
      why: 'the CRD has no rule against a flag and its negation (or a repeated flag)',
    },
  ],
  [
    'a grant port listed twice',
    () => set(knock(), (p) => (p.spec.grant.ports = ['22/tcp', '22/tcp'])),
    {
      validate: false,
      crd: true,
      why: 'the CRD says x-kubernetes-list-type: set (the API server refuses duplicates), not evaluated here',
    },
  ],
  [
    'allowedSources []',
    () => set(spa(), (p) => (p.spec.spa.allowedSources = [])),
    { validate: false, crd: true, why: 'the CRD has no minItems: 1 on allowedSources' },
  ],
  [
    '257 allowed sources',
    () =>
      set(
        spa(),
        (p) => (p.spec.spa.allowedSources = Array.from({ length: 257 }, (_, i) => `10.${i}.0.0/16`)),
      ),
    'both refuse',
  ],
  [
    '1025 one-time sequences',
    () => ({
      ...knock(),
      spec: { ...knock().spec, knock: { oneTimeSequences: Array.from({ length: 1025 }, () => ['1/tcp']) } },
    }),
    'both refuse',
  ],
  [
    '17 security groups',
    () =>
      set(
        spa(),
        (p) =>
          (p.spec.grant.targets.awsSecurityGroups = Array.from({ length: 17 }, () => ({
            groupId: 'sg-0123abcd',
            region: 'eu-west-1',
          }))),
      ),
    'both refuse',
  ],
  [
    'security group id of 9 hex digits',
    () => set(spa(), (p) => (p.spec.grant.targets.awsSecurityGroups[0].groupId = 'sg-0123abcde')),
    'both refuse',
  ],
  ['user name with a space', () => set(spa(), (p) => (p.spec.spa.requireUsername = 'al ice')), 'both refuse'],
  [
    'nodeSelector value of 64 characters',
    () => set(spa(), (p) => (p.spec.nodeSelector = { role: 'a'.repeat(64) })),
    'both refuse',
  ],
];

function set(p: KnockPolicy, change: (p: Policy) => unknown): Policy {
  change(p as Policy);
  return p as Policy;
}

describe('validate.ts and the CRD schema agree, or differ for a stated reason', () => {
  for (const [name, make, verdict] of cases) {
    it(name, () => {
      const v = validatePolicy(make()).errors;
      const c = crd(make());
      const got = { validate: v.length === 0, crd: c.length === 0 };
      const want =
        verdict === 'both accept'
          ? { validate: true, crd: true }
          : verdict === 'both refuse'
            ? { validate: false, crd: false }
            : { validate: verdict.validate, crd: verdict.crd };
      expect({ ...got, v, c }).toMatchObject(want);
    });
  }
});
