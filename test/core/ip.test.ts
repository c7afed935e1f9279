import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalIp,
  canonicalIpBytes,
  cidrBounds,
  cidrContains,
  cidrsOverlap,
  compareKeys,
  formatIpv4,
  IpError,
  ipCacheEntries,
  ipVersion,
  ipv4ToNumber,
  keyToCidr,
  maskKey,
  parseCidr,
  resetIpCaches,
} from '../../lambda/core/ip';

/** Calls canonicalIpBytes on `text` embedded between other bytes, so bounds matter. */
function fromBytes(text: string): string | null {
  const buf = Buffer.concat([
    Buffer.from('9.9.9.9 '),
    Buffer.from(text, 'latin1'),
    Buffer.from(':1 '),
  ]);
  return canonicalIpBytes(buf, 8, 8 + Buffer.byteLength(text, 'latin1'));
}

/** RFC 5952 text of a non-mapped IPv6 address, from an independent serializer (WHATWG URL). */
function urlCanonical(ip: string): string {
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** Whether an address is IPv4-mapped (`::ffff:0:0/96`), which canonicalIp turns into IPv4. */
function isMappedText(ip: string): boolean {
  return /^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(urlCanonical(ip));
}

/** 128-bit value of an IPv6 address in plain hex-group form, parsed here independently of ip.ts. */
function v6Value(text: string): bigint {
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((v, g) => (v << 16n) | BigInt(`0x${g}`), 0n);
}

const ADDRESS_CHARS = fc.string({
  unit: fc.constantFrom(...'0123456789abcdefABCDEF.:%[]/ x-'.split('')),
  maxLength: 48,
});

describe('canonicalIp', () => {
  it('returns an IPv4 dotted quad unchanged when it is valid', () => {
    for (const ip of ['0.0.0.0', '1.2.3.4', '192.0.2.255', '255.255.255.255']) {
      expect(canonicalIp(ip)).toBe(ip);
    }
  });

  it('writes IPv6 in lower case without leading zeros when the input has them', () => {
    expect(canonicalIp('2001:0DB8:00AB:000C:0000:0000:0000:0001')).toBe('2001:db8:ab:c::1');
  });

  it('compresses the longest run of zero groups when there are several runs', () => {
    expect(canonicalIp('2001:db8:0:0:1:0:0:0')).toBe('2001:db8:0:0:1::');
    expect(canonicalIp('0:0:0:0:0:0:0:0')).toBe('::');
    expect(canonicalIp('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(canonicalIp('1:0:0:0:0:0:0:0')).toBe('1::');
  });

  it('compresses the first run when two runs tie', () => {
    expect(canonicalIp('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalIp('2001:0:0:1:0:0:1:1')).toBe('2001::1:0:0:1:1');
  });

  it('does not compress a single zero group', () => {
    expect(canonicalIp('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(canonicalIp('2001:db8::1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(canonicalIp('1:2:3:4:5:6:7::')).toBe('1:2:3:4:5:6:7:0');
  });

  it('reads an embedded IPv4 tail and writes it as hex groups when the address is not mapped', () => {
    expect(canonicalIp('64:ff9b::1.2.3.4')).toBe('64:ff9b::102:304');
    expect(canonicalIp('::1.2.3.4')).toBe('::102:304');
    expect(canonicalIp('1:2:3:4:5:6:1.2.3.4')).toBe('1:2:3:4:5:6:102:304');
  });

  it('returns the IPv4 address when the address is IPv4-mapped', () => {
    expect(canonicalIp('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(canonicalIp('::FFFF:0102:0304')).toBe('1.2.3.4');
    expect(canonicalIp('0:0:0:0:0:ffff:c000:0201')).toBe('192.0.2.1');
  });

  it('returns null when the text is not a plain address', () => {
    for (const bad of [
      '010.1.1.1',
      '1.2.3.256',
      '1.2.3',
      '1.2.3.4.5',
      '1..2.3',
      '+1.2.3.4',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '0x1.2.3.4',
      'x.x.x.x',
      '-',
      '',
      'example.com',
      'fe80::1%eth0',
      '[::1]',
      '[2001:db8::1]:443',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '1::2::3',
      '1:2:3:4::5:6:7:8',
      '::1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:7:8::',
      ':::',
      '1:',
      ':1',
      '12345::',
      '1.2.3.4/32',
      '::1/128',
      '::ffff:1.2.3.256',
      '1:2:3:4:5:6:7:1.2.3.4',
      '::1.2.3',
      'g::1',
    ]) {
      expect(canonicalIp(bad), bad).toBeNull();
    }
  });

  it('accepts exactly what node:net accepts when the text has no zone id', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.ipV6(), ADDRESS_CHARS), (text) => {
        fc.pre(!text.includes('%'));
        expect(canonicalIp(text) !== null).toBe(isIP(text) !== 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with the WHATWG URL serializer when the IPv6 address is not mapped', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        fc.pre(!isMappedText(ip));
        expect(canonicalIp(ip)).toBe(urlCanonical(ip));
      }),
      { numRuns: 2000 },
    );
  });

  it('returns its own output unchanged when applied twice', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (ip) => {
        const once = canonicalIp(ip);
        expect(once).not.toBeNull();
        expect(canonicalIp(once as string)).toBe(once);
      }),
    );
  });
});

describe('canonicalIpBytes', () => {
  it('returns the same as canonicalIp for fixed cases when the field sits inside a line', () => {
    for (const text of [
      '1.2.3.4',
      '010.1.1.1',
      '2001:DB8:0:0:1:0:0:1',
      '::ffff:1.2.3.4',
      '-',
      '2001',
      '300.1.1.1',
    ]) {
      expect(fromBytes(text), text).toBe(canonicalIp(text));
    }
  });

  it('agrees with canonicalIp for generated addresses and random text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.ipV6(), ADDRESS_CHARS), (text) => {
        expect(fromBytes(text)).toBe(canonicalIp(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('returns correct addresses when more distinct clients arrive than its cache holds', () => {
    for (let round = 0; round < 2; round++) {
      for (let v = 0; v < 70_000; v++) {
        const ip = formatIpv4(0x0a000000 + v * 7 + round);
        expect(fromBytes(ip)).toBe(ip);
        expect(maskKey(ip, 24, 64)).toBe(`${ip.slice(0, ip.lastIndexOf('.'))}.0/24`);
      }
    }
    expect(fromBytes('2001:DB8::1')).toBe('2001:db8::1');
    expect(fromBytes('2001:DB8::1:zz')).toBeNull();
    expect(fromBytes('2001:DB8::1:zz')).toBeNull();
  });

  it('returns null when the bytes are not ASCII', () => {
    expect(
      canonicalIpBytes(Buffer.from('1.2.3.\u00e9'), 0, Buffer.byteLength('1.2.3.\u00e9')),
    ).toBeNull();
    expect(canonicalIpBytes(Buffer.from('::\u00e9'), 0, Buffer.byteLength('::\u00e9'))).toBeNull();
  });
});

describe('maskKey', () => {
  it('returns the input itself when the prefix is /32 or /128', () => {
    expect(maskKey('192.0.2.7', 32, 64)).toBe('192.0.2.7');
    expect(maskKey('2001:db8::7', 32, 128)).toBe('2001:db8::7');
  });

  it('returns the canonical masked CIDR when the prefix is shorter', () => {
    expect(maskKey('192.0.2.77', 24, 64)).toBe('192.0.2.0/24');
    expect(maskKey('192.0.2.77', 16, 64)).toBe('192.0.0.0/16');
    expect(maskKey('255.255.255.255', 1, 64)).toBe('128.0.0.0/1');
    expect(maskKey('2001:db8:1:2:3:4:5:6', 32, 64)).toBe('2001:db8:1:2::/64');
    expect(maskKey('2001:db8:1:2::9', 32, 48)).toBe('2001:db8:1::/48');
    expect(maskKey('2001:db8:ffff::1', 32, 36)).toBe('2001:db8:f000::/36');
    expect(maskKey('ffff::1', 32, 1)).toBe('8000::/1');
  });

  it('clears exactly the host bits when checked against 128-bit arithmetic', () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.integer({ min: 1, max: 127 }), (raw, p6) => {
        const ip = canonicalIp(raw) as string;
        fc.pre(ipVersion(ip) === 6);
        const [addr = '', len] = maskKey(ip, 32, p6).split('/');
        const hostBits = (1n << BigInt(128 - p6)) - 1n;
        expect(Number(len)).toBe(p6);
        expect(v6Value(addr)).toBe(v6Value(ip) & ~hostBits);
      }),
    );
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 1, max: 31 }), (ip, p4) => {
        const [addr = ''] = maskKey(ip, p4, 64).split('/');
        const hostBits = 2 ** (32 - p4) - 1;
        expect(ipv4ToNumber(addr)).toBe(ipv4ToNumber(ip) - (ipv4ToNumber(ip) % (hostBits + 1)));
      }),
    );
  });

  it('throws IpError when the input is not a canonical address', () => {
    expect(() => maskKey('10.0.0.256', 24, 64)).toThrow(IpError);
  });

  it('returns a canonical CIDR that contains the address for any prefix', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.ipV4(), fc.ipV6()),
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 1, max: 128 }),
        (raw, p4, p6) => {
          const ip = canonicalIp(raw) as string;
          const key = maskKey(ip, p4, p6);
          expect(cidrContains(key, ip)).toBe(true);
          expect(parseCidr(key)?.cidr).toBe(keyToCidr(key));
        },
      ),
    );
  });
});

describe('parseCidr', () => {
  it('returns /32 or /128 when the text is a bare address', () => {
    expect(parseCidr('192.0.2.7')).toEqual({ cidr: '192.0.2.7/32', version: 4, prefix: 32 });
    expect(parseCidr('2001:DB8::7')).toEqual({ cidr: '2001:db8::7/128', version: 6, prefix: 128 });
  });

  it('clears host bits and writes the address canonically when the text is a CIDR', () => {
    expect(parseCidr('192.0.2.77/24')).toEqual({ cidr: '192.0.2.0/24', version: 4, prefix: 24 });
    expect(parseCidr('2001:0DB8:0:0:1::/33')).toEqual({
      cidr: '2001:db8::/33',
      version: 6,
      prefix: 33,
    });
    expect(parseCidr('0.0.0.0/0')).toEqual({ cidr: '0.0.0.0/0', version: 4, prefix: 0 });
    expect(parseCidr('::ffff:10.1.2.3/104')).toEqual({ cidr: '10.0.0.0/8', version: 4, prefix: 8 });
  });

  it('returns null when the address or the length is invalid', () => {
    for (const bad of [
      '1.2.3.4/33',
      '1.2.3.4/',
      '/24',
      '1.2.3.4/08',
      '1.2.3.4/-1',
      '1.2.3.4/24/1',
      '1.2.3.4/ 24',
      '::/129',
      '010.0.0.0/8',
      'fe80::%eth0/64',
      'example.com/24',
    ]) {
      expect(parseCidr(bad), bad).toBeNull();
    }
  });
});

describe('compareKeys', () => {
  it('sorts IPv4 before IPv6, then by value, then by prefix length', () => {
    const sorted = [
      '9.9.9.9',
      '10.0.0.0/8',
      '10.0.0.0/24',
      '10.0.0.0',
      '10.0.0.1',
      '192.0.2.0/24',
      '255.255.255.255',
      '::',
      '::1',
      '2001:db8::/32',
      '2001:db8::/64',
      '2001:db8::1',
      'fe80::1',
    ];
    const shuffled = [...sorted].reverse();
    shuffled.push(shuffled.shift() as string);
    expect(shuffled.sort(compareKeys)).toEqual(sorted);
  });

  it('orders IPv4 addresses like their numeric values', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), (a, b) => {
        expect(Math.sign(compareKeys(a, b))).toBe(Math.sign(ipv4ToNumber(a) - ipv4ToNumber(b)));
      }),
    );
  });

  it('orders IPv6 addresses like their 128-bit values', () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.ipV6(), (ra, rb) => {
        const a = canonicalIp(ra) as string;
        const b = canonicalIp(rb) as string;
        fc.pre(ipVersion(a) === 6 && ipVersion(b) === 6);
        const x = cidrBounds(a)?.start as bigint;
        const y = cidrBounds(b)?.start as bigint;
        expect(Math.sign(compareKeys(a, b))).toBe(x < y ? -1 : x > y ? 1 : 0);
      }),
    );
  });

  it('sorts text that is not a key last when mixed with keys', () => {
    expect(['zzz', '::1', '1.1.1.1'].sort(compareKeys)).toEqual(['1.1.1.1', '::1', 'zzz']);
  });
});

describe('CIDR helpers', () => {
  it('returns containment and overlap when ranges nest, touch or differ in version', () => {
    expect(cidrContains('10.0.0.0/8', '10.1.0.0/16')).toBe(true);
    expect(cidrContains('10.1.0.0/16', '10.0.0.0/8')).toBe(false);
    expect(cidrContains('10.0.0.0/8', '10.255.255.255')).toBe(true);
    expect(cidrContains('10.0.0.0/8', '11.0.0.0')).toBe(false);
    expect(cidrContains('2001:db8::/32', '2001:db8:ffff::/48')).toBe(true);
    expect(cidrContains('0.0.0.0/0', '::1')).toBe(false);
    expect(cidrsOverlap('10.1.0.0/16', '10.0.0.0/8')).toBe(true);
    expect(cidrsOverlap('10.0.0.0/8', '11.0.0.0/8')).toBe(false);
    expect(cidrsOverlap('fc00::/7', 'fd00::1')).toBe(true);
    expect(cidrsOverlap('bad', '10.0.0.0/8')).toBe(false);
  });

  it('returns the bounds of a CIDR when asked for its first and last address', () => {
    expect(cidrBounds('10.0.0.0/8')).toEqual({
      version: 4,
      prefix: 8,
      start: 0x0a000000,
      end: 0x0affffff,
    });
    expect(cidrBounds('0.0.0.0/0')).toEqual({ version: 4, prefix: 0, start: 0, end: 0xffffffff });
    expect(cidrBounds('fe80::/10')).toEqual({
      version: 6,
      prefix: 10,
      start: 0xfe80n << 112n,
      end: (0xfebfn << 112n) | ((1n << 112n) - 1n),
    });
  });

  it('writes bare keys as /32 or /128 and keeps CIDRs when converting keys', () => {
    expect(keyToCidr('192.0.2.7')).toBe('192.0.2.7/32');
    expect(keyToCidr('2001:db8::7')).toBe('2001:db8::7/128');
    expect(keyToCidr('192.0.2.0/24')).toBe('192.0.2.0/24');
    expect(ipVersion('192.0.2.0/24')).toBe(4);
    expect(ipVersion('2001:db8::/32')).toBe(6);
  });
});

describe('resetIpCaches', () => {
  it('empties the CloudFront parser memos too, so a timed run starts cold', async () => {
    const { readClient } = await import('../../lambda/core/formats/cloudfront');
    const { blankRequest } = await import('../../lambda/core/types');
    // The parsers' address reader, asked for text as every caller but the engine asks.
    const clientIp = (b: Buffer, start: number, end: number) => {
      const out = blankRequest();
      return readClient(b, start, end, out, true) ? out.ip : null;
    };
    const buf = Buffer.from('203.0.113.9');
    resetIpCaches();
    expect(clientIp(buf, 0, buf.length)).toBe('203.0.113.9');
    // The parser's own memo (a strict dotted quad is its own canonical text).
    expect(ipCacheEntries()).toBe(1);
    resetIpCaches();
    expect(ipCacheEntries()).toBe(0);
    expect(clientIp(buf, 0, buf.length)).toBe('203.0.113.9');
  });

  it('empties every address cache and leaves results unchanged', () => {
    const buf = Buffer.from('198.51.100.7 2001:DB8::1');
    const before = [canonicalIpBytes(buf, 0, 12), canonicalIpBytes(buf, 13, 24)];
    const masked = maskKey('198.51.100.7', 24, 64);
    expect(ipCacheEntries()).toBeGreaterThanOrEqual(3);
    resetIpCaches();
    expect(ipCacheEntries()).toBe(0);
    expect([canonicalIpBytes(buf, 0, 12), canonicalIpBytes(buf, 13, 24)]).toEqual(before);
    expect(maskKey('198.51.100.7', 24, 64)).toBe(masked);
  });
});
