import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientIds } from '../../lambda/core/clients';
import { parseConfig } from '../../lambda/core/config';
import { Engine } from '../../lambda/core/engine';
import { createAlbParser } from '../../lambda/core/formats/alb';
import { createCloudFrontParser, LEGACY_LAYOUT } from '../../lambda/core/formats/cloudfront';
import { formatIpv4, ipv4ToNumber } from '../../lambda/core/ip';
import {
  blankRequest,
  type FieldNeeds,
  type LineParser,
  type ParsedRequest,
} from '../../lambda/core/types';

const v4Arb = fc.integer({ min: 0, max: 0xffffffff });

describe('ClientIds', () => {
  it('gives one id per address, by value or by text, through growth and collisions', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            v4Arb.map((v) => ({ v })),
            fc.constantFrom('2001:db8::1', '::', '2001:db8::ffff:1'),
          ),
          {
            maxLength: 5000,
          },
        ),
        (addresses) => {
          const ids = new ClientIds();
          const reference = new Map<string, number>();
          for (const a of addresses) {
            const text = typeof a === 'string' ? a : formatIpv4(a.v);
            const viaText = ids.findText(text);
            const viaValue = typeof a === 'string' ? viaText : ids.findV4(a.v);
            expect(viaValue).toBe(viaText);
            expect(viaText).toBe(reference.get(text) ?? -1);
            if (viaText < 0) {
              const id = typeof a === 'string' ? ids.add(text) : ids.add(text, a.v);
              expect(id).toBe(reference.size);
              reference.set(text, id);
            }
          }
          expect(ids.size).toBe(reference.size);
          expect(ids.texts).toEqual([...reference.keys()]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('holds the ends of the IPv4 space and 300,000 clients', () => {
    const ids = new ClientIds();
    expect(ids.add('0.0.0.0')).toBe(0);
    expect(ids.add('255.255.255.255', 0xffffffff)).toBe(1);
    // A value that is -1 as int32 must not read as an empty or missing slot.
    expect(ids.findV4(0xffffffff)).toBe(1);
    expect(ids.findV4(-1)).toBe(1);
    expect(ids.findV4(0)).toBe(0);
    expect(ids.findText('255.255.255.255')).toBe(1);
    // Consecutive addresses: the worst case for a weak hash.
    for (let i = 0; i < 300_000; i++) ids.add(formatIpv4(0x0a000000 + i), 0x0a000000 + i);
    expect(ids.size).toBe(300_002);
    expect(ids.findV4(0x0a000000 + 299_999)).toBe(300_001);
    expect(ids.findText('10.4.147.223')).toBe(2 + ipv4ToNumber('10.4.147.223') - 0x0a000000);
    expect(ids.findV4(0x0a000000 + 300_000)).toBe(-1);
  });

  it('does not take text that is no address for an IPv4 value', () => {
    const ids = new ClientIds();
    ids.add('255.255.255.255');
    expect(ids.findText('')).toBe(-1);
    expect(ids.findText('not an address')).toBe(-1);
    expect(ids.add('not an address')).toBe(1);
    expect(ids.findText('not an address')).toBe(1);
  });
});

const CF_ROW = (ip: string) =>
  `2024-05-01\t10:00:01\tIAD89-P1\t512\t${ip}\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0\t-\t-\tMiss\tabc==\texample.com\thttps\t300\t0.002\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\tHTTP/2.0\t-\t-\t11040\t0.002\tMiss\ttext/html\t512\t-\t-`;
const ALB_ROW = (client: string) =>
  `https 2024-05-01T10:00:01.123456Z app/my-lb/50dc6c495c0c9188 ${client} 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET https://example.com:443/ HTTP/1.1" "curl/8.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "example.com" "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012" 0 2024-05-01T10:00:01.000000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234`;

function parsed(
  parserFor: (needs: FieldNeeds) => LineParser,
  line: string,
  addressValue: boolean,
): ParsedRequest {
  const parser = parserFor({
    method: false,
    path: false,
    host: false,
    status: false,
    addressValue,
  });
  const out = blankRequest();
  const buf = Buffer.from(line);
  expect(parser.parse(buf, 0, buf.length, out)).toBeNull();
  return out;
}

describe('FieldNeeds.addressValue', () => {
  const cf = (needs: FieldNeeds) => createCloudFrontParser(needs, LEGACY_LAYOUT);
  const alb = (needs: FieldNeeds) => createAlbParser(needs);

  it.each([
    ['CloudFront', cf, CF_ROW('198.51.100.7')],
    ['ALB', alb, ALB_ROW('198.51.100.7:443')],
  ])('%s: an IPv4 client comes as its value, without text', (_name, parser, line) => {
    const withText = parsed(parser, line, false);
    const valueOnly = parsed(parser, line, true);
    expect(withText).toMatchObject({ ip: '198.51.100.7', ipv4: ipv4ToNumber('198.51.100.7') });
    expect(valueOnly).toMatchObject({ ip: '', ipv4: ipv4ToNumber('198.51.100.7') });
  });

  it.each([
    ['CloudFront', cf, CF_ROW('2001:DB8::5'), '2001:db8::5', -1],
    ['ALB', alb, ALB_ROW('2001:db8::5:443'), '2001:db8::5', -1],
    [
      'ALB, IPv4-mapped',
      alb,
      ALB_ROW('::ffff:198.51.100.7:443'),
      '198.51.100.7',
      ipv4ToNumber('198.51.100.7'),
    ],
  ])('%s: other addresses keep their canonical text', (_name, parser, line, ip, ipv4) => {
    expect(parsed(parser, line, true)).toMatchObject({ ip, ipv4 });
  });

  it('counts the same whether requests name clients by text or by value', () => {
    const config = parseConfig({
      rules: [
        { name: 'flood', threshold: 3, window: '5m' },
        { name: 'nets', threshold: 5, window: '5m', ipv4Prefix: 24 },
      ],
    });
    const clients = ['198.51.100.7', '198.51.100.8', '203.0.113.9', '2001:db8::5', '0.0.0.0'];
    const byText = new Engine(config);
    const byValue = new Engine(config);
    const mixed = new Engine(config);
    let n = 0;
    for (let minute = 28_000_000; minute < 28_000_010; minute++) {
      for (const ip of clients) {
        const v4 = ip.includes(':') ? -1 : ipv4ToNumber(ip);
        byText.count({ ...blankRequest(), ip, ipv4: undefined, minute });
        byValue.count({ ...blankRequest(), ip: v4 >= 0 ? '' : ip, ipv4: v4, minute });
        mixed.count({ ...blankRequest(), ip, ipv4: n++ % 2 === 0 ? v4 : -1, minute });
      }
    }
    const view = (e: Engine) => ({
      clients: e.clients(),
      decisions: e.decisions(),
      count: e.clientCount,
    });
    expect(view(byValue)).toEqual(view(byText));
    expect(view(mixed)).toEqual(view(byText));
    expect(byText.clientCount).toBe(5);
    expect(view(byText).decisions.map((d) => d.key)).toContain('198.51.100.0/24');
  });
});
