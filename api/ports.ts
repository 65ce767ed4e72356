// "22/tcp" port specs: parsing, formatting and bounds. knockd writes "22:tcp"; both are accepted
// on input and "22/tcp" is always written.

export type Proto = 'tcp' | 'udp';

export interface PortRef {
  port: number;
  proto: Proto;
}

export class PortSpecError extends Error {}

const PORT_RE = /^(\d{1,5})(?:[/:](tcp|udp))?$/i;

/** Parse "22/tcp", "22:udp" or "22" (default protocol `defaultProto`). Throws PortSpecError. */
export function parsePort(spec: string, defaultProto: Proto = 'tcp'): PortRef {
  const m = PORT_RE.exec(spec.trim());
  if (!m) throw new PortSpecError(`invalid port "${spec}": want PORT/PROTO, e.g. 22/tcp`);
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw new PortSpecError(`invalid port "${spec}": must be 1-65535`);
  return { port, proto: (m[2]?.toLowerCase() as Proto | undefined) ?? defaultProto };
}

export function formatPort(p: PortRef): string {
  return `${p.port}/${p.proto}`;
}

/** True when every port of `want` is in `allowed` (both as specs). */
export function portsSubset(want: string[], allowed: string[]): boolean {
  const set = new Set(allowed.map((s) => formatPort(parsePort(s))));
  return want.every((s) => set.has(formatPort(parsePort(s))));
}
