// fwknopd's SOURCE value: a comma list of addresses, CIDRs, address/dotted-mask, or ANY.

import { parseCidr, AddressError } from '../addresses.js';
import { shown } from './errors.js';

/** Both families, for SOURCE ANY. */
export const ANY_SOURCE = ['0.0.0.0/0', '::/0'];

export function parseSources(value: string, fail: (what: string) => never): string[] {
  const out: string[] = [];
  for (const item of value.split(',').map((s) => s.trim())) {
    if (item.toUpperCase() === 'ANY') {
      out.push(...ANY_SOURCE);
      continue;
    }
    const [address = '', mask] = item.split('/');
    const prefix = mask !== undefined && mask.includes('.') ? dottedMaskPrefix(mask) : mask;
    if (prefix === undefined && mask !== undefined)
      fail(`SOURCE "${shown(item, true)}": "${shown(mask, true)}" is not a contiguous netmask`);
    try {
      const c = parseCidr(prefix === undefined ? address : `${address}/${prefix}`);
      out.push(`${c.address}/${c.prefix}`);
    } catch (err) {
      if (err instanceof AddressError) fail(`SOURCE "${shown(item, true)}" is not an address, a CIDR or ANY`);
      throw err;
    }
  }
  return [...new Set(out)];
}

/** "255.255.255.0" → "24"; undefined when the mask is not contiguous or not an IPv4 mask. */
function dottedMaskPrefix(mask: string): string | undefined {
  const parts = mask.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  const bits = parts.map((p) => Number(p).toString(2).padStart(8, '0')).join('');
  return /^1*0*$/.test(bits) ? String(bits.indexOf('0') < 0 ? 32 : bits.indexOf('0')) : undefined;
}
