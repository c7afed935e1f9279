import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import {
  createRealtimeParser,
  REALTIME_FIELD_ORDER,
  REALTIME_REJECT,
  RealtimeFieldsError,
  realtimeFields,
  recordOrder,
} from '../../lambda/core/formats/realtime';
import type { FieldNeeds, ParsedRequest } from '../../lambda/core/types';
import { AWS_SAMPLE, realtimeRecord } from '../fixtures/realtime';
import { checkedRequest } from '../fixtures/request';

const ALL: FieldNeeds = { method: true, path: true, host: true, status: true };

function fresh(): ParsedRequest {
  return { ip: '', minute: 0, method: null, path: null, host: null, status: null };
}

/** Parses a record placed inside a larger buffer, so offsets other than 0 are exercised. */
function parse(fields: readonly string[], record: string, needs = ALL): ParsedRequest | string {
  const parser = createRealtimeParser(needs, fields);
  const buf = Buffer.from(`xx\t${record}\tjunk\n`, 'utf8');
  const out = fresh();
  const reason = parser.parse(buf, 3, 3 + Buffer.byteLength(record), out);
  return reason ?? checkedRequest(out);
}

const SAMPLE_MINUTE = Math.floor(1602646738 / 60);

describe('createRealtimeParser', () => {
  it('reads the AWS sample record with every field', () => {
    const record = realtimeRecord({ ip: '1.2.3.4', at: 1602646738145 }, REALTIME_FIELD_ORDER);
    expect(record.split('\t')).toHaveLength(40);
    expect(parse(REALTIME_FIELD_ORDER, record)).toEqual({
      ip: '1.2.3.4',
      minute: SAMPLE_MINUTE,
      method: 'GET',
      path: '/image.jpg',
      host: 'somehost123.cloudfront.net',
      status: 200,
    });
  });

  it("reads the AWS sample under edgeban's own field list", () => {
    const fields = realtimeFields(parseConfig({}));
    const record = [
      AWS_SAMPLE.timestamp,
      AWS_SAMPLE['c-ip'],
      AWS_SAMPLE['sc-status'],
      AWS_SAMPLE['cs-method'],
      AWS_SAMPLE['cs-uri-stem'],
      AWS_SAMPLE['x-edge-request-id'],
    ].join('\t');
    const parser = createRealtimeParser(ALL, fields);
    const buf = Buffer.from(`${record}\n`);
    const out = fresh();
    expect(parser.parse(buf, 0, buf.length, out)).toBeNull();
    expect(out).toMatchObject({ ip: '1.2.3.4', minute: SAMPLE_MINUTE, status: 200, host: null });
    expect(parser.requestId()).toBe(AWS_SAMPLE['x-edge-request-id']);
  });

  it('maps columns by CloudFront order whatever order the fields are listed in', () => {
    const fields = ['sc-status', 'c-ip', 'timestamp', 'cs-uri-stem', 'cs-method'];
    const record = realtimeRecord(
      { ip: '192.0.2.7', at: 1700000000000, uri: '/login', method: 'POST', status: 401 },
      fields,
    );
    expect(parse(fields, record)).toMatchObject({
      ip: '192.0.2.7',
      method: 'POST',
      path: '/login',
      status: 401,
    });
  });

  it('drops the query string that real-time cs-uri-stem carries', () => {
    const fields = realtimeFields(parseConfig({}));
    const record = realtimeRecord(
      { ip: '192.0.2.7', at: 0, uri: '/images/cat.jpg?mobile=true' },
      fields,
    );
    expect(parse(fields, record)).toMatchObject({ path: '/images/cat.jpg' });
  });

  it('canonicalizes IPv6 and IPv4-mapped clients', () => {
    const fields = realtimeFields(parseConfig({}));
    const v6 = realtimeRecord({ ip: '2001:0DB8:85a3:0000:0000:8a2e:0370:7334', at: 0 }, fields);
    expect(parse(fields, v6)).toMatchObject({ ip: '2001:db8:85a3::8a2e:370:7334' });
    const mapped = realtimeRecord({ ip: '::ffff:192.0.2.9', at: 0 }, fields);
    expect(parse(fields, mapped)).toMatchObject({ ip: '192.0.2.9' });
  });

  it('reads the host from x-host-header, lower-case without port, then cs-host', () => {
    const withHeader = ['timestamp', 'c-ip', 'x-host-header'];
    expect(
      parse(
        withHeader,
        realtimeRecord({ ip: '192.0.2.1', at: 0, host: 'WWW.Example.com:443' }, withHeader),
      ),
    ).toMatchObject({ host: 'www.example.com' });
    const withCsHost = ['timestamp', 'c-ip', 'cs-host'];
    expect(
      parse(
        withCsHost,
        realtimeRecord({ ip: '192.0.2.1', at: 0, host: 'api.example.com' }, withCsHost),
      ),
    ).toMatchObject({ host: 'api.example.com' });
  });

  it("keeps status 000 (viewer closed the connection) and '-' as no status", () => {
    const fields = realtimeFields(parseConfig({}));
    expect(
      parse(fields, realtimeRecord({ ip: '192.0.2.1', at: 0, status: '000' }, fields)),
    ).toMatchObject({
      status: 0,
    });
    expect(
      parse(fields, realtimeRecord({ ip: '192.0.2.1', at: 0, status: '-' }, fields)),
    ).toMatchObject({
      status: null,
    });
  });

  it('rejects records it cannot read, with one-line reasons', () => {
    const fields = realtimeFields(parseConfig({}));
    const ok = realtimeRecord({ ip: '192.0.2.1', at: 1700000000000 }, fields);
    const cols = ok.trimEnd().split('\t');
    const cases: [string, string][] = [
      [cols.slice(0, -1).join('\t'), REALTIME_REJECT.fieldCount],
      [[...cols, 'extra'].join('\t'), REALTIME_REJECT.fieldCount],
      ['', REALTIME_REJECT.fieldCount],
      [cols.map((c, i) => (i === 1 ? '192.0.2.256' : c)).join('\t'), REALTIME_REJECT.client],
      [cols.map((c, i) => (i === 1 ? '-' : c)).join('\t'), REALTIME_REJECT.client],
      [cols.map((c, i) => (i === 0 ? '2024-05-01T10:00:00Z' : c)).join('\t'), REALTIME_REJECT.time],
      [cols.map((c, i) => (i === 0 ? '1700000000.' : c)).join('\t'), REALTIME_REJECT.time],
      [cols.map((c, i) => (i === 2 ? 'OK' : c)).join('\t'), REALTIME_REJECT.status],
      [`${ok.trimEnd()}\0`, REALTIME_REJECT.nul],
      [
        cols.map((c, i) => (i === 4 ? `/${'a'.repeat(70_000)}` : c)).join('\t'),
        REALTIME_REJECT.tooLong,
      ],
    ];
    for (const [record, reason] of cases) expect(parse(fields, record)).toBe(reason);
  });

  it('accepts a record with or without its final newline, and CRLF', () => {
    const fields = realtimeFields(parseConfig({}));
    const rec = realtimeRecord({ ip: '192.0.2.1', at: 0 }, fields);
    for (const r of [rec, rec.trimEnd(), `${rec.trimEnd()}\r\n`]) {
      expect(parse(fields, r)).toMatchObject({ ip: '192.0.2.1' });
    }
  });

  it('refuses a field list without c-ip or timestamp', () => {
    expect(() => createRealtimeParser(ALL, ['timestamp', 'sc-status'])).toThrow(
      RealtimeFieldsError,
    );
    expect(() => createRealtimeParser(ALL, ['c-ip', 'sc-status'])).toThrow(/lack timestamp/);
  });

  it('returns the fields of any record it built (property)', () => {
    const fields = realtimeFields(
      parseConfig({ rules: [{ name: 'h', threshold: 1, window: '1m', host: 'a.example.com' }] }),
    );
    const octet = fc.integer({ min: 0, max: 255 });
    fc.assert(
      fc.property(
        fc.tuple(octet, octet, octet, octet),
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
        fc.stringMatching(/^\/[a-z0-9/._-]{0,30}$/),
        fc.integer({ min: 100, max: 599 }),
        fc.stringMatching(/^[a-z0-9]{1,10}\.example\.com$/),
        (ip, at, method, uri, status, host) => {
          const addr = ip.join('.');
          const out = parse(
            fields,
            realtimeRecord({ ip: addr, at, method, uri, status, host }, fields),
          );
          expect(out).toEqual({
            ip: addr,
            minute: Math.floor(Math.floor(at) / 60000),
            method,
            path: uri,
            host,
            status,
          });
        },
      ),
    );
  });
});

describe('realtimeFields', () => {
  it('lists the base fields in CloudFront order, x-host-header only for host rules', () => {
    expect(realtimeFields(parseConfig({}))).toEqual([
      'timestamp',
      'c-ip',
      'sc-status',
      'cs-method',
      'cs-uri-stem',
      'x-edge-request-id',
    ]);
    const withHost = parseConfig({
      rules: [{ name: 'h', threshold: 5, window: '1m', host: '*.example.com' }],
    });
    expect(realtimeFields(withHost)).toEqual([
      'timestamp',
      'c-ip',
      'sc-status',
      'cs-method',
      'cs-uri-stem',
      'x-edge-request-id',
      'x-host-header',
    ]);
  });

  it('puts unknown (newer) fields after the known ones', () => {
    expect(recordOrder(['asn', 'c-ip', 'timestamp', 'c-ip'])).toEqual(['timestamp', 'c-ip', 'asn']);
  });
});
