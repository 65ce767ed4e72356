// Field checkers shared by validatePolicy, validateGrant and the standalone settings check.
// Each rule is written once here so that the CRD schemas (OpenAPI + CEL) can be compared with it:
// the regular expressions below are the ones the CRDs should carry.

import { parseCidr } from './addresses.js';

export interface FieldError {
  /** Where, as a field path: "spec.grant.ports[1]". */
  path: string;
  message: string;
}

/** DNS-1123 label: what a KnockPolicy may be called (grant names are derived from it). */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS1123_LABEL_MAX = 63;
/** DNS-1123 subdomain: Secret, AccessGrant and node names. */
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const DNS1123_SUBDOMAIN_MAX = 253;
/** Canonical port spec as stored in objects: "22/tcp" (knockd's "22:tcp" is converted on import). */
export const PORT_PROTO = /^([0-9]{1,5})\/(tcp|udp)$/;
/** What AWS issues: sg- and 8 (older) or 17 hex digits. */
export const SECURITY_GROUP_ID = /^sg-([0-9a-f]{8}|[0-9a-f]{17})$/;
/** A Kubernetes label value's length limit, and most entries in a label selector map. */
export const LABEL_VALUE_MAX = 63;
export const LABEL_MAP_MAX_ENTRIES = 64;
export const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
/** RFC 3339 date-time (what Kubernetes' `date-time` format accepts). */
export const RFC3339 =
  /^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$/;
/** A Linux interface name (IFNAMSIZ - 1 characters, no slash or whitespace). */
export const INTERFACE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
export const TCP_FLAGS = ['syn', 'ack', 'fin', 'rst', 'psh', 'urg'] as const;

/** True when `s` holds a control character (a newline in a command, an escape in a name). */
export function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** Collects errors while walking an object; `at(path)` gives a checker for one field. */
export class Checker {
  readonly errors: FieldError[] = [];

  fail(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  isObject(value: unknown, path: string): value is Record<string, unknown> {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return true;
    this.fail(path, 'must be an object');
    return false;
  }

  /** Reports every key of `obj` that is not in `allowed` (typos must not silently disable a rule). */
  knownFields(obj: Record<string, unknown>, path: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key))
        this.fail(join(path, key), `unknown field (allowed: ${allowed.join(', ')})`);
    }
  }

  isString(value: unknown, path: string): value is string {
    if (typeof value === 'string') return true;
    this.fail(path, 'must be a string');
    return false;
  }

  isBoolean(value: unknown, path: string): value is boolean {
    if (typeof value === 'boolean') return true;
    this.fail(path, 'must be true or false');
    return false;
  }

  /** A whole number in [min, max]. */
  integer(value: unknown, path: string, min: number, max: number): value is number {
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      this.fail(path, `must be a whole number from ${min} to ${max}`);
      return false;
    }
    if (value < min || value > max) {
      this.fail(path, `must be from ${min} to ${max}, got ${value}`);
      return false;
    }
    return true;
  }

  /** An array of `min`..`max` entries. */
  list(value: unknown, path: string, min: number, max: number): value is unknown[] {
    if (!Array.isArray(value)) {
      this.fail(path, 'must be a list');
      return false;
    }
    if (value.length < min || value.length > max) {
      this.fail(path, `must hold ${min === max ? min : `${min} to ${max}`} entries, got ${value.length}`);
      return false;
    }
    return true;
  }

  oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): value is T {
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return true;
    this.fail(path, `must be one of ${allowed.join(', ')}`);
    return false;
  }

  matches(value: unknown, path: string, re: RegExp, what: string, maxLength = Infinity): value is string {
    if (!this.isString(value, path)) return false;
    if (value.length > maxLength || !re.test(value)) {
      this.fail(path, `"${value}" is not ${what}`);
      return false;
    }
    return true;
  }

  /** A string of at most `maxLength` characters, without control characters (or spaces, if `noSpaces`). */
  printable(
    value: unknown,
    path: string,
    what: string,
    maxLength: number,
    noSpaces = false,
  ): value is string {
    if (!this.isString(value, path)) return false;
    if (value.length > maxLength || hasControlChars(value) || (noSpaces && /\s/.test(value))) {
      this.fail(path, `is not ${what} (at most ${maxLength} characters)`);
      return false;
    }
    return true;
  }

  dnsLabel(value: unknown, path: string): value is string {
    return this.matches(
      value,
      path,
      DNS1123_LABEL,
      `a DNS-1123 label (lowercase letters, digits and "-", at most ${DNS1123_LABEL_MAX} characters)`,
      DNS1123_LABEL_MAX,
    );
  }

  dnsSubdomain(value: unknown, path: string): value is string {
    return this.matches(
      value,
      path,
      DNS1123_SUBDOMAIN,
      `a DNS-1123 name (lowercase letters, digits, "-" and ".", at most ${DNS1123_SUBDOMAIN_MAX} characters)`,
      DNS1123_SUBDOMAIN_MAX,
    );
  }

  /** "22/tcp" with a port from 1 to 65535. */
  port(value: unknown, path: string, protos: readonly string[] = ['tcp', 'udp']): value is string {
    if (!this.isString(value, path)) return false;
    const m = PORT_PROTO.exec(value);
    const port = m ? Number(m[1]) : 0;
    if (!m || port < 1 || port > 65535 || !protos.includes(m[2]!)) {
      this.fail(path, `"${value}" is not PORT/PROTO with a port from 1 to 65535 and ${protos.join(' or ')}`);
      return false;
    }
    return true;
  }

  /** A list of distinct ports. */
  portList(value: unknown, path: string, min: number, max: number): value is string[] {
    if (!this.list(value, path, min, max)) return false;
    const before = this.errors.length;
    const seen = new Set<string>();
    value.forEach((p, i) => {
      if (!this.port(p, `${path}[${i}]`)) return;
      if (seen.has(p)) this.fail(`${path}[${i}]`, `"${p}" is listed twice`);
      seen.add(p);
    });
    return this.errors.length === before;
  }

  /** "10.0.0.0/8", "fd00::/8": an address with an explicit prefix length. */
  cidr(value: unknown, path: string): value is string {
    if (!this.isString(value, path)) return false;
    if (!value.includes('/')) {
      this.fail(path, `"${value}" needs a prefix length, e.g. ${value}/32`);
      return false;
    }
    try {
      parseCidr(value);
      return true;
    } catch (err) {
      this.fail(path, (err as Error).message);
      return false;
    }
  }

  cidrList(value: unknown, path: string, min: number, max: number): value is string[] {
    if (!this.list(value, path, min, max)) return false;
    const before = this.errors.length;
    value.forEach((c, i) => this.cidr(c, `${path}[${i}]`));
    return this.errors.length === before;
  }

  /** A map of label-like strings (nodeSelector): bounded like Kubernetes labels. */
  stringMap(value: unknown, path: string): value is Record<string, string> {
    if (!this.isObject(value, path)) return false;
    const before = this.errors.length;
    const entries = Object.entries(value);
    if (entries.length > LABEL_MAP_MAX_ENTRIES)
      this.fail(path, `must hold at most ${LABEL_MAP_MAX_ENTRIES} entries, got ${entries.length}`);
    for (const [k, v] of entries) {
      if (k.length === 0 || k.length > DNS1123_SUBDOMAIN_MAX) this.fail(join(path, k), 'invalid key');
      if (this.isString(v, join(path, k)) && v.length > LABEL_VALUE_MAX)
        this.fail(join(path, k), `must be at most ${LABEL_VALUE_MAX} characters (a label value)`);
    }
    return this.errors.length === before;
  }

  rfc3339(value: unknown, path: string): value is string {
    if (!this.isString(value, path)) return false;
    if (!RFC3339.test(value) || Number.isNaN(Date.parse(value))) {
      this.fail(path, `"${value}" is not an RFC 3339 time such as 2026-01-01T00:00:00Z`);
      return false;
    }
    return true;
  }
}

/** "spec" + "grant" → "spec.grant"; keys that are not identifiers are quoted. */
export function join(path: string, key: string): string {
  const part = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : JSON.stringify(key);
  return path ? `${path}.${part}` : part;
}
