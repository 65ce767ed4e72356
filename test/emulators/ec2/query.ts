// The EC2 Query protocol's request side: a form-encoded POST body of flat `Name=value` pairs where
// lists are numbered from 1 and structures nest with dots, e.g. (what @aws-sdk/client-ec2 sends)
//   Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-1
//   &IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22
//   &IpPermissions.1.IpRanges.1.CidrIp=192.0.2.1/32&IpPermissions.1.IpRanges.1.Description=x
//   &TagSpecification.1.ResourceType=security-group-rule&TagSpecification.1.Tag.1.Key=k
//   &Filter.1.Name=tag:k&Filter.1.Value.1=v   &ResourceId.1=sgr-1   &SecurityGroupRuleId.1=sgr-1
// Bounds: at most MAX_PARAMS pairs and MAX_LIST members per list (bodies over MAX_BODY are refused
// in server.ts before parsing).

import { invalidParameterValue, missingParameter } from './errors.js';

export const MAX_BODY = 1 << 20;
export const MAX_PARAMS = 20_000;
export const MAX_LIST = 1000;

export class Params {
  private constructor(private readonly map: Map<string, string>) {}

  static parse(body: string): Params {
    const form = new URLSearchParams(body);
    const map = new Map<string, string>();
    for (const [k, v] of form) {
      if (map.size >= MAX_PARAMS) throw invalidParameterValue(`more than ${MAX_PARAMS} parameters`);
      map.set(k, v);
    }
    return new Params(map);
  }

  get(name: string): string | undefined {
    return this.map.get(name);
  }

  require(name: string): string {
    const v = this.map.get(name);
    if (v === undefined || v === '') throw missingParameter(name);
    return v;
  }

  int(name: string): number | undefined {
    const v = this.map.get(name);
    if (v === undefined) return undefined;
    if (!/^-?\d{1,10}$/.test(v)) throw invalidParameterValue(`Value (${v}) for parameter ${name} is invalid`);
    return Number(v);
  }

  /** The members of list `prefix` (`prefix.1`, `prefix.2`, ...) as prefixes, in numeric order. */
  members(prefix: string): string[] {
    const seen = new Set<number>();
    const head = `${prefix}.`;
    for (const key of this.map.keys()) {
      if (!key.startsWith(head)) continue;
      const n = Number(key.slice(head.length).split('.')[0]);
      if (!Number.isInteger(n) || n < 1)
        throw invalidParameterValue(`Invalid list index in parameter ${key}`);
      seen.add(n);
    }
    if (seen.size > MAX_LIST) throw invalidParameterValue(`more than ${MAX_LIST} ${prefix} members`);
    return [...seen].sort((a, b) => a - b).map((n) => `${head}${n}`);
  }

  /** The string values of list `prefix` (e.g. `GroupId.1`, `GroupId.2`). */
  strings(prefix: string): string[] {
    return this.members(prefix).map((p) => this.map.get(p) ?? '');
  }
}

export interface Filter {
  name: string;
  values: string[];
}

export function filters(params: Params): Filter[] {
  return params.members('Filter').map((p) => ({
    name: params.require(`${p}.Name`),
    values: params.strings(`${p}.Value`),
  }));
}

export interface Tag {
  key: string;
  value?: string;
}

export function tags(params: Params, prefix: string): Tag[] {
  return params.members(prefix).map((p) => ({
    key: params.require(`${p}.Key`),
    value: params.get(`${p}.Value`),
  }));
}
