import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CF_REJECT,
  createCloudFrontParser,
  FIELDS_PROBLEM,
  isCloudFrontRow,
  LEGACY_FIELDS,
  layoutFromFields,
  normalizeHost,
  parseFieldsLine,
} from '../../lambda/core/formats/cloudfront';
import { createCloudFrontJsonParser, JSON_REJECT } from '../../lambda/core/formats/cloudfront-json';
import { canonicalIp } from '../../lambda/core/ip';
import type { FieldNeeds, ParsedRequest } from '../../lambda/core/types';
import {
  CF_LEGACY_FIELDS,
  CF_V2_EXTRA_FIELDS,
  type CfRequest,
  cfJsonLine,
  cfRequest,
  cfRow,
} from '../fixtures/logs';
import { checkedRequest } from '../fixtures/request';

const ALL: FieldNeeds = { method: true, path: true, host: true, status: true };
const NONE: FieldNeeds = { method: false, path: false, host: false, status: false };

function fresh(): ParsedRequest {
  return { ip: '', minute: 0, method: null, path: null, host: null, status: null };
}

/** Parses one line; returns the request or the rejection reason. */
function parseWith(
  parser: { parse: (b: Buffer, s: number, e: number, o: ParsedRequest) => string | null },
  line: string,
): ParsedRequest | string {
  // Pad the line inside a larger buffer so offsets other than 0 are exercised.
  const buf = Buffer.from(`junk\n${line}\nmore\tjunk\n`, 'utf8');
  const start = 5;
  const end = start + Buffer.byteLength(line, 'utf8');
  const out = fresh();
  return parser.parse(buf, start, end, out) ?? checkedRequest(out);
}

const minuteOf = (ms: number): number => Math.floor(ms / 60000);

describe('createCloudFrontParser', () => {
  it('reads a legacy row without header in the documented column order', () => {
    const r = cfRequest({ ip: '198.51.100.23', path: '/a/b.html', status: '404' });
    expect(parseWith(createCloudFrontParser(ALL), cfRow(r))).toEqual({
      ip: '198.51.100.23',
      minute: minuteOf(r.at),
      method: 'GET',
      path: '/a/b.html',
      host: 'www.example.com',
      status: 404,
    });
  });

  it('uses the legacy order 33 fields long, as the developer guide lists it', () => {
    expect(LEGACY_FIELDS).toEqual(CF_LEGACY_FIELDS);
  });

  it('leaves the fields the rules do not need null', () => {
    const r = cfRequest();
    expect(parseWith(createCloudFrontParser(NONE), cfRow(r))).toEqual({
      ip: '192.0.2.7',
      minute: minuteOf(r.at),
      method: null,
      path: null,
      host: null,
      status: null,
    });
  });

  it('maps columns by the #Fields header, whatever their number from 18 to 34', () => {
    const r = cfRequest({ method: 'POST', path: '/login' });
    for (const n of [18, 19, 23, 24, 26, 33]) {
      const fields = CF_LEGACY_FIELDS.slice(0, n);
      const parser = createCloudFrontParser(ALL, layoutFromFields(fields));
      expect(parseWith(parser, cfRow(r, fields))).toMatchObject({ method: 'POST', path: '/login' });
    }
    const fields34 = [...CF_LEGACY_FIELDS, 'c-country'];
    const parser = createCloudFrontParser(ALL, layoutFromFields(fields34));
    expect(parseWith(parser, cfRow(r, fields34))).toMatchObject({ ip: '192.0.2.7', status: 200 });
  });

  it('accepts a trailing tab', () => {
    const r = cfRequest();
    expect(parseWith(createCloudFrontParser(ALL), `${cfRow(r)}\t`)).toMatchObject({
      ip: '192.0.2.7',
      status: 200,
    });
  });

  it('rejects a row too short for its request columns as a truncated row', () => {
    const cells = cfRow(cfRequest()).split('\t');
    const parser = createCloudFrontParser(NONE);
    expect(parseWith(parser, cells.slice(0, 8).join('\t'))).toBe(CF_REJECT.truncated);
    expect(parseWith(parser, cells.slice(0, 9).join('\t'))).toMatchObject({ ip: '192.0.2.7' });
  });

  it('rejects a row the same way whatever the rules need', () => {
    const cells = cfRow(cfRequest()).split('\t');
    const short = cells.slice(0, 6).join('\t');
    expect(parseWith(createCloudFrontParser(NONE), short)).toBe(CF_REJECT.truncated);
    expect(parseWith(createCloudFrontParser(ALL), short)).toBe(CF_REJECT.truncated);
    const badStatus = cfRow(cfRequest({ status: 'abc' }));
    expect(parseWith(createCloudFrontParser(NONE), badStatus)).toBe(CF_REJECT.status);
    expect(parseWith(createCloudFrontParser(ALL), badStatus)).toBe(CF_REJECT.status);
  });

  it('falls back to cs(Host) when the row ends before x-host-header', () => {
    const cells = cfRow(cfRequest()).split('\t');
    const parser = createCloudFrontParser(ALL);
    expect(parseWith(parser, cells.slice(0, 12).join('\t'))).toMatchObject({
      host: 'd111111abcdef8.cloudfront.net',
    });
  });

  it('takes the host from x-host-header, else cs(Host), lower-cased without port', () => {
    const parser = createCloudFrontParser(ALL);
    const host = (r: Partial<CfRequest>): string | null =>
      (parseWith(parser, cfRow(cfRequest(r))) as ParsedRequest).host;
    expect(host({ hostHeader: 'WWW.Example.COM:8443' })).toBe('www.example.com');
    expect(host({ hostHeader: '-', csHost: 'D111.CloudFront.net' })).toBe('d111.cloudfront.net');
    expect(host({ hostHeader: '[2001:DB8::1]:443' })).toBe('[2001:db8::1]');
    expect(host({ hostHeader: '-', csHost: '-' })).toBeNull();
    const noHeaderHost = CF_LEGACY_FIELDS.filter((f) => f !== 'x-host-header');
    const p2 = createCloudFrontParser(ALL, layoutFromFields(noHeaderHost));
    expect(
      (
        parseWith(
          p2,
          cfRow(cfRequest({ csHost: 'Shop.Example.com' }), noHeaderHost),
        ) as ParsedRequest
      ).host,
    ).toBe('shop.example.com');
  });

  it('reads status - as null and 000 as 0', () => {
    const parser = createCloudFrontParser(ALL);
    expect(parseWith(parser, cfRow(cfRequest({ status: '-' })))).toMatchObject({ status: null });
    expect(parseWith(parser, cfRow(cfRequest({ status: '000' })))).toMatchObject({ status: 0 });
  });

  it('reads method and path as logged, - as null', () => {
    const parser = createCloudFrontParser(ALL);
    const r = cfRequest({ method: 'PROPFIND', path: '/caf\u00e9/%E2%9C%93' });
    expect(parseWith(parser, cfRow(r))).toMatchObject({
      method: 'PROPFIND',
      path: '/caf\u00e9/%E2%9C%93',
    });
    expect(parseWith(parser, cfRow(cfRequest({ method: '-', path: '-' })))).toMatchObject({
      method: null,
      path: null,
    });
  });

  it('writes clients canonically and rejects invalid ones', () => {
    const parser = createCloudFrontParser(NONE);
    const ip = (text: string): string =>
      ((parseWith(parser, cfRow(cfRequest({ ip: text }))) as ParsedRequest).ip ??
        'rejected') as string;
    expect(ip('2001:DB8:0:0:1::1')).toBe('2001:db8::1:0:0:1');
    expect(ip('::ffff:192.0.2.9')).toBe('192.0.2.9');
    expect(ip('255.255.255.255')).toBe('255.255.255.255');
    expect(ip('0.0.0.0')).toBe('0.0.0.0');
    expect(ip('10.0.0.1')).toBe('10.0.0.1');
    for (const bad of ['x.x.x.x', '-', '010.0.0.1', '10.0.0.256', '10.0.0', '', 'fe80::1%eth0']) {
      expect(parseWith(parser, cfRow(cfRequest({ ip: bad })))).toBe(CF_REJECT.client);
    }
    // A valid neighbour's memo entry never vouches for a spelling ip.ts rejects.
    expect(ip('10.0.0.1')).toBe('10.0.0.1');
    expect(parseWith(parser, cfRow(cfRequest({ ip: '010.0.0.1' })))).toBe(CF_REJECT.client);
  });

  it('rejects an invalid date or time, also right after a valid row of the same minute', () => {
    const parser = createCloudFrontParser(NONE);
    const good = cfRow(cfRequest());
    expect(parseWith(parser, good)).toMatchObject({ ip: '192.0.2.7' });
    const cells = good.split('\t');
    const withTime = (t: string): string => [cells[0], t, ...cells.slice(2)].join('\t');
    const withDate = (d: string): string => [d, ...cells.slice(1)].join('\t');
    expect(parseWith(parser, withTime('10:04:7x'))).toBe(CF_REJECT.time);
    expect(parseWith(parser, withTime('10:04:61'))).toBe(CF_REJECT.time);
    expect(parseWith(parser, withTime('10:04'))).toBe(CF_REJECT.time);
    expect(parseWith(parser, withDate('2024-02-30'))).toBe(CF_REJECT.time);
    expect(parseWith(parser, withDate('-'))).toBe(CF_REJECT.time);
    expect(parseWith(parser, withTime('10:04:59'))).toMatchObject({
      minute: minuteOf(Date.UTC(2024, 4, 1, 10, 4)),
    });
  });

  it('gives each row its own minute across minute and day changes', () => {
    const parser = createCloudFrontParser(NONE);
    const times = [
      Date.UTC(2024, 11, 31, 23, 59, 59),
      Date.UTC(2025, 0, 1, 0, 0, 0),
      Date.UTC(2025, 0, 1, 0, 0, 1),
      Date.UTC(2024, 1, 29, 0, 0, 1),
      Date.UTC(2025, 0, 1, 0, 1, 0),
    ];
    for (const at of times) {
      expect(parseWith(parser, cfRow(cfRequest({ at })))).toMatchObject({ minute: minuteOf(at) });
    }
  });

  it('reads the time from timestamp(ms), or timestamp, when date and time are missing', () => {
    const at = Date.UTC(2024, 10, 14, 22, 30, 25, 421);
    const r = cfRequest({ at });
    for (const time of ['timestamp(ms)', 'timestamp']) {
      const fields = ['c-ip', time, 'cs-method'];
      const parser = createCloudFrontParser(ALL, layoutFromFields(fields));
      expect(parseWith(parser, cfRow(r, fields))).toMatchObject({ minute: minuteOf(at) });
    }
    const bad = createCloudFrontParser(NONE, layoutFromFields(['c-ip', 'timestamp']));
    expect(parseWith(bad, '192.0.2.7\t1731623425.')).toBe(CF_REJECT.time);
    expect(parseWith(bad, '192.0.2.7\t17316x3425')).toBe(CF_REJECT.time);
  });

  it('prefers date and time over timestamp(ms) when a header has both', () => {
    const fields = ['timestamp(ms)', 'c-ip', 'date', 'time'];
    const parser = createCloudFrontParser(NONE, layoutFromFields(fields));
    const line = `${Date.UTC(2030, 0, 1)}\t192.0.2.7\t2024-05-01\t10:04:30`;
    expect(parseWith(parser, line)).toMatchObject({
      minute: minuteOf(Date.UTC(2024, 4, 1, 10, 4)),
    });
  });

  it('re-maps its columns when given a new layout', () => {
    const parser = createCloudFrontParser(ALL);
    const r = cfRequest({ ip: '203.0.113.5', method: 'DELETE' });
    expect(parseWith(parser, cfRow(r))).toMatchObject({ ip: '203.0.113.5', method: 'DELETE' });
    const v2 = ['cs-uri-stem', 'timestamp(ms)', 'c-ip'];
    parser.setLayout(layoutFromFields(v2));
    expect(parseWith(parser, cfRow(r, v2))).toMatchObject({
      ip: '203.0.113.5',
      method: null,
      path: '/index.html',
      host: null,
      status: null,
    });
    parser.setLayout(layoutFromFields(['date', 'time']));
    expect(parseWith(parser, cfRow(r, ['date', 'time']))).toBe(FIELDS_PROBLEM.clientIp);
  });

  it('parses generated rows back to what generated them, any columns in any order', () => {
    const timeColumns = fc.constantFrom(['date', 'time'], ['timestamp(ms)'], ['timestamp']);
    const optional = CF_LEGACY_FIELDS.filter((f) => !['date', 'time', 'c-ip'].includes(f));
    const layouts = fc.oneof(
      fc.constant<string[] | null>(null),
      fc.integer({ min: 18, max: 33 }).map((n) => CF_LEGACY_FIELDS.slice(0, n) as string[]),
      fc
        .tuple(
          timeColumns,
          fc.subarray([
            ...optional,
            ...CF_V2_EXTRA_FIELDS.filter((f) => !f.startsWith('timestamp')),
          ]),
        )
        .chain(([time, rest]) =>
          fc.shuffledSubarray([...time, 'c-ip', ...rest], {
            minLength: time.length + 1 + rest.length,
          }),
        ),
    );
    fc.assert(
      fc.property(layouts, requestArb, fc.boolean(), (fields, r, needAll) => {
        const needs = needAll ? ALL : NONE;
        const parser = createCloudFrontParser(
          needs,
          fields === null ? undefined : layoutFromFields(fields),
        );
        const columns = fields ?? CF_LEGACY_FIELDS;
        const got = parseWith(parser, cfRow(r, columns));
        expect(got).toEqual(expected(r, columns, needs));
      }),
      { numRuns: 500 },
    );
  });
});

const hostArb = fc
  .tuple(
    fc.domain(),
    fc.boolean(),
    fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
  )
  .map(
    ([d, upper, port]) => `${upper ? d.toUpperCase() : d}${port === undefined ? '' : `:${port}`}`,
  );

const requestArb: fc.Arbitrary<CfRequest> = fc.record({
  at: fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2099, 11, 31) }),
  ip: fc.oneof(fc.ipV4(), fc.ipV6()),
  method: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', '-'),
  path: fc.oneof(
    fc.webPath().filter((p) => p.startsWith('/')),
    fc.constantFrom('/', '/login', '/caf\u00e9/\u{1f600}', '/a%09b'),
  ),
  hostHeader: fc.oneof(hostArb, fc.constant('-')),
  csHost: hostArb,
  status: fc.oneof(fc.integer({ min: 100, max: 599 }).map(String), fc.constantFrom('-', '000')),
  userAgent: fc.constantFrom('-', 'curl/8.5.0', 'Mozilla/5.0%20(X11)'),
});

/** What a row written from `r` with `columns` must parse to. */
function expected(r: CfRequest, columns: readonly string[], needs: FieldNeeds): ParsedRequest {
  const has = (f: string): boolean => columns.includes(f);
  // Generated hosts are domains with an optional port.
  const norm = (h: string): string => h.replace(/:\d+$/, '').toLowerCase();
  let host: string | null = null;
  if (has('x-host-header') && r.hostHeader !== '-') host = norm(r.hostHeader);
  if (host === null && has('cs(Host)')) host = norm(r.csHost);
  const status = !has('sc-status') || r.status === '-' ? null : Number(r.status);
  return {
    ip: canonicalIp(r.ip)!,
    minute: minuteOf(r.at),
    method: needs.method && has('cs-method') && r.method !== '-' ? r.method : null,
    path: needs.path && has('cs-uri-stem') ? r.path : null,
    host: needs.host ? host : null,
    status: needs.status ? status : null,
  };
}

describe('normalizeHost', () => {
  it('lower-cases and strips the port', () => {
    expect(normalizeHost('API.Example.com:443')).toBe('api.example.com');
    expect(normalizeHost('[2001:DB8::7]:8443')).toBe('[2001:db8::7]');
    expect(normalizeHost('-')).toBeNull();
    expect(normalizeHost('')).toBeNull();
  });
});

describe('layoutFromFields', () => {
  it('names what a header lacks', () => {
    expect(layoutFromFields(['date', 'time', 'cs-method']).problem).toBe(FIELDS_PROBLEM.clientIp);
    expect(layoutFromFields(['c-ip', 'date', 'cs-method']).problem).toBe(FIELDS_PROBLEM.time);
    expect(layoutFromFields(['c-ip', 'timestamp']).problem).toBeNull();
    expect(layoutFromFields(CF_LEGACY_FIELDS).timeSource).toBe('date-time');
  });
});

describe('parseFieldsLine', () => {
  it('returns the field names of a #Fields header and null for other lines', () => {
    const line = Buffer.from('#Fields: date time  c-ip\tcs-method ');
    expect(parseFieldsLine(line, 0, line.length)).toEqual(['date', 'time', 'c-ip', 'cs-method']);
    const other = Buffer.from('#Version: 1.0');
    expect(parseFieldsLine(other, 0, other.length)).toBeNull();
  });
});

describe('isCloudFrontRow', () => {
  it('recognises rows by structure, whatever the client', () => {
    const layout = layoutFromFields(CF_LEGACY_FIELDS);
    const check = (line: string): boolean => {
      const buf = Buffer.from(line);
      return isCloudFrontRow(buf, 0, buf.length, layout);
    };
    expect(check(cfRow(cfRequest()))).toBe(true);
    expect(check(cfRow(cfRequest({ ip: 'x.x.x.x' })))).toBe(true);
    expect(check(cfRow(cfRequest()).replaceAll('\t', ' '))).toBe(false);
    expect(check('hello\tworld')).toBe(false);
  });
});

describe('createCloudFrontJsonParser', () => {
  const v2 = [
    'timestamp(ms)',
    'c-ip',
    'cs-method',
    'cs-uri-stem',
    'sc-status',
    'x-host-header',
    'cs(Host)',
  ];

  it('reads a JSON line with timestamp(ms)', () => {
    const r = cfRequest({ ip: '2001:DB8::5', method: 'POST', path: '/login', status: '401' });
    expect(parseWith(createCloudFrontJsonParser(ALL), cfJsonLine(r, v2))).toEqual({
      ip: '2001:db8::5',
      minute: minuteOf(r.at),
      method: 'POST',
      path: '/login',
      host: 'www.example.com',
      status: 401,
    });
  });

  it('falls back to date and time, then timestamp', () => {
    const r = cfRequest({ at: Date.UTC(2024, 10, 15, 19, 45, 51) });
    for (const time of [['date', 'time'], ['timestamp']]) {
      const line = cfJsonLine(r, ['c-ip', ...time]);
      expect(parseWith(createCloudFrontJsonParser(NONE), line)).toMatchObject({
        minute: minuteOf(r.at),
      });
    }
    expect(parseWith(createCloudFrontJsonParser(NONE), cfJsonLine(r, ['c-ip']))).toBe(
      CF_REJECT.time,
    );
  });

  it('rejects lines without an object, a c-ip or a valid client', () => {
    const parser = createCloudFrontJsonParser(NONE);
    expect(parseWith(parser, '{"c-ip": "192.0.2.1"')).toBe(JSON_REJECT.json);
    expect(parseWith(parser, '["c-ip"]')).toBe(JSON_REJECT.json);
    expect(parseWith(parser, cfJsonLine(cfRequest(), ['timestamp(ms)']))).toBe(
      JSON_REJECT.clientIp,
    );
    expect(parseWith(parser, cfJsonLine(cfRequest({ ip: 'x.x.x.x' }), v2))).toBe(CF_REJECT.client);
    expect(parseWith(parser, cfJsonLine(cfRequest({ status: 'oops' }), v2))).toBe(CF_REJECT.status);
  });

  it('parses generated lines back to what generated them', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(['date', 'time'], ['timestamp(ms)'], ['timestamp']),
        fc.subarray(['cs-method', 'cs-uri-stem', 'sc-status', 'x-host-header', 'cs(Host)', 'asn']),
        requestArb,
        (time, rest, r) => {
          const fields = ['c-ip', ...time, ...rest];
          const got = parseWith(createCloudFrontJsonParser(ALL), cfJsonLine(r, fields));
          expect(got).toEqual(expected(r, fields, ALL));
        },
      ),
      { numRuns: 300 },
    );
  });
});
