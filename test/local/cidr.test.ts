import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cidrProblem } from '../../local/cidr';

function ipv4(value: number): string {
  return [24, 16, 8, 0].map((s) => (value >>> s) & 255).join('.');
}

function ipv6(value: bigint): string {
  const words: string[] = [];
  for (let i = 7; i >= 0; i--) words.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
  return words.join(':');
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u128 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });

describe('cidrProblem', () => {
  it('accepts every masked IPv4 network from /1 to /32', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 1, max: 32 }), (v, p) => {
        const network = p === 32 ? v : (v & ~(0xffffffff >>> p)) >>> 0;
        expect(cidrProblem(`${ipv4(network)}/${p}`, 'IPV4')).toBeNull();
      }),
    );
  });

  it('refuses an IPv4 CIDR with a bit set below the prefix', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 1, max: 31 }), (v, p) => {
        const host = 0xffffffff >>> p;
        fc.pre((v & host) !== 0);
        expect(cidrProblem(`${ipv4(v)}/${p}`, 'IPV4')).toBe('host-bits');
      }),
    );
  });

  it('accepts masked IPv6 networks and refuses host bits, from /1 to /128', () => {
    fc.assert(
      fc.property(u128, fc.integer({ min: 1, max: 128 }), (v, p) => {
        const host = (1n << BigInt(128 - p)) - 1n;
        const network = v & ~host;
        expect(cidrProblem(`${ipv6(network)}/${p}`, 'IPV6')).toBeNull();
        if ((v & host) !== 0n) expect(cidrProblem(`${ipv6(v)}/${p}`, 'IPV6')).toBe('host-bits');
      }),
    );
  });

  it('reads compressed and dotted-quad IPv6 forms', () => {
    expect(cidrProblem('2001:db8::/32', 'IPV6')).toBeNull();
    expect(cidrProblem('2001:db8::1/127', 'IPV6')).toBe('host-bits');
    expect(cidrProblem('::/1', 'IPV6')).toBeNull();
    expect(cidrProblem('::1/128', 'IPV6')).toBeNull();
    expect(cidrProblem('::ffff:192.0.2.0/120', 'IPV6')).toBeNull();
    expect(cidrProblem('::ffff:192.0.2.1/120', 'IPV6')).toBe('host-bits');
    expect(cidrProblem('2001:DB8:0:0:0:0:0:0/32', 'IPV6')).toBeNull();
  });

  it('refuses /0 and prefixes past the address width', () => {
    expect(cidrProblem('0.0.0.0/0', 'IPV4')).toBe('prefix');
    expect(cidrProblem('::/0', 'IPV6')).toBe('prefix');
    expect(cidrProblem('192.0.2.7/33', 'IPV4')).toBe('prefix');
    expect(cidrProblem('2001:db8::/129', 'IPV6')).toBe('prefix');
  });

  it('refuses bare addresses, malformed text and the other family', () => {
    for (const bad of [
      '192.0.2.7',
      '192.0.2.7/',
      '192.0.2.7/032',
      '192.0.2.7/3a',
      '192.0.2/24',
      '01.2.3.4/32',
      '192.0.2.7/32/32',
      ' 192.0.2.7/32',
      'fe80::1%eth0/128',
      '',
    ]) {
      expect(cidrProblem(bad, 'IPV4'), bad).toBe('format');
    }
    expect(cidrProblem('2001:db8::/32', 'IPV4')).toBe('version');
    expect(cidrProblem('192.0.2.0/24', 'IPV6')).toBe('version');
  });
});
