/**
 * CIDR validation as WAFv2 applies it to IP-set addresses. Kept apart from
 * the engine's address code on purpose: the emulator must judge what the
 * pipeline sends with its own rules, or a bug shared by both would pass.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The two `IPAddressVersion` values of an IP set. */
export type IpAddressVersion = 'IPV4' | 'IPV6';

/** Why WAF refuses an address, or null when it takes it. */
export type CidrProblem = 'format' | 'version' | 'prefix' | 'host-bits';

/**
 * Checks one IP-set address the way WAFv2 does: CIDR notation only (a bare
 * address is refused), a prefix of 1 to 32 (IPv4) or 1 to 128 (IPv6), `/0`
 * refused, the address family equal to the set's, and no bits set below
 * the prefix (WAF refuses `192.0.2.7/24`).
 *
 * @param cidr - the address as sent in `Addresses`
 * @param version - the set's `IPAddressVersion`
 * @returns null when valid, else what is wrong
 * @example
 * cidrProblem('192.0.2.7/32', 'IPV4'); // null
 * cidrProblem('0.0.0.0/0', 'IPV4'); // 'prefix'
 */
export function cidrProblem(cidr: string, version: IpAddressVersion): CidrProblem | null {
  const slash = cidr.indexOf('/');
  if (slash < 0 || slash !== cidr.lastIndexOf('/')) return 'format';
  const address = cidr.slice(0, slash);
  const prefixText = cidr.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return 'format';
  const prefix = Number(prefixText);
  let family: IpAddressVersion;
  let value: bigint;
  if (isIPv4(address)) {
    family = 'IPV4';
    value = ipv4Value(address);
  } else if (isIPv6(address) && !address.includes('%')) {
    family = 'IPV6';
    value = ipv6Value(address);
  } else {
    return 'format';
  }
  if (family !== version) return 'version';
  const width = family === 'IPV4' ? 32 : 128;
  if (prefix < 1 || prefix > width) return 'prefix';
  const hostMask = (1n << BigInt(width - prefix)) - 1n;
  return (value & hostMask) === 0n ? null : 'host-bits';
}

function ipv4Value(address: string): bigint {
  let value = 0n;
  for (const part of address.split('.')) value = (value << 8n) | BigInt(Number(part));
  return value;
}

/** Value of an IPv6 address that `net.isIPv6` accepted (no zone). */
function ipv6Value(address: string): bigint {
  let text = address;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    // A trailing dotted quad stands for the last two 16-bit words.
    const v4 = Number(ipv4Value(tail));
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  const words = (half: string | undefined): number[] =>
    half === undefined || half === '' ? [] : half.split(':').map((w) => Number.parseInt(w, 16));
  const head = words(halves[0]);
  const rest = words(halves[1]);
  const all =
    halves.length === 2
      ? [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest]
      : head;
  let value = 0n;
  for (const w of all) value = (value << 16n) | BigInt(w);
  return value;
}
