// Every program knockgate itself runs, with the Debian package that ships it: the one list the
// Dockerfile's runtime stage installs (test/dockerfile.test.ts checks it) and that Commands
// (controller/firewall/command.ts) and the hooks (controller/hooks.ts) enforce at run time — a
// program missing here is refused before it is spawned, so the list cannot fall behind the code.
// What a user's own knockd start_command / fwknop CMD_CYCLE_OPEN runs is theirs to install.

export interface ExternalProgram {
  /** As passed to spawn (a name looked up on PATH, or an absolute path). */
  program: string;
  /** The Debian package that provides it. */
  debianPackage: string;
  /** Essential packages are in every Debian image: the Dockerfile needs not install them. */
  essential?: true;
  why: string;
}

const xtables = (tool: 'iptables' | 'ip6tables', why: string): ExternalProgram[] =>
  ['', '-nft', '-legacy'].flatMap((flavour) =>
    ['', '-save', '-restore'].map((kind) => ({
      program: `${tool}${flavour}${kind}`,
      debianPackage: 'iptables',
      why,
    })),
  );

export const EXTERNAL_PROGRAMS: readonly ExternalProgram[] = [
  {
    program: 'nft',
    debianPackage: 'nftables',
    why: 'nftables backend: nft -f (whole state), nft -i (grants)',
  },
  { program: 'ipset', debianPackage: 'ipset', why: 'ipset backend: ipset restore and the ipset - session' },
  ...xtables('iptables', 'ipset and iptables backends (IPv4 chains), leftovers of either flavour'),
  ...xtables('ip6tables', 'ipset and iptables backends (IPv6 chains), leftovers of either flavour'),
  { program: 'ip', debianPackage: 'iproute2', why: 'doctor: xdp programs and interfaces (ip -d link)' },
  { program: 'tc', debianPackage: 'iproute2', why: 'doctor: bpf classifiers at tc ingress' },
  { program: 'conntrack', debianPackage: 'conntrack', why: 'conntrackFlush: end flows of a revoked grant' },
  {
    program: '/bin/sh',
    debianPackage: 'dash',
    essential: true,
    why: "hooks: knockd start_command/stop_command, fwknop CMD_CYCLE_OPEN/CLOSE (the user's commands)",
  },
];

const KNOWN: ReadonlySet<string> = new Set(EXTERNAL_PROGRAMS.map((p) => p.program));

/** Throws (one line) when `program` is not in EXTERNAL_PROGRAMS. */
export function requireListedProgram(program: string): void {
  if (!KNOWN.has(program))
    throw new Error(
      `${program}: not in EXTERNAL_PROGRAMS (controller/external-programs.ts); refusing to run it`,
    );
}
