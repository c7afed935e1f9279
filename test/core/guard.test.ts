import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import snapshot from '../../lambda/core/data/cloudfront-origin-facing.json';
import {
  BUILTIN_GUARDED,
  CLOUDFRONT_ORIGIN_FACING,
  Guard,
  GuardError,
  guardFor,
  loadCloudFrontSnapshot,
  parseIpRangesJson,
} from '../../lambda/core/guard';
import { cidrContains, cidrsOverlap, formatIpv4 } from '../../lambda/core/ip';

function plainGuard(allowlist: string[] = []): Guard {
  return new Guard({ allowlist, cloudfrontRanges: [] });
}

/** Each built-in range with addresses inside it and addresses just outside it. */
const BUILTIN_CASES: { cidr: string; label: string; inside: string[]; outside: string[] }[] = [
  {
    cidr: '0.0.0.0/8',
    label: 'this network',
    inside: ['0.0.0.0', '0.255.255.255'],
    outside: ['1.0.0.0'],
  },
  {
    cidr: '10.0.0.0/8',
    label: 'private',
    inside: ['10.0.0.0', '10.255.255.255'],
    outside: ['9.255.255.255', '11.0.0.0'],
  },
  {
    cidr: '100.64.0.0/10',
    label: 'shared address space',
    inside: ['100.64.0.0', '100.127.255.255'],
    outside: ['100.63.255.255', '100.128.0.0'],
  },
  {
    cidr: '127.0.0.0/8',
    label: 'loopback',
    inside: ['127.0.0.0', '127.255.255.255'],
    outside: ['126.255.255.255', '128.0.0.0'],
  },
  {
    cidr: '169.254.0.0/16',
    label: 'link-local',
    inside: ['169.254.0.0', '169.254.255.255'],
    outside: ['169.253.255.255', '169.255.0.0'],
  },
  {
    cidr: '172.16.0.0/12',
    label: 'private',
    inside: ['172.16.0.0', '172.31.255.255'],
    outside: ['172.15.255.255', '172.32.0.0'],
  },
  {
    cidr: '192.168.0.0/16',
    label: 'private',
    inside: ['192.168.0.0', '192.168.255.255'],
    outside: ['192.167.255.255', '192.169.0.0'],
  },
  // The address after 224.0.0.0/4 starts 240.0.0.0/4, and the one before 240.0.0.0/4 ends 224.0.0.0/4.
  {
    cidr: '224.0.0.0/4',
    label: 'multicast',
    inside: ['224.0.0.0', '239.255.255.255'],
    outside: ['223.255.255.255'],
  },
  { cidr: '240.0.0.0/4', label: 'reserved', inside: ['240.0.0.0', '255.255.255.255'], outside: [] },
  { cidr: '::/128', label: 'unspecified', inside: ['::'], outside: [] },
  { cidr: '::1/128', label: 'loopback', inside: ['::1'], outside: ['::2'] },
  {
    cidr: 'fc00::/7',
    label: 'unique local',
    inside: ['fc00::', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    outside: ['fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fe00::'],
  },
  {
    cidr: 'fe80::/10',
    label: 'link-local',
    inside: ['fe80::', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    outside: ['fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fec0::'],
  },
  {
    cidr: 'ff00::/8',
    label: 'multicast',
    inside: ['ff00::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    outside: ['feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  },
];

describe('Guard built-in ranges', () => {
  it('lists exactly the ranges of DESIGN section 1', () => {
    expect(BUILTIN_GUARDED.map((r) => r.cidr)).toEqual(BUILTIN_CASES.map((c) => c.cidr));
  });

  it.each(BUILTIN_CASES)(
    'guards $cidr from its first to its last address',
    ({ cidr, label, inside }) => {
      const guard = plainGuard();
      for (const ip of inside) {
        expect(guard.isGuarded(ip), ip).toBe(true);
        expect(guard.guardedBy(ip), ip).toBe(`${cidr} (${label})`);
      }
    },
  );

  it.each(BUILTIN_CASES.filter((c) => c.outside.length > 0))(
    'does not guard the addresses just outside $cidr',
    ({ outside }) => {
      const guard = plainGuard();
      for (const ip of outside) {
        expect(guard.isGuarded(ip), ip).toBe(false);
        expect(guard.guardedBy(ip), ip).toBeNull();
      }
    },
  );

  it('does not guard documentation ranges', () => {
    const guard = guardFor([]);
    for (const ip of [
      '192.0.2.1',
      '198.51.100.255',
      '203.0.113.0',
      '2001:db8::1',
      '2001:db8:ffff::1',
    ]) {
      expect(guard.isGuarded(ip), ip).toBe(false);
    }
  });
});

describe('Guard allowlist', () => {
  it('guards allowlisted addresses and CIDRs and names the entry when asked why', () => {
    const guard = plainGuard(['203.0.113.5/32', '198.51.100.0/24', '2001:db8:1::/48']);
    expect(guard.guardedBy('203.0.113.5')).toBe('allowlist 203.0.113.5/32');
    expect(guard.isGuarded('203.0.113.6')).toBe(false);
    expect(guard.guardedBy('198.51.100.200')).toBe('allowlist 198.51.100.0/24');
    expect(guard.guardedBy('2001:db8:1:ffff::1')).toBe('allowlist 2001:db8:1::/48');
    expect(guard.isGuarded('2001:db8:2::1')).toBe(false);
  });

  it('names the outer range when an allowlist entry lies inside a built-in range', () => {
    const guard = plainGuard(['10.1.2.3/32', '10.0.0.0/16']);
    expect(guard.guardedBy('10.1.2.3')).toBe('10.0.0.0/8 (private)');
    expect(guard.guardedBy('10.200.0.1')).toBe('10.0.0.0/8 (private)');
  });

  it('agrees with a brute-force scan when the allowlist holds thousands of ranges', () => {
    const cidr = fc
      .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 8, max: 32 }))
      .map(([v, p]) => `${formatIpv4(v - (v % 2 ** (32 - p)))}/${p}`);
    fc.assert(
      fc.property(
        fc.array(cidr, { minLength: 1, maxLength: 3000 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 50, maxLength: 50 }),
        (allowlist, probes) => {
          const guard = plainGuard(allowlist);
          const all = [...allowlist, ...BUILTIN_GUARDED.map((r) => r.cidr)];
          for (const v of probes) {
            const ip = formatIpv4(v);
            expect(guard.isGuarded(ip), ip).toBe(all.some((c) => cidrContains(c, ip)));
          }
        },
      ),
      { numRuns: 20 },
    );
  });

  it('throws GuardError when an allowlist entry is not a CIDR', () => {
    expect(() => plainGuard(['10.0.0.256/8'])).toThrow(GuardError);
  });
});

describe('Guard CloudFront ranges', () => {
  it('loads a dated snapshot with IPv4 and IPv6 ranges when the bundled data is read', () => {
    const { createDate, ranges } = loadCloudFrontSnapshot();
    expect(createDate).toMatch(/^\d{4}-\d{2}-\d{2}/);
    expect(snapshot.source).toContain(CLOUDFRONT_ORIGIN_FACING);
    expect(ranges.length).toBe(snapshot.prefixes.length + snapshot.ipv6Prefixes.length);
    expect(ranges.some((r) => r.includes('.'))).toBe(true);
    expect(ranges.some((r) => r.includes(':'))).toBe(true);
    expect(ranges).toContain('15.158.0.0/16');
  });

  it('guards every snapshot range and names it when the guard is built from the snapshot', () => {
    const guard = guardFor([]);
    for (const range of loadCloudFrontSnapshot().ranges) {
      const first = range.split('/')[0] as string;
      expect(guard.guardedBy(first), range).toBe(`CloudFront origin-facing ${range}`);
    }
    expect(guard.isGuarded('15.158.27.206')).toBe(true);
  });

  it('does not guard CloudFront ranges when the guard is built without them', () => {
    expect(plainGuard().isGuarded('15.158.27.206')).toBe(false);
  });
});

describe('Guard.overlapsGuarded', () => {
  it('returns the reason when a CIDR key contains a guarded range', () => {
    const guard = plainGuard();
    expect(guard.overlapsGuarded('10.0.0.0/7')).toBe('10.0.0.0/8 (private)');
    expect(guard.overlapsGuarded('fc00::/6')).toBe('fc00::/7 (unique local)');
  });

  it('returns the reason when a CIDR key lies inside a guarded range', () => {
    const guard = plainGuard(['203.0.113.0/24']);
    expect(guard.overlapsGuarded('192.168.1.0/24')).toBe('192.168.0.0/16 (private)');
    expect(guard.overlapsGuarded('fe80:0:0:1::/64')).toBe('fe80::/10 (link-local)');
    expect(guard.overlapsGuarded('203.0.113.128/25')).toBe('allowlist 203.0.113.0/24');
  });

  it('returns the reason when a key contains a single allowlisted address', () => {
    const guard = plainGuard(['198.51.100.77']);
    expect(guard.overlapsGuarded('198.51.100.0/24')).toBe('allowlist 198.51.100.77/32');
  });

  it('returns null when a key touches no guarded range', () => {
    const guard = guardFor(['198.51.100.77']);
    expect(guard.overlapsGuarded('8.0.0.0/7')).toBeNull();
    expect(guard.overlapsGuarded('192.0.2.0/24')).toBeNull();
    expect(guard.overlapsGuarded('2001:db8::/32')).toBeNull();
    expect(guard.overlapsGuarded('192.0.2.7')).toBeNull();
  });

  it('agrees with a brute-force overlap scan for random keys', () => {
    const guard = plainGuard(['198.51.100.0/24', '203.0.113.9']);
    const all = ['198.51.100.0/24', '203.0.113.9/32', ...BUILTIN_GUARDED.map((r) => r.cidr)];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 1, max: 32 }),
        (v, p) => {
          const key = `${formatIpv4(v - (v % 2 ** (32 - p)))}/${p}`;
          expect(guard.overlapsGuarded(key) !== null, key).toBe(
            all.some((c) => cidrsOverlap(c, key)),
          );
        },
      ),
    );
  });
});

describe('Guard input handling', () => {
  it('treats text that is not an address as guarded when asked isGuarded', () => {
    expect(plainGuard().isGuarded('not-an-ip')).toBe(true);
    expect(plainGuard().isGuarded('::ffff:zz')).toBe(true);
  });

  it('throws GuardError when guardedBy is given neither an address nor a CIDR', () => {
    expect(() => plainGuard().guardedBy('example.com')).toThrow(
      /not an IP address or CIDR: example\.com/,
    );
  });
});

/** The shape of AWS ip-ranges.json, trimmed to a few entries. */
function ipRangesDoc(): unknown {
  return {
    syncToken: '1700000000',
    createDate: '2023-11-14-22-13-20',
    prefixes: [
      {
        ip_prefix: '13.32.0.0/15',
        region: 'GLOBAL',
        service: 'CLOUDFRONT',
        network_border_group: 'GLOBAL',
      },
      {
        ip_prefix: '15.158.0.0/16',
        region: 'GLOBAL',
        service: 'CLOUDFRONT_ORIGIN_FACING',
        network_border_group: 'GLOBAL',
      },
      {
        ip_prefix: '3.172.0.0/18',
        region: 'GLOBAL',
        service: 'CLOUDFRONT_ORIGIN_FACING',
        network_border_group: 'GLOBAL',
      },
      {
        ip_prefix: '15.158.0.0/16',
        region: 'GLOBAL',
        service: 'CLOUDFRONT_ORIGIN_FACING',
        network_border_group: 'GLOBAL',
      },
      {
        ip_prefix: '3.5.140.0/22',
        region: 'ap-northeast-2',
        service: 'AMAZON',
        network_border_group: 'ap-northeast-2',
      },
    ],
    ipv6_prefixes: [
      {
        ipv6_prefix: '2600:9000::/28',
        region: 'GLOBAL',
        service: 'CLOUDFRONT',
        network_border_group: 'GLOBAL',
      },
      {
        ipv6_prefix: '2600:9000:1000::/39',
        region: 'GLOBAL',
        service: 'CLOUDFRONT_ORIGIN_FACING',
        network_border_group: 'GLOBAL',
      },
    ],
  };
}

describe('parseIpRangesJson', () => {
  it('returns only origin-facing prefixes, deduplicated and sorted, when given an ip-ranges document', () => {
    expect(parseIpRangesJson(ipRangesDoc())).toEqual([
      '3.172.0.0/18',
      '15.158.0.0/16',
      '2600:9000:1000::/39',
    ]);
  });

  it('throws GuardError when the document has the wrong shape', () => {
    expect(() => parseIpRangesJson('[]')).toThrow(/not a JSON object/);
    expect(() => parseIpRangesJson({ syncToken: '1' })).toThrow(/no prefixes list/);
    expect(() => parseIpRangesJson({ prefixes: [], ipv6_prefixes: 'x' })).toThrow(/ipv6_prefixes/);
  });

  it('throws GuardError when an origin-facing prefix is invalid', () => {
    const doc = { prefixes: [{ ip_prefix: '15.158.0.0/33', service: CLOUDFRONT_ORIGIN_FACING }] };
    expect(() => parseIpRangesJson(doc)).toThrow(
      /ip_prefix is not an IPv4 CIDR: 15\.158\.0\.0\/33/,
    );
  });

  it('throws GuardError when no origin-facing prefix is present', () => {
    expect(() =>
      parseIpRangesJson({ prefixes: [{ ip_prefix: '13.32.0.0/15', service: 'CLOUDFRONT' }] }),
    ).toThrow(GuardError);
  });
});
