// Addresses as text, made only for packets that reach a validator. IPv4 is dotted-quad; IPv6 is the
// RFC 5952 canonical form (lowercase hex, no leading zeros, the longest run of two or more zero groups
// as "::", the first such run on a tie), so one address always gives one string - the knock matcher
// keys its per-source state on it. IPv4-mapped addresses are written in hex like any other
// (::ffff:a00:1), which node:net and the CIDR helpers in api/addresses.ts read alike.

export function formatIpv4(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

export function formatIpv6(buf: Buffer, offset: number): string {
  // Find the longest run of zero groups (length >= 2).
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (buf[offset + 2 * i] === 0 && buf[offset + 2 * i + 1] === 0) {
      let j = i;
      while (j < 8 && buf[offset + 2 * j] === 0 && buf[offset + 2 * j + 1] === 0) j++;
      if (j - i > bestLength && j - i >= 2) {
        bestStart = i;
        bestLength = j - i;
      }
      i = j;
    } else {
      i++;
    }
  }
  let text = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += '::';
      i += bestLength - 1;
      continue;
    }
    if (text !== '' && !text.endsWith(':')) text += ':';
    text += ((buf[offset + 2 * i]! << 8) | buf[offset + 2 * i + 1]!).toString(16);
  }
  return text;
}
