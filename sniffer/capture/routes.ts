// Which interfaces carry the default route, read from the kernel's routing tables in /proc:
//
// /proc/net/route (IPv4), tab-separated, one header line, addresses in host-order hex:
//   Iface  Destination  Gateway  Flags  RefCnt  Use  Metric  Mask  MTU  Window  IRTT
//   eth0   00000000     010200C0 0003   0       0    100     00000000 ...
// /proc/net/ipv6_route (IPv6), space-separated, no header:
//   dest(32 hex) dest_prefix(hex) src src_prefix next_hop metric refcnt use flags iface
//
// A default route has destination 0 and prefix (mask) 0, and is up (RTF_UP). IPv6's "unreachable"
// default on lo (RTF_REJECT) is not one. Per family, the routes with the lowest metric win; the
// result is the union, IPv4's first.

import { readFileSync } from 'node:fs';

const RTF_UP = 0x0001;
const RTF_REJECT = 0x0200;

interface DefaultRoute {
  iface: string;
  metric: number;
}

function lowestMetric(routes: DefaultRoute[]): string[] {
  const best = Math.min(...routes.map((r) => r.metric));
  return [...new Set(routes.filter((r) => r.metric === best).map((r) => r.iface))];
}

export function parseIpv4Routes(text: string): string[] {
  const routes: DefaultRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const flags = parseInt(f[3]!, 16);
    if (f[1] === '00000000' && f[7] === '00000000' && flags & RTF_UP && !(flags & RTF_REJECT)) {
      routes.push({ iface: f[0]!, metric: Number(f[6]) });
    }
  }
  return routes.length ? lowestMetric(routes) : [];
}

export function parseIpv6Routes(text: string): string[] {
  const routes: DefaultRoute[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const flags = parseInt(f[8]!, 16);
    if (/^0{32}$/.test(f[0]!) && f[1] === '00' && flags & RTF_UP && !(flags & RTF_REJECT) && f[9] !== 'lo') {
      routes.push({ iface: f[9]!, metric: parseInt(f[5]!, 16) });
    }
  }
  return routes.length ? lowestMetric(routes) : [];
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // no IPv6 (or no /proc): no default route of that family
  }
}

/** The interfaces of the default routes (IPv4 first, then IPv6), without duplicates. */
export function defaultRouteInterfaces(): string[] {
  const v4 = parseIpv4Routes(readOrEmpty('/proc/net/route'));
  const v6 = parseIpv6Routes(readOrEmpty('/proc/net/ipv6_route'));
  return [...new Set([...v4, ...v6])];
}
