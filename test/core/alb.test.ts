import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyElbFamilyLine,
  createAlbParser,
  MinuteCache,
  REJECT,
} from '../../lambda/core/formats/alb';
import { minuteFromIso } from '../../lambda/core/formats/time';
import type { FieldNeeds, LineParser, ParsedRequest } from '../../lambda/core/types';
import { corpusPresent, ORACLES, SAMPLES } from '../fixtures/corpus';
import {
  ALB_FIELDS,
  albConnectionLine,
  albLine,
  clientPort,
  elbLine,
  elbTcpLine,
  generatedRequestArb,
  nlbTlsLine,
  quoted,
  requestText,
} from '../fixtures/elb-lines';
import { checkedRequest } from '../fixtures/request';

const ALL: FieldNeeds = { method: true, path: true, host: true, status: true };
const NONE: FieldNeeds = { method: false, path: false, host: false, status: false };

function fresh(): ParsedRequest {
  return { ip: '', minute: 0, method: null, path: null, host: null, status: null };
}

/** The line inside a larger buffer, so that offsets other than 0 and bytes after the end are exercised. */
function embed(line: string): { buf: Buffer; start: number; end: number } {
  const before = 'http "unclosed\n';
  const buf = Buffer.from(`${before}${line}\n"quote after" the line\n`, 'utf8');
  const start = Buffer.byteLength(before);
  return { buf, start, end: start + Buffer.byteLength(line, 'utf8') };
}

/** Parses one line: the request, or the rejection reason. */
function parse(line: string, needs: FieldNeeds = ALL, parser?: LineParser): ParsedRequest | string {
  const { buf, start, end } = embed(line);
  const out = fresh();
  const reason = (parser ?? createAlbParser(needs)).parse(buf, start, end, out);
  return reason ?? checkedRequest(out);
}

function classify(line: string): string | null {
  const { buf, start, end } = embed(line);
  return classifyElbFamilyLine(buf, start, end);
}

const minuteOf = (iso: string): number => Math.floor(Date.parse(iso) / 60000);

describe('classifyElbFamilyLine', () => {
  it('returns alb for every ALB request type', () => {
    for (const type of ['http', 'https', 'h2', 'grpcs', 'ws', 'wss']) {
      expect(classify(albLine({ type })), type).toBe('alb');
    }
  });
  it('returns elb for Classic ELB lines of 12 and 15 fields and TCP listeners', () => {
    expect(classify(elbLine())).toBe('elb');
    expect(classify(elbLine({ fields: 12 }))).toBe('elb');
    expect(classify(elbTcpLine())).toBe('elb');
  });
  it('returns nlb-tls for NLB TLS lines and alb-connection for ALB connection logs', () => {
    expect(classify(nlbTlsLine())).toBe('nlb-tls');
    expect(classify(albConnectionLine())).toBe('alb-connection');
    expect(classify(albConnectionLine('2001:db8::7'))).toBe('alb-connection');
  });
  it('classifies by structure when the client address or timestamp is invalid', () => {
    expect(classify(albLine({ client: 'x.x.x.x:80' }))).toBe('alb');
    expect(classify(albLine({ time: '2024-13-45T99:99:99.000000Z' }))).toBe('alb');
    expect(classify(elbLine({ client: 'x.x.x.x:80' }))).toBe('elb');
  });
  it('returns null for anything else', () => {
    for (const line of [
      '',
      'Enable AccessLog for ELB: edge-classic at 2024-05-01T10:04:07.318Z',
      '2024-05-01\t10:04:07\tLHR62-C2\t2390\t192.0.2.7\tGET\td111111abcdef8.cloudfront.net',
      '{"timestamp(ms)":"1714557847318","c-ip":"192.0.2.7"}',
      '#Version: 1.0',
      'http 2024-05-01T10:04:07.318291Z net/edge/50dc 192.0.2.7:1 -',
      'https not-a-time app/edge-test/50dc6c495c0c9188 192.0.2.7:1 -',
      'tls 2.0 yesterday net/edge-nlb/c6e77e28c25b2234',
      '2024-05-01T10:04:07.318291Z edge-classic 192.0.2.7 10.0.0.1',
    ]) {
      expect(classify(line), line).toBeNull();
    }
  });
});

describe('createAlbParser', () => {
  it('returns every field when the rules need them all', () => {
    expect(
      parse(
        albLine({
          client: '198.51.100.23:41786',
          status: '404',
          request: requestText(
            'POST',
            'https://WWW.Example.COM:443/login/form?user=a&b=%22',
            'HTTP/2.0',
          ),
          time: '2024-05-01T10:04:07.318291Z',
          requestCreationTime: '2024-05-01T10:03:59.912000Z',
        }),
      ),
    ).toEqual({
      ip: '198.51.100.23',
      minute: minuteOf('2024-05-01T10:03:00Z'),
      method: 'POST',
      path: '/login/form',
      host: 'www.example.com',
      status: 404,
    });
  });

  it('decodes only ip, minute and status when the rules need nothing else', () => {
    const out = parse(albLine({ status: '503' }), NONE);
    expect(out).toEqual({
      ip: '192.0.2.7',
      minute: minuteOf('2024-05-01T10:04:00Z'),
      method: null,
      path: null,
      host: null,
      status: 503,
    });
  });

  it('decodes each request field on its own', () => {
    const line = albLine({
      request: requestText('DELETE', 'http://api.example.com:8080/v1/items/9?x=1'),
    });
    const only = (k: keyof FieldNeeds) => parse(line, { ...NONE, [k]: true }) as ParsedRequest;
    expect(only('method')).toMatchObject({ method: 'DELETE', path: null, host: null });
    expect(only('path')).toMatchObject({ method: null, path: '/v1/items/9', host: null });
    expect(only('host')).toMatchObject({ method: null, path: null, host: 'api.example.com' });
  });

  it('leaves no value of a previous line in the reused output', () => {
    const parser = createAlbParser(ALL);
    const first = embed(albLine({ status: '200' }));
    const second = embed(albLine({ status: '-', request: '- - -' }));
    const out = fresh();
    expect(parser.parse(first.buf, first.start, first.end, out)).toBeNull();
    expect(out.path).toBe('/index.html');
    expect(parser.parse(second.buf, second.start, second.end, out)).toBeNull();
    expect(out).toMatchObject({ method: null, path: null, host: null, status: null });
  });

  it('reads the minute from request_creation_time, else from time', () => {
    const time = '2024-05-01T10:04:07.318291Z';
    const at = (created: string, fields?: number) =>
      (parse(albLine({ time, requestCreationTime: created, fields }), NONE) as ParsedRequest)
        .minute;
    expect(at('2024-05-01T09:58:01.000000Z')).toBe(minuteOf('2024-05-01T09:58:00Z'));
    expect(at('-')).toBe(minuteOf('2024-05-01T10:04:00Z'));
    expect(at('2024-05-01T09:61:01.000000Z')).toBe(minuteOf('2024-05-01T10:04:00Z'));
    expect(at('2024-05-01T09:58:01.000000Z', 21)).toBe(minuteOf('2024-05-01T10:04:00Z'));
    expect(at('2024-05-01T09:58:01Z')).toBe(minuteOf('2024-05-01T09:58:00Z'));
  });

  it('reads lines of 13 to 40 fields, ignoring the ones it does not know', () => {
    for (let fields = 13; fields <= 40; fields++) {
      const out = parse(albLine({ fields, client: '203.0.113.9:1' }));
      expect(out, `${fields} fields`).toMatchObject({ ip: '203.0.113.9', status: 200 });
    }
  });

  it('splits IPv6 clients, written without brackets, on the last colon', () => {
    const ipOf = (client: string) => (parse(albLine({ client }), NONE) as ParsedRequest).ip;
    expect(ipOf('2001:db8::1:41786')).toBe('2001:db8::1');
    expect(ipOf('2001:0DB8:0000:0000:0000:0000:0000:0001:443')).toBe('2001:db8::1');
    expect(ipOf('::ffff:192.0.2.7:41786')).toBe('192.0.2.7');
    expect(ipOf('2601:6bbc:c529:9dad:6bbc:c529:9dad:6bbc:50599')).toBe(
      '2601:6bbc:c529:9dad:6bbc:c529:9dad:6bbc',
    );
  });

  it('lower-cases hosts and strips their port, keeping IPv6 brackets', () => {
    const hostOf = (url: string) =>
      (
        parse(albLine({ request: requestText('GET', url) }), {
          ...NONE,
          host: true,
        }) as ParsedRequest
      ).host;
    expect(hostOf('https://WWW.EXAMPLE.com:443/')).toBe('www.example.com');
    expect(hostOf('http://www.example.com/')).toBe('www.example.com');
    expect(hostOf('https://[2001:DB8::1]:443/a')).toBe('[2001:db8::1]');
    expect(hostOf('http://198.51.100.1:80')).toBe('198.51.100.1');
    expect(hostOf('http://user:secret@Example.com:80/')).toBe('example.com');
    expect(hostOf('/origin/form/only')).toBeNull();
  });

  it('returns the path as logged, without query or fragment', () => {
    const pathOf = (url: string) =>
      (
        parse(albLine({ request: requestText('GET', url) }), {
          ...NONE,
          path: true,
        }) as ParsedRequest
      ).path;
    expect(pathOf('https://www.example.com:443/a%20b/c.php?x=1?y')).toBe('/a%20b/c.php');
    expect(pathOf('https://www.example.com:443/a#frag')).toBe('/a');
    expect(pathOf('https://www.example.com:443/:@a:b')).toBe('/:@a:b');
    expect(pathOf('https://www.example.com:443?x=1')).toBeNull();
    expect(pathOf('https://www.example.com:443')).toBeNull();
    expect(pathOf('/origin/form?q')).toBe('/origin/form');
    expect(pathOf('/caf\u00e9')).toBe('/caf\u00e9');
    // The URL runs from the first space to the last one.
    expect(pathOf('http://h/a b/c?d e')).toBe('/a b/c');
  });

  it('starts the path at the first slash after the Host header the balancer wrote', () => {
    const out = parse(
      albLine({ request: requestText('GET', 'http://Evil.example?x=1:80/real/path?q') }),
    );
    expect(out).toMatchObject({ host: 'evil.example', path: '/real/path' });
  });

  it('gives null method, path and host for "- - -" requests', () => {
    expect(parse(albLine({ request: '- - -', status: '400' }))).toMatchObject({
      method: null,
      path: null,
      host: null,
      status: 400,
    });
  });

  it('reads what it can of a request with no method', () => {
    expect(parse(albLine({ request: '- http://www.example.com:80- -' }))).toMatchObject({
      method: null,
      path: null,
      host: 'www.example.com',
    });
  });

  it('skips quoted fields holding spaces and escaped quotes', () => {
    const out = parse(
      albLine({
        userAgent: 'Mozilla/5.0 "evil" \\ agent \\',
        domainName: 'we"ird name',
        requestCreationTime: '2024-05-01T09:01:02.000000Z',
      }),
    );
    expect(out).toMatchObject({ ip: '192.0.2.7', minute: minuteOf('2024-05-01T09:01:00Z') });
  });

  it('unescapes the request field', () => {
    const out = parse(
      albLine({ request: requestText('GET', 'http://www.example.com/a"b\\c?d"e') }),
    );
    expect(out).toMatchObject({ method: 'GET', path: '/a"b\\c', host: 'www.example.com' });
    const method = parse(albLine({ request: requestText('G"T', 'http://h"st.example.com/') }));
    expect(method).toMatchObject({ method: 'G"T', path: '/', host: 'h"st.example.com' });
  });

  it('returns each line its own path and host from a reused parser', () => {
    const parser = createAlbParser({ ...NONE, path: true, host: true });
    const urls = [
      ['http://a.example/a', 'a.example', '/a'],
      ['http://A.example:8080/b', 'a.example', '/b'],
      ['http://b.example/a', 'b.example', '/a'],
      ['http://b.example/caf\u00e9', 'b.example', '/caf\u00e9'],
      ['http://a.example?x', 'a.example', null],
      ['http://a.example.org/', 'a.example.org', '/'],
      ['http://a.example/a', 'a.example', '/a'],
    ] as const;
    for (const [url, host, path] of urls) {
      const out = parse(albLine({ request: requestText('GET', url) }), NONE, parser);
      expect(out, url).toMatchObject({ host, path });
    }
  });

  it('reads a quoted field with no space after its closing quote', () => {
    const line = albLine({ requestCreationTime: '2024-05-01T09:01:02.000000Z' }).replace(
      `${quoted('arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012')} 1`,
      `${quoted('-')}1`,
    );
    expect(line).toContain('"-"1 2024');
    expect(parse(line)).toMatchObject({ minute: minuteOf('2024-05-01T09:01:00Z') });
  });

  it('returns a null status for "-" and rejects a status that is not three digits', () => {
    expect(parse(albLine({ status: '-' }))).toMatchObject({ status: null });
    for (const status of ['20', '2000', 'abc', '099', '']) {
      expect(parse(albLine({ status }), NONE), status).toBe(REJECT.status);
    }
  });

  it('rejects invalid client addresses', () => {
    for (const client of [
      'x.x.x.x:80',
      'x.0.0.0:50337',
      '-',
      '192.0.2.7',
      '192.0.2.7:',
      '192.0.2.7:65536',
      '192.0.2.7:12a',
      '256.0.2.7:80',
      'www.example.com:80',
      '[2001:db8::1]:443',
      '2001:db8::1',
    ]) {
      expect(parse(albLine({ client }), NONE), client).toBe(REJECT.client);
    }
  });

  it('rejects a row whose time and request_creation_time are both invalid', () => {
    for (const time of ['2024-02-30T10:00:00.000000Z', '-', '2024-05-01T10:04:07', '1714557847']) {
      expect(parse(albLine({ time, requestCreationTime: '-' }), NONE), time).toBe(REJECT.timestamp);
    }
  });

  it('rejects truncated rows', () => {
    const line = albLine();
    for (let fields = 1; fields <= 12; fields++) {
      expect(parse(albLine({ fields })), `${fields} fields`).toBe(REJECT.truncated);
    }
    // Cut inside the request, the user agent and the trace id.
    for (const marker of ['/index', 'curl/', 'Root=1']) {
      const cut = line.slice(0, line.indexOf(marker) + 3);
      expect(parse(cut), cut).toBe(REJECT.truncated);
    }
  });

  it('rejects a row cut inside a quoted field even when a quote follows the line', () => {
    const line = `${albLine({ fields: 14 }).replace(/"curl\/8\.5\.0"$/, '"-')}`;
    expect(line.endsWith(' "-')).toBe(true);
    const buf = Buffer.from(`${line}"\n`);
    expect(createAlbParser(ALL).parse(buf, 0, line.length, fresh())).toBe(REJECT.truncated);
  });

  it('rejects a row whose request field is not quoted', () => {
    expect(parse(albLine({ raw: { 12: 'GET' } }))).toBe(REJECT.request);
  });

  it('never throws, whatever the bytes', () => {
    const parser = createAlbParser(ALL);
    const line = albLine();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
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
    const parser = createAlbParser(ALL);
    fc.assert(
      fc.property(generatedRequestArb, fc.integer({ min: 13, max: 42 }), (g, fields) => {
        const line = albLine({
          client: g.client,
          time: g.time,
          status: g.statusText,
          request: g.request,
          userAgent: g.userAgent,
          requestCreationTime: g.created,
          fields,
          extra: g.extra,
        });
        const created = fields >= 22 && g.createdMs !== null;
        expect(parse(line, ALL, parser)).toEqual({
          ip: g.ip,
          minute: Math.floor((created ? (g.createdMs ?? 0) : g.timeMs) / 60000),
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

describe('MinuteCache', () => {
  it('agrees with minuteFromIso on any sequence of timestamps', () => {
    const iso = fc
      .tuple(fc.integer({ min: 0, max: 4102444799999 }), fc.nat(5), fc.string({ maxLength: 3 }))
      .map(([ms, form, noise]) => {
        const text = new Date(ms).toISOString();
        if (form === 0) return text;
        if (form === 1) return text.replace(/\.\d+Z$/, 'Z');
        if (form === 2) return text.replace('Z', '123Z');
        if (form === 3) return text.slice(0, 17) + noise + text.slice(17 + noise.length);
        if (form === 4) return text.replace(/:\d\d\./, ':60.');
        return text.replace(/\.\d+Z$/, '.Z');
      });
    fc.assert(
      fc.property(fc.array(iso, { minLength: 1, maxLength: 20 }), (texts) => {
        const cache = new MinuteCache();
        for (const text of texts) {
          const buf = Buffer.from(text);
          expect(cache.get(buf, 0, buf.length), text).toBe(minuteFromIso(buf, 0, buf.length));
        }
      }),
    );
  });
  it('checks the seconds and fraction of a timestamp in a cached minute', () => {
    const cache = new MinuteCache();
    const get = (t: string) => cache.get(Buffer.from(t), 0, t.length);
    expect(get('2024-05-01T10:04:07.318291Z')).toBe(minuteOf('2024-05-01T10:04:00Z'));
    expect(get('2024-05-01T10:04:61.000000Z')).toBe(-1);
    expect(get('2024-05-01T10:04:6a.000000Z')).toBe(-1);
    expect(get('2024-05-01T10:04:07.31x291Z')).toBe(-1);
    expect(get('2024-05-01T10:04:07.Z')).toBe(-1);
    expect(get('2024-05-01T10:04:07')).toBe(-1);
    expect(get('2024-05-01T10:04:59Z')).toBe(minuteOf('2024-05-01T10:04:00Z'));
  });
});

// ---------------------------------------------------------------------------
// Conformance: real ALB and NLB lines from the shared corpus, read in place.
// ---------------------------------------------------------------------------

const HAVE_CORPUS = corpusPresent('ALB corpus samples');

interface CorpusLine {
  readonly offset: number;
  readonly number: number;
  readonly text: string;
}

/** Non-blank, non-comment lines of a sample (gunzipped when it is gzip), with byte offsets. */
function corpusLines(file: string): CorpusLine[] {
  let data = readFileSync(join(SAMPLES, file));
  if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
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

/** Host part of a `host:port` oracle value, split on the last colon. */
function hostOfHostPort(text: string): string {
  return text.slice(0, text.lastIndexOf(':'));
}

const ACCEPTED_REASONS: string[] = Object.values(REJECT);

describe.runIf(HAVE_CORPUS)(
  HAVE_CORPUS
    ? 'ALB corpus samples (../shared/corpus)'
    : 'ALB corpus samples: skipped, ../shared/corpus is not present in this checkout',
  () => {
    const files = HAVE_CORPUS ? readdirSync(SAMPLES) : [];
    const albFiles = files.filter(
      (f) =>
        f === 'filebeat_elb_application-lb-http.log' ||
        f === 'filebeat_elb_example-alb-http.log' ||
        f === 'vrl_parse_aws_alb_log_tests.log' ||
        (f.startsWith('dpetzold_loadbalancer') && !f.includes('classic')) ||
        f.startsWith('awsdocs_alb_') ||
        (f.startsWith('awswafsec_') && f.includes('elasticloadbalancing') && f.endsWith('.gz')),
    );

    it('finds the ALB samples it expects', () => {
      expect(albFiles.length).toBeGreaterThanOrEqual(19);
    });

    it('classifies every ALB line as alb and parses it or rejects it with a known reason', () => {
      let parsed = 0;
      for (const file of albFiles) {
        let parsedHere = 0;
        for (const line of corpusLines(file)) {
          const where = `${file}:${line.number}`;
          expect(classify(line.text), where).toBe('alb');
          const out = parse(line.text);
          if (typeof out === 'string') expect(ACCEPTED_REASONS, where).toContain(out);
          else {
            expect(out.minute, where).toBeGreaterThan(0);
            parsedHere++;
          }
        }
        // Only the WAF security automations sample has no valid client (sanitised).
        if (!file.startsWith('awswafsec_')) expect(parsedHere, file).toBeGreaterThan(0);
        parsed += parsedHere;
      }
      // A parser that rejected every line would pass the loop above: 60 of
      // the samples' lines are valid requests.
      expect(parsed).toBeGreaterThanOrEqual(60);
    });

    it('rejects the sanitised x.x.x.x clients of the WAF security automations sample', () => {
      const file = albFiles.find((f) => f.startsWith('awswafsec_'));
      expect(file).toBeDefined();
      const lines = corpusLines(file ?? '');
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(parse(line.text), `line ${line.number}`).toBe(REJECT.client);
    });

    it('reads the client addresses the filebeat expected files hold', () => {
      for (const [file, json] of [
        [
          'filebeat_elb_application-lb-http.log',
          'filebeat_elb_application-lb-http.log-expected.condensed.json',
        ],
        [
          'filebeat_elb_example-alb-http.log',
          'filebeat_elb_example-alb-http.log-expected.condensed.json',
        ],
      ] as const) {
        const events = (oracle(json) as { events: { 'log.offset': number; 'source.ip': string }[] })
          .events;
        const byOffset = new Map(corpusLines(file).map((l) => [l.offset, l.text]));
        expect(events.length, file).toBe(byOffset.size);
        for (const event of events) {
          const text = byOffset.get(event['log.offset']);
          expect(text, `${file}@${event['log.offset']}`).toBeDefined();
          expect(parse(text ?? ''), `${file}@${event['log.offset']}`).toMatchObject({
            ip: event['source.ip'],
          });
        }
      }
    });

    it('reads the client addresses the vrl expected results hold', () => {
      const cases = oracle('vrl_parse_aws_alb_log_tests-expected.json') as {
        name: string;
        client_host: string;
      }[];
      const lines = corpusLines('vrl_parse_aws_alb_log_tests.log');
      expect(lines.length).toBe(cases.length);
      cases.forEach((c, i) => {
        expect(parse(lines[i]?.text ?? ''), c.name).toMatchObject({
          ip: hostOfHostPort(c.client_host),
        });
      });
    });

    it('classifies the NLB TLS samples as nlb-tls', () => {
      const nlb = files.filter(
        (f) => f.startsWith('awsdocs_nlb_') || f === 'filebeat_elb_example-nlb-tcp.log',
      );
      expect(nlb.length).toBe(2);
      for (const file of nlb) {
        for (const line of corpusLines(file)) expect(classify(line.text), file).toBe('nlb-tls');
      }
    });

    it('classifies no CloudFront or other sample as an ELB-family log', () => {
      const others = files.filter(
        (f) =>
          (f.toLowerCase().includes('cloudfront') && !albFiles.includes(f)) ||
          f === 'ELBAccessLogTestFile',
      );
      expect(others.length).toBeGreaterThan(0);
      for (const file of others) {
        for (const line of corpusLines(file).slice(0, 8)) {
          expect(classify(line.text), `${file}:${line.number}`).toBeNull();
        }
      }
    });
  },
);

// The fixture factories follow the documented field list.
describe('albLine', () => {
  it('writes the 33 documented fields by default', () => {
    const line = albLine();
    expect(ALB_FIELDS).toHaveLength(33);
    expect(line.startsWith('https 2024-05-01T10:04:07.318291Z app/edge-test/')).toBe(true);
    expect(line).toContain(` ${clientPort('192.0.2.7')} 10.0.0.1:80 `);
    expect(line.endsWith('TID_1234abcd5678ef90 "-" "-" "-"')).toBe(true);
  });
});
