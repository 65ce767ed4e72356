// One region's security groups, rules and tags, and the actions on them. Every action validates
// the whole request before changing anything, so a failed call leaves the region as it was
// (AuthorizeSecurityGroupIngress is all-or-nothing per call, as on EC2; moto is not).

import { randomBytes } from 'node:crypto';
import {
  Ec2Error,
  groupNotFound,
  invalidParameterValue,
  missingParameter,
  ruleIdNotFound,
} from './errors.js';
import { parsePermissions, ruleText, sameRule, type RuleSpec } from './permissions.js';
import { filters, tags as tagParams, type Filter, type Params, type Tag } from './query.js';
import type { XmlValue } from './xml.js';

export const OWNER_ID = '123456789012';
/** Tag bounds from the EC2 tagging documentation. */
export const MAX_TAGS_PER_RESOURCE = 50;
const MAX_KEY = 128;
const MAX_VALUE = 256;

export interface Group {
  groupId: string;
  groupName: string;
  description: string;
  vpcId: string;
  tags: Map<string, string>;
}

export interface Rule extends RuleSpec {
  securityGroupRuleId: string;
  groupId: string;
  isEgress: boolean;
  tags: Map<string, string>;
}

export interface RegionLimits {
  /** Inbound rules per security group, counted per address family (EC2's default: 60). */
  inboundRulesPerFamily: number;
}

type Result = { [k: string]: XmlValue };

const newId = (prefix: string) => `${prefix}-${randomBytes(9).toString('hex').slice(0, 17)}`;

export class Region {
  readonly groups = new Map<string, Group>();
  readonly rules = new Map<string, Rule>();

  constructor(
    readonly name: string,
    private readonly limits: () => RegionLimits,
  ) {}

  run(action: string, params: Params): Result {
    switch (action) {
      case 'CreateSecurityGroup':
        return this.createSecurityGroup(params);
      case 'DescribeSecurityGroups':
        return this.describeSecurityGroups(params);
      case 'DescribeSecurityGroupRules':
        return this.describeSecurityGroupRules(params);
      case 'AuthorizeSecurityGroupIngress':
        return this.authorizeIngress(params);
      case 'RevokeSecurityGroupIngress':
        return this.revokeIngress(params);
      case 'CreateTags':
        return this.createTags(params);
      case 'DeleteTags':
        return this.deleteTags(params);
      default:
        throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
    }
  }

  // --- groups -------------------------------------------------------------------------------

  private createSecurityGroup(params: Params): Result {
    const groupName = params.require('GroupName');
    const description = params.require('GroupDescription');
    const vpcId = params.get('VpcId') ?? 'vpc-00000000000000001';
    if (groupName.length > 255 || groupName.startsWith('sg-'))
      throw invalidParameterValue(`Invalid security group name '${groupName}'`);
    for (const g of this.groups.values())
      if (g.groupName === groupName && g.vpcId === vpcId)
        throw new Ec2Error(
          'InvalidGroup.Duplicate',
          `The security group '${groupName}' already exists for VPC '${vpcId}'`,
        );
    const tags = tagSpecifications(params, 'security-group');
    const group: Group = { groupId: newId('sg'), groupName, description, vpcId, tags: new Map() };
    applyTags(group.tags, tags);
    this.groups.set(group.groupId, group);
    // A new VPC security group allows all outbound traffic (EC2's default egress rule).
    const egress: Rule = {
      securityGroupRuleId: newId('sgr'),
      groupId: group.groupId,
      isEgress: true,
      ipProtocol: '-1',
      fromPort: -1,
      toPort: -1,
      cidrIpv4: '0.0.0.0/0',
      tags: new Map(),
    };
    this.rules.set(egress.securityGroupRuleId, egress);
    return { return: true, groupId: group.groupId, tagSet: tagSet(group.tags) };
  }

  private group(id: string): Group {
    const g = this.groups.get(id);
    if (!g) throw groupNotFound(id);
    return g;
  }

  private groupFromParams(params: Params): Group {
    const id = params.get('GroupId');
    if (id) return this.group(id);
    const name = params.get('GroupName');
    if (!name) throw missingParameter('GroupId');
    const g = [...this.groups.values()].find((x) => x.groupName === name);
    if (!g) throw groupNotFound(name);
    return g;
  }

  private describeSecurityGroups(params: Params): Result {
    const ids = params.strings('GroupId');
    const names = params.strings('GroupName');
    for (const id of ids) this.group(id);
    for (const n of names)
      if (![...this.groups.values()].some((g) => g.groupName === n)) throw groupNotFound(n);
    const fs = filters(params);
    const list = [...this.groups.values()].filter(
      (g) =>
        (ids.length === 0 || ids.includes(g.groupId)) &&
        (names.length === 0 || names.includes(g.groupName)) &&
        fs.every((f) => groupMatches(g, f)),
    );
    const page = paginate(params, list, 5, 1000);
    return {
      securityGroupInfo: page.items.map((g) => ({
        ownerId: OWNER_ID,
        groupId: g.groupId,
        groupName: g.groupName,
        groupDescription: g.description,
        vpcId: g.vpcId,
        ipPermissions: permissionsXml(this.rulesOf(g.groupId, false)),
        ipPermissionsEgress: permissionsXml(this.rulesOf(g.groupId, true)),
        tagSet: tagSet(g.tags),
      })),
      nextToken: page.nextToken,
    };
  }

  rulesOf(groupId: string, isEgress: boolean): Rule[] {
    return [...this.rules.values()].filter((r) => r.groupId === groupId && r.isEgress === isEgress);
  }

  // --- rules --------------------------------------------------------------------------------

  private describeSecurityGroupRules(params: Params): Result {
    const ids = params.strings('SecurityGroupRuleId');
    for (const id of ids) if (!this.rules.has(id)) throw ruleIdNotFound(id);
    const fs = filters(params);
    for (const f of fs)
      if (!['group-id', 'security-group-rule-id', 'tag-key'].includes(f.name) && !f.name.startsWith('tag:'))
        throw invalidParameterValue(`The filter '${f.name}' is invalid`);
    const list = [...this.rules.values()].filter(
      (r) => (ids.length === 0 || ids.includes(r.securityGroupRuleId)) && fs.every((f) => ruleMatches(r, f)),
    );
    const page = paginate(params, list, 5, 1000);
    return { securityGroupRuleSet: page.items.map(ruleXml), nextToken: page.nextToken };
  }

  private authorizeIngress(params: Params): Result {
    const group = this.groupFromParams(params);
    const specs = parsePermissions(params);
    if (specs.length === 0) throw missingParameter('IpPermissions');
    const tags = tagSpecifications(params, 'security-group-rule');
    const existing = this.rulesOf(group.groupId, false);
    specs.forEach((s, i) => {
      const dup = existing.find((r) => sameRule(r, s)) ?? specs.slice(0, i).find((r) => sameRule(r, s));
      if (dup)
        throw new Ec2Error(
          'InvalidPermission.Duplicate',
          `the specified rule "${ruleText(s)}" already exists`,
        );
    });
    const limit = this.limits().inboundRulesPerFamily;
    for (const v6 of [false, true]) {
      const count = (rs: RuleSpec[]) => rs.filter((r) => (r.cidrIpv6 !== undefined) === v6).length;
      if (count(existing) + count(specs) > limit)
        throw new Ec2Error(
          'RulesPerSecurityGroupLimitExceeded',
          'The maximum number of rules per security group has been reached.',
        );
    }
    const created = specs.map((s) => {
      const rule: Rule = {
        ...s,
        securityGroupRuleId: newId('sgr'),
        groupId: group.groupId,
        isEgress: false,
        tags: new Map(),
      };
      applyTags(rule.tags, tags);
      this.rules.set(rule.securityGroupRuleId, rule);
      return rule;
    });
    return { return: true, securityGroupRuleSet: created.map(ruleXml) };
  }

  private revokeIngress(params: Params): Result {
    const group = this.groupFromParams(params);
    const ids = params.strings('SecurityGroupRuleId');
    const specs = parsePermissions(params);
    if (ids.length === 0 && specs.length === 0)
      throw missingParameter('IpPermissions or SecurityGroupRuleIds');
    const ingress = this.rulesOf(group.groupId, false);
    const doomed: Rule[] = [];
    for (const id of ids) {
      const r = ingress.find((x) => x.securityGroupRuleId === id);
      if (!r) throw ruleIdNotFound(id);
      doomed.push(r);
    }
    for (const s of specs) {
      const r = ingress.find((x) => sameRule(x, s));
      if (!r)
        throw new Ec2Error(
          'InvalidPermission.NotFound',
          `The specified rule does not exist in this security group.`,
        );
      doomed.push(r);
    }
    for (const r of doomed) this.rules.delete(r.securityGroupRuleId);
    return { return: true };
  }

  // --- tags ---------------------------------------------------------------------------------

  private tagged(id: string): Map<string, string> {
    if (id.startsWith('sgr-')) {
      const r = this.rules.get(id);
      if (!r) throw ruleIdNotFound(id);
      return r.tags;
    }
    if (id.startsWith('sg-')) return this.group(id).tags;
    throw new Ec2Error('InvalidID', `The ID '${id}' is not valid`);
  }

  private createTags(params: Params): Result {
    const ids = params.strings('ResourceId');
    if (ids.length === 0) throw missingParameter('ResourceId');
    const tags = tagParams(params, 'Tag');
    if (tags.length === 0) throw missingParameter('Tag');
    validateTags(tags);
    const targets = ids.map((id) => this.tagged(id));
    for (const t of targets) {
      const keys = new Set([...t.keys(), ...tags.map((x) => x.key)]);
      if (keys.size > MAX_TAGS_PER_RESOURCE)
        throw new Ec2Error('TagLimitExceeded', `The maximum number of Tags for a resource has been reached.`);
    }
    for (const t of targets) applyTags(t, tags);
    return { return: true };
  }

  private deleteTags(params: Params): Result {
    const ids = params.strings('ResourceId');
    if (ids.length === 0) throw missingParameter('ResourceId');
    const tags = tagParams(params, 'Tag');
    const targets = ids.map((id) => this.tagged(id));
    for (const t of targets) {
      // No Tag: delete every tag (but aws: ones). Key only: whatever its value. Key and value
      // (even ""): only if the value matches.
      if (tags.length === 0) {
        for (const k of [...t.keys()]) if (!k.startsWith('aws:')) t.delete(k);
        continue;
      }
      for (const { key, value } of tags) if (value === undefined || t.get(key) === value) t.delete(key);
    }
    return { return: true };
  }
}

function validateTags(tags: Tag[]): void {
  for (const { key, value } of tags) {
    if (key.length > MAX_KEY)
      throw invalidParameterValue(`Tag key exceeds the maximum length of ${MAX_KEY} characters`);
    if ((value ?? '').length > MAX_VALUE)
      throw invalidParameterValue(`Tag value exceeds the maximum length of ${MAX_VALUE} characters`);
    if (key.toLowerCase().startsWith('aws:'))
      throw invalidParameterValue(`Tag keys starting with 'aws:' are reserved for internal use`);
  }
  if (tags.length > MAX_TAGS_PER_RESOURCE)
    throw new Ec2Error('TagLimitExceeded', `The maximum number of Tags for a resource has been reached.`);
}

function applyTags(into: Map<string, string>, tags: Tag[]): void {
  for (const { key, value } of tags) into.set(key, value ?? '');
}

/** TagSpecification.N: only `resourceType` may be tagged on create. */
function tagSpecifications(params: Params, resourceType: string): Tag[] {
  const out: Tag[] = [];
  for (const p of params.members('TagSpecification')) {
    const type = params.get(`${p}.ResourceType`);
    if (type !== resourceType)
      throw invalidParameterValue(
        `'${type ?? ''}' is not a valid taggable resource type for this operation.`,
      );
    out.push(...tagParams(params, `${p}.Tag`));
  }
  validateTags(out);
  return out;
}

function tagMatches(tags: Map<string, string>, f: Filter): boolean | undefined {
  if (f.name === 'tag-key') return f.values.some((k) => tags.has(k));
  if (f.name.startsWith('tag:')) {
    const v = tags.get(f.name.slice(4));
    return v !== undefined && f.values.some((w) => wildcard(w, v));
  }
  return undefined;
}

/** EC2 filter values allow * and ? wildcards. */
function wildcard(pattern: string, value: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === value;
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's').test(value);
}

function groupMatches(g: Group, f: Filter): boolean {
  const t = tagMatches(g.tags, f);
  if (t !== undefined) return t;
  const field: Record<string, string> = {
    'group-id': g.groupId,
    'group-name': g.groupName,
    'vpc-id': g.vpcId,
    description: g.description,
  };
  const v = field[f.name];
  if (v === undefined) throw invalidParameterValue(`The filter '${f.name}' is invalid`);
  return f.values.some((w) => wildcard(w, v));
}

function ruleMatches(r: Rule, f: Filter): boolean {
  const t = tagMatches(r.tags, f);
  if (t !== undefined) return t;
  if (f.name === 'group-id') return f.values.includes(r.groupId);
  return f.values.includes(r.securityGroupRuleId);
}

/**
 * MaxResults (min..max) and an opaque NextToken: the index of the next item, base64. EC2 refuses a
 * MaxResults out of range with InvalidParameterValue.
 */
function paginate<T>(
  params: Params,
  list: T[],
  min: number,
  max: number,
): { items: T[]; nextToken?: string } {
  const maxResults = params.int('MaxResults');
  if (maxResults !== undefined && (maxResults < min || maxResults > max))
    throw invalidParameterValue(
      `Value ( ${maxResults} ) for parameter maxResults is invalid. Parameter must be between ${min} and ${max}.`,
    );
  const token = params.get('NextToken');
  let start = 0;
  if (token) {
    const n = Number(Buffer.from(token, 'base64url').toString());
    if (!Number.isInteger(n) || n < 0 || n > list.length)
      throw new Ec2Error('InvalidNextToken', `The token '${token}' is invalid.`);
    start = n;
  }
  if (maxResults === undefined) return { items: list.slice(start) };
  const end = start + maxResults;
  return {
    items: list.slice(start, end),
    nextToken: end < list.length ? Buffer.from(String(end)).toString('base64url') : undefined,
  };
}

function tagSet(tags: Map<string, string>): XmlValue {
  return [...tags].map(([key, value]) => ({ key, value }));
}

function ruleXml(r: Rule): XmlValue {
  return {
    securityGroupRuleId: r.securityGroupRuleId,
    groupId: r.groupId,
    groupOwnerId: OWNER_ID,
    isEgress: r.isEgress,
    ipProtocol: r.ipProtocol,
    fromPort: r.fromPort,
    toPort: r.toPort,
    cidrIpv4: r.cidrIpv4,
    cidrIpv6: r.cidrIpv6,
    description: r.description,
    tagSet: tagSet(r.tags),
  };
}

/** DescribeSecurityGroups' view: rules with the same protocol and ports share one IpPermission. */
function permissionsXml(rules: Rule[]): XmlValue {
  const byKey = new Map<string, Rule[]>();
  for (const r of rules) {
    const k = `${r.ipProtocol}/${r.fromPort}/${r.toPort}`;
    byKey.set(k, [...(byKey.get(k) ?? []), r]);
  }
  return [...byKey.values()].map((rs) => ({
    ipProtocol: rs[0].ipProtocol,
    fromPort: rs[0].ipProtocol === '-1' ? undefined : rs[0].fromPort,
    toPort: rs[0].ipProtocol === '-1' ? undefined : rs[0].toPort,
    groups: [],
    ipRanges: rs.filter((r) => r.cidrIpv4).map((r) => ({ cidrIp: r.cidrIpv4, description: r.description })),
    ipv6Ranges: rs
      .filter((r) => r.cidrIpv6)
      .map((r) => ({ cidrIpv6: r.cidrIpv6, description: r.description })),
    prefixListIds: [],
  }));
}
