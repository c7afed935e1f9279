import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCidr } from '../../lambda/core/ip';
import { MembershipError, packCidrs, unpackCidrs } from '../../lambda/reconciler/membership';

const v4 = fc
  .tuple(
    fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
    fc.integer({ min: 1, max: 32 }),
  )
  .map(([o, p]) => parseCidr(`${o.join('.')}/${p}`)!.cidr);
const v6 = fc
  .tuple(
    fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }),
    fc.integer({ min: 1, max: 128 }),
  )
  .map(([g, p]) => parseCidr(`${g.map((x) => x.toString(16)).join(':')}/${p}`)!.cidr);

describe('packCidrs', () => {
  it('round-trips canonical IPv4 and IPv6 CIDRs through unpackCidrs', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(v4, v6), { maxLength: 50 }), (cidrs) => {
        expect(unpackCidrs(packCidrs(cidrs))).toEqual(cidrs);
      }),
    );
  });

  it('fits 10,000 full IPv6 addresses with as many pending in well under 400 KB', () => {
    const cidrs = Array.from(
      { length: 10_000 },
      (_, i) =>
        `2001:db8:aaaa:bbbb:cccc:dddd:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}/128`,
    );
    expect(packCidrs(cidrs).length * 2).toBeLessThan(400_000);
  });

  it('refuses text that is not a CIDR', () => {
    expect(() => packCidrs(['192.0.2.1/33'])).toThrow(MembershipError);
  });

  it('refuses truncated bytes', () => {
    const bytes = packCidrs(['2001:db8::/64']);
    expect(() => unpackCidrs(bytes.subarray(0, bytes.length - 1))).toThrow(/corrupt/);
  });
});
