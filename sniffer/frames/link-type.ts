// Link-layer types: what `cap`'s Cap.open() returns, mapped to the numbers libpcap uses.
//
// cap 0.2.1 (src/binding.cc) names DLT_EN10MB "ETHERNET", DLT_LINUX_SLL "LINKTYPE_LINUX_SLL", DLT_RAW
// "RAW", DLT_NULL "NULL", and anything else "Unknown linktype N" - which is how LINKTYPE_LINUX_SLL2
// (276) arrives. On Linux the `any` device gives SLL through cap (it never asks for SLL2), but SLL2
// is decoded as well so that saved captures (tcpdump -i any writes SLL2) can be replayed.

export enum LinkType {
  Ethernet = 1,
  Raw = 101,
  LinuxSll = 113,
  LinuxSll2 = 276,
}

const BY_CAP_NAME: Record<string, LinkType> = {
  ETHERNET: LinkType.Ethernet,
  LINKTYPE_LINUX_SLL: LinkType.LinuxSll,
  RAW: LinkType.Raw,
};

/** The LinkType for what Cap.open() returned, or undefined when knockgate cannot decode it. */
export function linkTypeFromCap(name: string): LinkType | undefined {
  const known = BY_CAP_NAME[name];
  if (known !== undefined) return known;
  const m = /^Unknown linktype (\d+)$/.exec(name);
  if (m && Number(m[1]) === LinkType.LinuxSll2) return LinkType.LinuxSll2;
  return undefined;
}
