// What a knockd start_command opens, when it is a firewall command knockgate can read:
//   iptables/ip6tables ... -p tcp --dport 22 -j ACCEPT        (also --dports 22,80 with -m multiport)
//   nft add element/rule ... tcp dport 22 accept               (also "tcp dport { 22, 80 }")
//   ufw allow from %IP% to any port 22 proto tcp
// Anything else (a script, ssh to another host) opens something knockgate cannot see: undefined.
// Port ranges are not expanded: a range is not recognisable as a small grant.

import { formatPort, parsePort, PortSpecError, type Proto } from '../ports.js';

export function portsOpenedBy(command: string): string[] | undefined {
  const found = iptablesPorts(command) ?? nftPorts(command) ?? ufwPorts(command);
  return found && found.length > 0 ? [...new Set(found)] : undefined;
}

function toSpecs(list: string, proto: Proto): string[] | undefined {
  const specs: string[] = [];
  for (const item of list.split(',').map((s) => s.trim())) {
    try {
      specs.push(formatPort(parsePort(`${item}/${proto}`)));
    } catch (err) {
      if (err instanceof PortSpecError) return undefined;
      throw err;
    }
  }
  return specs;
}

function iptablesPorts(cmd: string): string[] | undefined {
  if (!/\biptables\b|\bip6tables\b/.test(cmd) || !/-j\s+ACCEPT\b/.test(cmd)) return undefined;
  const proto = (/(?:^|\s)(?:-p|--protocol)\s+(tcp|udp)\b/i.exec(cmd)?.[1]?.toLowerCase() ?? 'tcp') as Proto;
  const ports = /(?:^|\s)--dports?\s+([0-9,]+)(?=\s|$)/.exec(cmd)?.[1];
  return ports ? toSpecs(ports, proto) : undefined;
}

function nftPorts(cmd: string): string[] | undefined {
  if (!/\bnft\b/.test(cmd) || !/\baccept\b/.test(cmd)) return undefined;
  const m = /\b(tcp|udp)\s+dport\s+(?:\{\s*([0-9,\s]+)\}|([0-9]+)\b)/.exec(cmd);
  if (!m) return undefined;
  return toSpecs((m[2] ?? m[3]!).replace(/\s+/g, ''), m[1] as Proto);
}

function ufwPorts(cmd: string): string[] | undefined {
  if (!/\bufw\s+allow\b/.test(cmd)) return undefined;
  const m = /\bport\s+([0-9,]+)(?:\s+proto\s+(tcp|udp))?/.exec(cmd);
  return m ? toSpecs(m[1]!, (m[2] ?? 'tcp') as Proto) : undefined;
}
