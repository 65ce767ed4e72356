// What a knockd command does to the firewall, when it is a firewall command knockgate can read:
//   iptables/ip6tables -A|-I CHAIN ... -p tcp --dport 22 -j ACCEPT   (also --dports 22,80 with -m multiport)
//   nft add|insert element/rule ... tcp dport 22 accept               (also "tcp dport { 22, 80 }")
//   ufw allow from %IP% to any port 22 proto tcp
// opens those ports; iptables -D, nft delete and ufw delete close them. Anything else (a script,
// ssh to another host) does something knockgate cannot see: undefined / false.
// Port ranges are not expanded: a range is not recognisable as a small grant.

import { formatPort, parsePort, PortSpecError, type Proto } from '../ports.js';

/** The ports a command opens, or undefined when it is not a command that adds an accept rule. */
export function portsOpenedBy(command: string): string[] | undefined {
  if (closesAccess(command)) return undefined;
  const found = iptablesPorts(command) ?? nftPorts(command) ?? ufwPorts(command);
  return found && found.length > 0 ? [...new Set(found)] : undefined;
}

/** True for a command that removes an accept rule (knockd's closing doors and stop commands). */
export function closesAccess(command: string): boolean {
  const words = command.trim().split(/\s+/);
  if (isIptables(command)) return words.some((w) => w === '-D' || w === '--delete');
  if (/\bnft\b/.test(command)) return /\bnft\b.*\b(delete|destroy)\s+(element|rule)\b/.test(command);
  if (/\bufw\b/.test(command)) return /\bufw\s+delete\b/.test(command);
  return false;
}

/**
 * The command that undoes `open` (iptables -A/-I → -D, nft add/insert element → delete element,
 * ufw allow → ufw delete allow), in the normal form `sameCommand` compares; undefined when there is
 * none knockgate can write.
 */
export function undoOf(open: string): string | undefined {
  const words = open.trim().split(/\s+/);
  if (isIptables(open)) {
    const at = words.findIndex((w) => ['-A', '--append', '-I', '--insert'].includes(w));
    if (at < 0) return undefined;
    const insert = words[at] === '-I' || words[at] === '--insert';
    const rest = words.slice(at + 2);
    // "-I INPUT 1 ..." carries a position that "-D" does not take.
    if (insert && /^\d+$/.test(rest[0] ?? '')) rest.shift();
    return [...words.slice(0, at), '-D', words[at + 1] ?? '', ...rest].join(' ');
  }
  if (/\bnft\b/.test(open)) {
    const m = /^(.*\bnft\s+)(?:add|insert)(\s+element\b.*)$/.exec(words.join(' '));
    return m ? `${m[1]}delete${m[2]}` : undefined;
  }
  const m = /^(.*\bufw\s+)(allow\b.*)$/.exec(words.join(' '));
  return m ? `${m[1]}delete ${m[2]}` : undefined;
}

/** Two commands equal up to spacing and iptables' long option names. */
export function sameCommand(a: string, b: string): boolean {
  const norm = (c: string) =>
    c
      .trim()
      .split(/\s+/)
      .map((w) => (w === '--delete' ? '-D' : w))
      .join(' ');
  return norm(a) === norm(b);
}

function isIptables(cmd: string): boolean {
  return /\biptables\b|\bip6tables\b/.test(cmd);
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
  if (!isIptables(cmd) || !/-j\s+ACCEPT\b/.test(cmd)) return undefined;
  if (!/(?:^|\s)(-A|--append|-I|--insert)\s/.test(cmd)) return undefined;
  const proto = (/(?:^|\s)(?:-p|--protocol)\s+(tcp|udp)\b/i.exec(cmd)?.[1]?.toLowerCase() ?? 'tcp') as Proto;
  const ports = /(?:^|\s)--dports?\s+([0-9,]+)(?=\s|$)/.exec(cmd)?.[1];
  return ports ? toSpecs(ports, proto) : undefined;
}

function nftPorts(cmd: string): string[] | undefined {
  if (!/\bnft\s+(add|insert)\s+rule\b/.test(cmd) || !/\baccept\b/.test(cmd)) return undefined;
  const m = /\b(tcp|udp)\s+dport\s+(?:\{\s*([0-9,\s]+)\}|([0-9]+)\b)/.exec(cmd);
  if (!m) return undefined;
  return toSpecs((m[2] ?? m[3]!).replace(/\s+/g, ''), m[1] as Proto);
}

function ufwPorts(cmd: string): string[] | undefined {
  if (!/\bufw\s+allow\b/.test(cmd)) return undefined;
  const m = /\bport\s+([0-9,]+)(?:\s+proto\s+(tcp|udp))?/.exec(cmd);
  return m ? toSpecs(m[1]!, (m[2] ?? 'tcp') as Proto) : undefined;
}
