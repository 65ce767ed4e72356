// Semantic validation of KnockPolicy and AccessGrant objects, wherever they come from: the
// Kubernetes API (re-checked by the reconcilers), a knockgate YAML file, or a converted knockd.conf /
// access.conf. The CRDs in crds/ mirror these rules in OpenAPI + CEL; every rule is one line here so
// the two can be compared. Errors carry field paths such as "spec.grant.ports[1]".

import type { AccessGrant, KnockPolicy } from './types.js';
import { API_VERSION } from './types.js';
import { BOUNDS, LIST_BOUNDS } from './limits.js';
import { isSingleHost } from './addresses.js';
import {
  AWS_REGION,
  Checker,
  INTERFACE_NAME,
  SECURITY_GROUP_ID,
  TCP_FLAGS,
  type FieldError,
} from './validate-fields.js';

export type { FieldError } from './validate-fields.js';

export const HMAC_DIGEST_TYPES = [
  'md5',
  'sha1',
  'sha256',
  'sha384',
  'sha512',
  'sha3_256',
  'sha3_512',
] as const;
export const ENCRYPTION_MODES = ['cbc', 'legacy'] as const;
export const NODE_TARGET_MODES = ['Local', 'Selector', 'None'] as const;
export const GRANT_METHODS = ['knock', 'spa', 'manual'] as const;
/** fwknop's MAX_USERNAME_LEN is 64. */
export const MAX_USERNAME_LENGTH = 64;

export interface PolicyValidation {
  /** The policy, when there are no errors. */
  policy?: KnockPolicy;
  errors: FieldError[];
}

export interface GrantValidation {
  grant?: AccessGrant;
  errors: FieldError[];
}

export function validatePolicy(p: unknown): PolicyValidation {
  const c = new Checker();
  if (!c.isObject(p, '')) return { errors: c.errors };
  c.knownFields(p, '', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  if (p.apiVersion !== API_VERSION) c.fail('apiVersion', `must be ${API_VERSION}`);
  if (p.kind !== 'KnockPolicy') c.fail('kind', 'must be KnockPolicy');
  if (c.isObject(p.metadata, 'metadata')) c.dnsLabel(p.metadata.name, 'metadata.name');
  if (c.isObject(p.spec, 'spec')) checkPolicySpec(c, p.spec);
  return c.errors.length ? { errors: c.errors } : { policy: p as unknown as KnockPolicy, errors: [] };
}

function checkPolicySpec(c: Checker, spec: Record<string, unknown>): void {
  c.knownFields(spec, 'spec', ['knock', 'spa', 'grant', 'nodeSelector', 'interface']);
  // Exactly one kind of door.
  if ((spec.knock === undefined) === (spec.spa === undefined)) {
    c.fail('spec', 'must have exactly one of knock or spa');
  }
  if (spec.knock !== undefined && c.isObject(spec.knock, 'spec.knock')) checkKnock(c, spec.knock);
  if (spec.spa !== undefined && c.isObject(spec.spa, 'spec.spa')) checkSpa(c, spec.spa);
  if (c.isObject(spec.grant, 'spec.grant')) checkGrantTemplate(c, spec.grant);
  if (spec.nodeSelector !== undefined) c.stringMap(spec.nodeSelector, 'spec.nodeSelector');
  if (spec.interface !== undefined && spec.interface !== '') {
    c.matches(spec.interface, 'spec.interface', INTERFACE_NAME, 'a network interface name');
  }
}

function checkKnock(c: Checker, knock: Record<string, unknown>): void {
  const path = 'spec.knock';
  c.knownFields(knock, path, ['sequence', 'oneTimeSequences', 'sequenceTimeoutSeconds', 'tcpFlags']);
  if ((knock.sequence === undefined) === (knock.oneTimeSequences === undefined)) {
    c.fail(path, 'must have exactly one of sequence or oneTimeSequences');
  }
  if (knock.sequence !== undefined) checkSequence(c, knock.sequence, `${path}.sequence`);
  if (knock.oneTimeSequences !== undefined) {
    const p = `${path}.oneTimeSequences`;
    if (c.list(knock.oneTimeSequences, p, 1, LIST_BOUNDS.maxOneTimeSequences)) {
      knock.oneTimeSequences.forEach((s, i) => checkSequence(c, s, `${p}[${i}]`));
    }
  }
  if (knock.sequenceTimeoutSeconds !== undefined) {
    c.integer(
      knock.sequenceTimeoutSeconds,
      `${path}.sequenceTimeoutSeconds`,
      1,
      BOUNDS.maxSequenceTimeoutSeconds,
    );
  }
  if (knock.tcpFlags !== undefined) checkTcpFlags(c, knock.tcpFlags, `${path}.tcpFlags`);
}

/** A knock sequence may repeat a port ("7000,7000,8000" is a valid knockd sequence). */
function checkSequence(c: Checker, seq: unknown, path: string): void {
  if (c.list(seq, path, 1, BOUNDS.maxSequenceLength)) seq.forEach((p, i) => c.port(p, `${path}[${i}]`));
}

function checkTcpFlags(c: Checker, flags: unknown, path: string): void {
  if (!c.list(flags, path, 1, TCP_FLAGS.length)) return;
  const wanted = new Map<string, { negated: boolean; index: number }>();
  flags.forEach((f, i) => {
    const p = `${path}[${i}]`;
    if (!c.isString(f, p)) return;
    const negated = f.startsWith('!');
    const name = negated ? f.slice(1) : f;
    if (!(TCP_FLAGS as readonly string[]).includes(name)) {
      c.fail(p, `"${f}" is not a TCP flag: use ${TCP_FLAGS.join(', ')}, each optionally prefixed with "!"`);
      return;
    }
    const earlier = wanted.get(name);
    if (earlier && earlier.negated !== negated) c.fail(p, `"${f}" contradicts ${path}[${earlier.index}]`);
    else if (earlier) c.fail(p, `"${f}" is listed twice`);
    else wanted.set(name, { negated, index: i });
  });
}

function checkSpa(c: Checker, spa: Record<string, unknown>): void {
  const path = 'spec.spa';
  c.knownFields(spa, path, [
    'keySecretRef',
    'port',
    'maxPacketAgeSeconds',
    'allowedSources',
    'requireSourceAddress',
    'requireUsername',
    'hmacDigestType',
    'encryptionMode',
    'allowMissingHmac',
  ]);
  if (c.isObject(spa.keySecretRef, `${path}.keySecretRef`)) {
    // Keys live in the release namespace only: a namespace field is refused, not ignored.
    c.knownFields(spa.keySecretRef, `${path}.keySecretRef`, ['name']);
    c.dnsSubdomain(spa.keySecretRef.name, `${path}.keySecretRef.name`);
  }
  c.port(spa.port, `${path}.port`);
  if (spa.maxPacketAgeSeconds !== undefined) {
    c.integer(spa.maxPacketAgeSeconds, `${path}.maxPacketAgeSeconds`, 1, BOUNDS.maxPacketAgeSeconds);
  }
  if (spa.allowedSources !== undefined) {
    c.cidrList(spa.allowedSources, `${path}.allowedSources`, 1, LIST_BOUNDS.maxAllowedSources);
  }
  if (spa.requireSourceAddress !== undefined)
    c.isBoolean(spa.requireSourceAddress, `${path}.requireSourceAddress`);
  if (spa.requireUsername !== undefined) {
    c.printable(
      spa.requireUsername,
      `${path}.requireUsername`,
      'a user name without spaces',
      MAX_USERNAME_LENGTH,
      true,
    );
  }
  if (spa.hmacDigestType !== undefined)
    c.oneOf(spa.hmacDigestType, `${path}.hmacDigestType`, HMAC_DIGEST_TYPES);
  if (spa.encryptionMode !== undefined)
    c.oneOf(spa.encryptionMode, `${path}.encryptionMode`, ENCRYPTION_MODES);
  if (spa.allowMissingHmac !== undefined) c.isBoolean(spa.allowMissingHmac, `${path}.allowMissingHmac`);
}

function checkGrantTemplate(c: Checker, grant: Record<string, unknown>): void {
  const path = 'spec.grant';
  c.knownFields(grant, path, ['ports', 'durationSeconds', 'maxDurationSeconds', 'targets']);
  c.portList(grant.ports, `${path}.ports`, 1, BOUNDS.maxPortsPerGrant);
  const durationOk = c.integer(
    grant.durationSeconds,
    `${path}.durationSeconds`,
    1,
    BOUNDS.maxDurationSeconds,
  );
  if (grant.maxDurationSeconds !== undefined) {
    const p = `${path}.maxDurationSeconds`;
    if (c.integer(grant.maxDurationSeconds, p, 1, BOUNDS.maxDurationSeconds) && durationOk) {
      if (grant.maxDurationSeconds < (grant.durationSeconds as number)) {
        c.fail(p, `must be at least durationSeconds (${grant.durationSeconds as number})`);
      }
    }
  }
  if (grant.targets !== undefined && c.isObject(grant.targets, `${path}.targets`)) {
    checkTargets(c, grant.targets, `${path}.targets`);
  }
}

function checkTargets(c: Checker, targets: Record<string, unknown>, path: string): void {
  c.knownFields(targets, path, ['node', 'awsSecurityGroups']);
  if (targets.node !== undefined && c.isObject(targets.node, `${path}.node`)) {
    const node = targets.node;
    c.knownFields(node, `${path}.node`, ['mode', 'nodeSelector']);
    if (c.oneOf(node.mode, `${path}.node.mode`, NODE_TARGET_MODES)) {
      if (node.mode === 'Selector') {
        if (node.nodeSelector === undefined)
          c.fail(`${path}.node.nodeSelector`, 'is required when mode is Selector');
        else if (c.stringMap(node.nodeSelector, `${path}.node.nodeSelector`)) {
          if (Object.keys(node.nodeSelector).length === 0) {
            c.fail(
              `${path}.node.nodeSelector`,
              'must not be empty when mode is Selector (it would select every node)',
            );
          }
        }
      } else if (node.nodeSelector !== undefined) {
        c.fail(`${path}.node.nodeSelector`, `is only allowed when mode is Selector, not ${node.mode}`);
      }
    }
  }
  if (targets.awsSecurityGroups !== undefined)
    checkSecurityGroups(c, targets.awsSecurityGroups, `${path}.awsSecurityGroups`);
}

/** Check a list of security-group references; false when it is not a list at all. */
export function checkSecurityGroups(c: Checker, groups: unknown, path: string): groups is unknown[] {
  if (!c.list(groups, path, 0, LIST_BOUNDS.maxSecurityGroups)) return false;
  groups.forEach((g, i) => {
    const p = `${path}[${i}]`;
    if (!c.isObject(g, p)) return;
    c.knownFields(g, p, ['groupId', 'region']);
    c.matches(
      g.groupId,
      `${p}.groupId`,
      SECURITY_GROUP_ID,
      'a security group id (sg- and 8 or 17 hex digits)',
    );
    c.matches(g.region, `${p}.region`, AWS_REGION, 'an AWS region such as eu-west-1');
  });
  return true;
}

export function validateGrant(g: unknown): GrantValidation {
  const c = new Checker();
  if (!c.isObject(g, '')) return { errors: c.errors };
  c.knownFields(g, '', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  if (g.apiVersion !== API_VERSION) c.fail('apiVersion', `must be ${API_VERSION}`);
  if (g.kind !== 'AccessGrant') c.fail('kind', 'must be AccessGrant');
  if (c.isObject(g.metadata, 'metadata')) c.dnsSubdomain(g.metadata.name, 'metadata.name');
  if (c.isObject(g.spec, 'spec')) checkGrantSpec(c, g.spec);
  return c.errors.length ? { errors: c.errors } : { grant: g as unknown as AccessGrant, errors: [] };
}

function checkGrantSpec(c: Checker, spec: Record<string, unknown>): void {
  c.knownFields(spec, 'spec', [
    'source',
    'ports',
    'expiresAt',
    'policyRef',
    'method',
    'observedBy',
    'user',
    'targets',
  ]);
  if (c.cidr(spec.source, 'spec.source') && !isSingleHost(spec.source)) {
    c.fail('spec.source', `"${spec.source}" must be one host (/32 or /128)`);
  }
  c.portList(spec.ports, 'spec.ports', 1, BOUNDS.maxPortsPerGrant);
  c.rfc3339(spec.expiresAt, 'spec.expiresAt');
  const methodOk = c.oneOf(spec.method, 'spec.method', GRANT_METHODS);
  if (spec.policyRef !== undefined) {
    if (c.isObject(spec.policyRef, 'spec.policyRef')) {
      c.knownFields(spec.policyRef, 'spec.policyRef', ['name']);
      c.dnsLabel(spec.policyRef.name, 'spec.policyRef.name');
    }
  } else if (methodOk && spec.method !== 'manual') {
    c.fail('spec.policyRef', `is required for a ${spec.method as string} grant`);
  }
  if (spec.observedBy !== undefined) c.dnsSubdomain(spec.observedBy, 'spec.observedBy');
  if (spec.user !== undefined)
    c.printable(spec.user, 'spec.user', 'a printable user name', MAX_USERNAME_LENGTH);
  if (spec.targets !== undefined && c.isObject(spec.targets, 'spec.targets')) {
    c.knownFields(spec.targets, 'spec.targets', ['nodes', 'awsSecurityGroups']);
    const nodes = spec.targets.nodes;
    if (nodes !== undefined && c.list(nodes, 'spec.targets.nodes', 0, LIST_BOUNDS.maxTargetNodes)) {
      nodes.forEach((n, i) => c.dnsSubdomain(n, `spec.targets.nodes[${i}]`));
    }
    if (spec.targets.awsSecurityGroups !== undefined) {
      checkSecurityGroups(c, spec.targets.awsSecurityGroups, 'spec.targets.awsSecurityGroups');
    }
  }
}
