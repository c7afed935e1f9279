import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyElbFamilyLine, REJECT } from '../../lambda/core/formats/alb';
import { createElbParser } from '../../lambda/core/formats/elb';
import type { FieldNeeds, LineParser, ParsedRequest } from '../../lambda/core/types';
import { corpusPresent, ORACLES, SAMPLES } from '../fixtures/corpus';
import { elbLine, elbTcpLine, generatedRequestArb, requestText } from '../fixtures/elb-lines';
import { checkedRequest } from '../fixtures/request';

const ALL: FieldNeeds = { method: true, path: true, host: true, status: true };
const NONE: FieldNeeds = { method: false, path: false, host: false, status: false };

function fresh(): ParsedRequest {
  return { ip: '', minute: 0, method: null, path: null, host: null, status: null };
}

/** The line inside a larger buffer, so that offsets other than 0 and bytes after the end are exercised. */
function embed(line: string): { buf: Buffer; start: number; end: number } {
  const before = '2024-05-01T10:04:07Z "unclosed\n';
  const buf = Buffer.from(`${before}${line}\n"quote after" the line\n`, 'utf8');
  const start = Buffer.byteLength(before);
  return { buf, start, end: start + Buffer.byteLength(line, 'utf8') };
}

/** Parses one line: the request, or the rejection reason. */
function parse(line: string, needs: FieldNeeds = ALL, parser?: LineParser): ParsedRequest | string {
  const { buf, start, end } = embed(line);
  const out = fresh();
  const reason = (parser ?? createElbParser(needs)).parse(buf, start, end, out);
  return reason ?? checkedRequest(out);
}

const minuteOf = (iso: string): number => Math.floor(Date.parse(iso) / 60000);

describe('createElbParser', () => {
  it('returns every field of an HTTP listener line', () => {
    expect(
      parse(
        elbLine({
          timestamp: '2015-05-13T23:39:43.945958Z',
          client: '198.51.100.23:2817',
          status: '404',
          request: requestText('POST', 'https://WWW.Example.com:443/login?next=%2F'),
        }),
      ),
    ).toEqual({
      ip: '198.51.100.23',
      minute: minuteOf('2015-05-13T23:39:00Z'),
      method: 'POST',
      path: '/login',
      host: 'www.example.com',
      status: 404,
    });
  });

  it('decodes only ip, minute and status when the rules need nothing else', () => {
    expect(parse(elbLine({ status: '503' }), NONE)).toEqual({
      ip: '192.0.2.7',
      minute: minuteOf('2024-05-01T10:04:00Z'),
      method: null,
      path: null,
      host: null,
      status: 503,
    });
  });

  it('reads TCP and SSL listener lines: no request, no status', () => {
    expect(parse(elbTcpLine())).toEqual({
      ip: '192.0.2.7',
      minute: minuteOf('2024-05-01T10:04:00Z'),
      method: null,
      path: null,
      host: null,
      status: null,
    });
    const ssl = elbTcpLine({ raw: { 13: 'ECDHE-ECDSA-AES128-GCM-SHA256', 14: 'TLSv1.2' } });
    expect(parse(ssl)).toMatchObject({ method: null, status: null });
  });

  it('reads lines written before 2015, which end after the request', () => {
    expect(parse(elbLine({ fields: 12 }))).toMatchObject({
      ip: '192.0.2.7',
      method: 'GET',
      path: '/index.html',
      host: 'www.example.com',
      status: 200,
    });
  });

  it('ignores fields after the fifteen it knows', () => {
    expect(parse(elbLine({ fields: 19 }))).toMatchObject({ ip: '192.0.2.7', status: 200 });
  });

  it('splits IPv6 clients, written without brackets, on the last colon', () => {
    expect(parse(elbLine({ client: '2001:DB8:0:0::7:41786' }), NONE)).toMatchObject({
      ip: '2001:db8::7',
    });
    expect(parse(elbLine({ client: '::ffff:198.51.100.9:80' }), NONE)).toMatchObject({
      ip: '198.51.100.9',
    });
  });

  it('reads a request with no backend (a - backend field)', () => {
    expect(parse(elbLine({ raw: { 3: '-', 8: '-' }, status: '504' }))).toMatchObject({
      status: 504,
      method: 'GET',
    });
  });

  it('unescapes the request and skips a user agent with spaces and quotes', () => {
    expect(
      parse(
        elbLine({
          request: requestText('GET', 'http://www.example.com/q"uote'),
          userAgent: 'Mozilla/5.0 "x" \\',
        }),
      ),
    ).toMatchObject({ path: '/q"uote' });
  });

  it('rejects invalid clients, timestamps and statuses', () => {
    for (const client of ['x.x.x.x:2817', '-', '192.0.2.7', '192.0.2.7:99999', 'edge:80']) {
      expect(parse(elbLine({ client }), NONE), client).toBe(REJECT.client);
    }
    for (const timestamp of ['2015-05-13T23:39:43.945958', '2015-02-29T23:39:43Z', '-']) {
      expect(parse(elbLine({ timestamp }), NONE), timestamp).toBe(REJECT.timestamp);
    }
    expect(parse(elbLine({ status: 'OK' }), NONE)).toBe(REJECT.status);
  });

  it('rejects truncated rows', () => {
    for (let fields = 1; fields <= 11; fields++) {
      expect(parse(elbLine({ fields })), `${fields} fields`).toBe(REJECT.truncated);
    }
    const line = elbLine({ fields: 12 });
    expect(parse(line.slice(0, -5))).toBe(REJECT.truncated);
  });

  it('rejects a row whose request field is not quoted', () => {
    expect(parse(elbLine({ raw: { 11: 'GET' } }))).toBe(REJECT.request);
  });

  it('never throws, whatever the bytes', () => {
    const parser = createElbParser(ALL);
    const line = elbLine();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
          fc
            .tuple(fc.nat(line.length), fc.nat(line.length), fc.string({ maxLength: 5 }))
            .map(([a, b, s]) => Buffer.from(line.slice(0, a) + s + line.slice(b))),
        ),
        (buf) => {
          const reason = parser.parse(buf, 0, buf.length, fresh());
          expect(reason === null || typeof reason === 'string').toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('reads back every generated line', () => {
    const parser = createElbParser(ALL);
    fc.assert(
      fc.property(generatedRequestArb, fc.constantFrom(12, 15, 16, 20), (g, fields) => {
        const line = elbLine({
          timestamp: g.time,
          client: g.client,
          status: g.statusText,
          request: g.request,
          userAgent: g.userAgent,
          fields,
        });
        expect(classifyElbFamilyLine(Buffer.from(line), 0, Buffer.byteLength(line))).toBe('elb');
        expect(parse(line, ALL, parser)).toEqual({
          ip: g.ip,
          minute: Math.floor(g.timeMs / 60000),
          method: g.method,
          path: g.path,
          host: g.host,
          status: g.status,
        });
      }),
      { numRuns: 2000 },
    );
  });
});

// ---------------------------------------------------------------------------
// Conformance: real Classic ELB lines from the shared corpus, read in place.
// ---------------------------------------------------------------------------

const HAVE_CORPUS = corpusPresent('Classic ELB corpus samples');

const CLB_FILES = [
  'awsdocs_clb_examples.log',
  'dpetzold_classic_loadbalancer_http_entry.csv',
  'filebeat_elb_elb-http.log',
  'filebeat_elb_elb-tcp.log',
  'filebeat_elb_example-http.log',
  'filebeat_elb_example-https.log',
  'filebeat_elb_example-ssl.log',
  'filebeat_elb_example-tcp.log',
  'logstash_patterns_core_aws_spec_elb.log',
];

interface CorpusLine {
  readonly offset: number;
  readonly number: number;
  readonly text: string;
}

/** Non-blank, non-comment lines of a sample, with byte offsets and 1-based numbers. */
function corpusLines(file: string): CorpusLine[] {
  const data = readFileSync(join(SAMPLES, file));
  const lines: CorpusLine[] = [];
  let offset = 0;
  let number = 0;
  while (offset < data.length) {
    let end = data.indexOf(10, offset);
    if (end < 0) end = data.length;
    number++;
    const text = data.toString('latin1', offset, data[end - 1] === 13 ? end - 1 : end);
    if (text.trim() !== '' && !text.startsWith('#')) lines.push({ offset, number, text });
    offset = end + 1;
  }
  return lines;
}

function oracle(name: string): unknown {
  return JSON.parse(readFileSync(join(ORACLES, name), 'utf8'));
}

const REASONS: string[] = Object.values(REJECT);

describe.runIf(HAVE_CORPUS)(
  HAVE_CORPUS
    ? 'Classic ELB corpus samples (../shared/corpus)'
    : 'Classic ELB corpus samples: skipped, ../shared/corpus is not present in this checkout',
  () => {
    it('classifies every Classic ELB line as elb and parses it or rejects it with a known reason', () => {
      let parsed = 0;
      for (const file of CLB_FILES) {
        const lines = corpusLines(file);
        expect(lines.length, file).toBeGreaterThan(0);
        for (const line of lines) {
          const where = `${file}:${line.number}`;
          const buf = Buffer.from(line.text, 'latin1');
          expect(classifyElbFamilyLine(buf, 0, buf.length), where).toBe('elb');
          const out = parse(line.text);
          if (typeof out === 'string') {
            expect(REASONS, where).toContain(out);
          } else {
            expect(out.minute, where).toBeGreaterThan(0);
            parsed++;
          }
        }
      }
      expect(parsed).toBeGreaterThan(20);
    });

    it('reads the client addresses the filebeat expected file holds', () => {
      const misc = oracle('filebeat_elb_misc-expected.condensed.json') as Record<
        string,
        { events: { 'log.offset': number; 'source.ip': string }[] }
      >;
      const events = misc['filebeat_elb_elb-tcp.log']?.events ?? [];
      const byOffset = new Map(
        corpusLines('filebeat_elb_elb-tcp.log').map((l) => [l.offset, l.text]),
      );
      expect(events.length).toBe(byOffset.size);
      for (const event of events) {
        expect(
          parse(byOffset.get(event['log.offset']) ?? ''),
          `@${event['log.offset']}`,
        ).toMatchObject({
          ip: event['source.ip'],
          status: null,
          method: null,
        });
      }
    });

    it('reads the client addresses the logstash spec asserts', () => {
      const spec = oracle('logstash_patterns_core_aws_spec-expected.condensed.json') as Record<
        string,
        unknown
      >;
      const cases = spec['logstash_patterns_core_aws_spec_elb.log'] as {
        line: number;
        clientip?: string;
        'source.ip (ecs)'?: string;
        response?: number;
      }[];
      const byNumber = new Map(
        corpusLines('logstash_patterns_core_aws_spec_elb.log').map((l) => [l.number, l.text]),
      );
      let checked = 0;
      for (const c of cases) {
        const ip = c.clientip ?? c['source.ip (ecs)'];
        const out = parse(byNumber.get(c.line) ?? '');
        if (ip !== undefined) {
          expect(out, `line ${c.line}`).toMatchObject({ ip });
          checked++;
        }
        if (c.response !== undefined)
          expect(out, `line ${c.line}`).toMatchObject({ status: c.response });
      }
      expect(checked).toBe(3);
    });
  },
);
