/**
 * ARCHON_TRUSTED_PROXIES: the load balancers whose X-Forwarded-For is believed, as single
 * addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`), so a proxy tier whose addresses
 * change (containers, autoscaling) can be named once. Node's BlockList does the matching.
 */
import { BlockList, isIP } from 'node:net';

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** Why an entry is not an address or CIDR range, or null when it is one. */
export function proxyEntryProblem(entry: string): string | null {
  const [addr = '', bits, extra] = entry.split('/');
  const family = isIP(addr);
  if (family === 0 || extra !== undefined) return `${entry} is not an address or CIDR range`;
  if (bits === undefined) return null;
  const max = family === 4 ? 32 : 128;
  const n = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || n > max) return `${entry}: prefix length must be 0 to ${max}`;
  return null;
}

export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  /** Entries must pass proxyEntryProblem (the config checks them at start). */
  constructor(entries: readonly string[]) {
    this.size = entries.length;
    for (const entry of entries) {
      const [addr = '', bits] = entry.split('/');
      const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
  }

  has(addr: string): boolean {
    if (this.size === 0) return false;
    const family = isIP(addr);
    if (family === 0) return false;
    const v4 = MAPPED_V4.exec(addr)?.[1];
    if (v4 !== undefined && this.list.check(v4, 'ipv4')) return true;
    return this.list.check(addr, family === 6 ? 'ipv6' : 'ipv4');
  }
}
