import { Readable } from 'node:stream';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CF_REJECT, FIELDS_PROBLEM } from '../../lambda/core/formats/cloudfront';
import { SKIP_REASON } from '../../lambda/core/formats/detect';
import { NUL_REASON, tooLongReason } from '../../lambda/core/lines';
import { MAX_LINE_BYTES, scanStream } from '../../lambda/core/scan';
import type { FieldNeeds, FileScan, ParsedRequest } from '../../lambda/core/types';
import {
  albConnectionLine,
  albLine,
  byteByByte,
  CF_LEGACY_FIELDS,
  cfFieldsHeader,
  cfJsonLine,
  cfLegacyFile,
  cfRequest,
  cfRow,
  chunked,
  elbLine,
  failingAfter,
  gz,
  logFile,
  nlbTlsLine,
  noise,
} from '../fixtures/logs';
import { checkedRequest } from '../fixtures/request';

const ALL: FieldNeeds = { method: true, path: true, host: true, status: true };
const NONE: FieldNeeds = { method: false, path: false, host: false, status: false };

async function scan(
  input: Readable | string | Buffer,
  needs: FieldNeeds = ALL,
  maxLineBytes?: number,
): Promise<{ result: FileScan; requests: ParsedRequest[] }> {
  const stream =
    input instanceof Readable
      ? input
      : chunked(typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
  const requests: ParsedRequest[] = [];
  const result = await scanStream(stream, { needs, maxLineBytes }, (req) =>
    requests.push(checkedRequest(req)),
  );
  return { result, requests };
}

const minuteOf = (ms: number): number => Math.floor(ms / 60000);
const T0 = Date.UTC(2024, 4, 1, 10, 4, 30);

/** `n` requests from distinct documentation addresses, one per 20 seconds. */
function requests(n: number) {
  return Array.from({ length: n }, (_, i) =>
    cfRequest({ ip: `198.51.100.${i % 250}`, at: T0 + i * 20_000, path: `/p/${i}` }),
  );
}

describe('scanStream', () => {
  it('reads a plain legacy CloudFront file', async () => {
    const reqs = requests(5);
    const { result, requests: got } = await scan(cfLegacyFile(reqs));
    expect(result).toEqual({
      format: 'cloudfront',
      lines: 5,
      requests: 5,
      rejected: 0,
      firstRejected: null,
      skipped: null,
      damaged: null,
      minMinute: minuteOf(reqs[0]!.at),
      maxMinute: minuteOf(reqs[4]!.at),
    });
    expect(got.map((r) => r.path)).toEqual(['/p/0', '/p/1', '/p/2', '/p/3', '/p/4']);
    expect(got[0]).toEqual({
      ip: '198.51.100.0',
      minute: minuteOf(T0),
      method: 'GET',
      path: '/p/0',
      host: 'www.example.com',
      status: 200,
    });
  });

  it('reads gzip by its magic bytes, multi-member gzip included', async () => {
    const reqs = requests(30);
    const text = cfLegacyFile(reqs);
    const plain = await scan(text);
    const zipped = await scan(gz(text));
    expect(zipped).toEqual(plain);
    const rows = reqs.map((r) => cfRow(r));
    const twoMembers = Buffer.concat([
      gz(logFile([cfFieldsHeader(), ...rows.slice(0, 10)])),
      gz(logFile(rows.slice(10))),
    ]);
    const multi = await scan(twoMembers);
    expect(multi.result.requests).toBe(30);
    expect(multi.requests.map((r) => r.path)).toEqual(plain.requests.map((r) => r.path));
  });

  it('gives identical results for every chunking, CRLF, multibyte UTF-8 and no final newline', async () => {
    const special = [
      cfRequest({ path: '/caf\u00e9/\u{1f600}/\u4e2d', userAgent: 'Agent/\u00fc\u{1f680}' }),
      cfRequest({ ip: 'x.x.x.x' }),
      cfRequest({ ip: '2001:DB8::1', hostHeader: 'WWW.Example.com:443' }),
      ...requests(6),
    ];
    const lines = [
      '#Version: 1.0',
      cfFieldsHeader(),
      '',
      ...special.map((r) => cfRow(r)),
      '# a comment',
      `${'q'.repeat(1200)}`,
      cfRow(cfRequest({ path: '/last' })),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.nat(5000), { maxLength: 30 }),
        async (eol, finalNewline, zip, cuts) => {
          const text = Buffer.from(logFile(lines, { eol, finalNewline }), 'utf8');
          const data = zip ? gz(text) : text;
          const whole = await scan(chunked(data), ALL, 1000);
          expect(whole.result.requests).toBe(special.length);
          expect(whole.result.rejected).toBe(2);
          expect(whole.requests[0]!.path).toBe('/caf\u00e9/\u{1f600}/\u4e2d');
          expect(whole.requests.at(-1)!.path).toBe('/last');
          expect(await scan(chunked(data, cuts), ALL, 1000)).toEqual(whole);
        },
      ),
      { numRuns: 60 },
    );
    const text = Buffer.from(logFile(lines, { eol: '\r\n', finalNewline: false }), 'utf8');
    expect(await scan(byteByByte(text), ALL, 1000)).toEqual(await scan(chunked(text), ALL, 1000));
    const zipped = gz(text);
    expect(await scan(byteByByte(zipped), ALL, 1000)).toEqual(
      await scan(chunked(zipped), ALL, 1000),
    );
  });

  it('counts every line before a truncated gzip ends and reports the file damaged', async () => {
    const reqs = requests(3000);
    const zipped = gz(cfLegacyFile(reqs));
    const received = zipped.subarray(0, Math.floor(zipped.length * 0.6));
    // Oracle: all the truncated stream decodes to, then its complete rows.
    const decodable = gunzipSync(received, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    const completeRows = decodable.toString('utf8').split('\n').length - 1 - 2;
    expect(completeRows).toBeGreaterThan(100);
    for (const input of [
      chunked(received),
      chunked(received, [5000, 9000]),
      byteByByte(received),
    ]) {
      const { result, requests: got } = await scan(input);
      expect(result).toMatchObject({
        format: 'cloudfront',
        damaged: 'gzip: unexpected end of file',
        requests: completeRows,
        rejected: 0,
      });
      expect(got.map((r) => r.path)).toEqual(reqs.slice(0, completeRows).map((r) => r.path));
    }
  });

  it('on a read error inside gzip, still counts every line inflated from the bytes received', async () => {
    const zipped = gz(cfLegacyFile(requests(3000)));
    const received = zipped.subarray(0, Math.floor(zipped.length * 0.6));
    const truncated = await scan(received);
    const parts = [received.subarray(0, 5000), received.subarray(5000)];
    const failed = await scan(failingAfter(parts, 'connection reset'));
    expect(failed.result).toEqual({ ...truncated.result, damaged: 'read error: connection reset' });
    expect(failed.requests).toEqual(truncated.requests);
  });

  it('reads a large gzip object whole, through the queue limits', async () => {
    const reqs = requests(20_000);
    const zipped = gz(cfLegacyFile(reqs));
    let slow = 0;
    const result = await scanStream(
      chunked(zipped, [1000, 50_000, 200_000]),
      { needs: NONE },
      () => {
        // A callback slower than inflating makes the queue fill and the input pause.
        for (let i = 0; i < 200; i++) slow ^= i;
      },
    );
    expect(result).toMatchObject({
      format: 'cloudfront',
      requests: 20_000,
      rejected: 0,
      damaged: null,
    });
    expect(slow).toBe(0);
  });

  it('reads a highly compressed object whole, with a callback slower than inflating', async () => {
    // 40k identical rows inflate to ~16 MB from a few kilobytes.
    const row = cfRow(cfRequest());
    const zipped = gz(logFile(Array.from({ length: 40_000 }, () => row)));
    expect(zipped.length).toBeLessThan(200_000);
    let n = 0;
    const result = await scanStream(chunked(zipped), { needs: NONE }, () => {
      for (let i = 0; i < 400; i++) n += i & 1;
    });
    expect(result).toMatchObject({ format: 'cloudfront', requests: 40_000, damaged: null });
    expect(n).toBe(40_000 * 200);
  });

  it('reports a corrupt gzip stream as damaged', async () => {
    const zipped = gz(cfLegacyFile(requests(50)));
    const corrupt = Buffer.from(zipped);
    corrupt.fill(0x55, 20, 60);
    const { result } = await scan(corrupt);
    expect(result.damaged).toMatch(/^gzip: /);
    expect(result.damaged).not.toContain('\n');
  });

  it('counts the lines before a read error and reports the file damaged', async () => {
    const reqs = requests(4);
    const text = Buffer.from(cfLegacyFile(reqs));
    const cutAt = text.indexOf(cfRow(reqs[3]!)) + 10;
    const input = failingAfter(
      [text.subarray(0, 100), text.subarray(100, cutAt)],
      'socket hang up',
    );
    const { result, requests: got } = await scan(input);
    expect(result).toMatchObject({
      format: 'cloudfront',
      requests: 3,
      rejected: 0,
      damaged: 'read error: socket hang up',
    });
    expect(got).toHaveLength(3);
  });

  it('reports a stream that fails before its first byte as damaged, with no format', async () => {
    const { result } = await scan(failingAfter([], 'access denied'));
    expect(result).toMatchObject({
      format: null,
      skipped: null,
      lines: 0,
      damaged: 'read error: access denied',
    });
  });

  it('reads a stream that was paused before, and reports a stream of objects as damaged', async () => {
    const paused = chunked(Buffer.from(cfLegacyFile(requests(2))));
    paused.pause();
    expect((await scan(paused)).result).toMatchObject({ format: 'cloudfront', requests: 2 });
    const objects = Readable.from([{ not: 'bytes' }]);
    expect((await scan(objects)).result).toMatchObject({
      format: null,
      damaged: 'read error: not a byte stream (a chunk of type object)',
    });
  });

  it('rejects a 20 MB line without newline as one line, in bounded memory', async () => {
    const head = Buffer.from(cfLegacyFile(requests(3)));
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const total = 20 * 1024 * 1024;
    let sent = -1;
    let peak = 0;
    const before = process.memoryUsage().arrayBuffers;
    // The same chunk object again and again: growth is the scanner's.
    const input = new Readable({
      read() {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
        if (sent < 0) {
          sent = 0;
          this.push(head);
        } else if (sent < total) {
          sent += chunk.length;
          this.push(chunk);
        } else {
          this.push(null);
        }
      },
    });
    const { result } = await scan(input);
    expect(result).toMatchObject({
      format: 'cloudfront',
      requests: 3,
      rejected: 1,
      firstRejected: { line: 6, reason: tooLongReason(MAX_LINE_BYTES) },
    });
    expect(peak).toBeLessThan(4 * 1024 * 1024);
  });

  it('rejects a line with a NUL byte', async () => {
    const rows = requests(3).map((r) => cfRow(r));
    const text = logFile([
      rows[0]!,
      `${rows[1]!.slice(0, 30)}\u0000${rows[1]!.slice(31)}`,
      rows[2]!,
    ]);
    const { result } = await scan(text);
    expect(result).toMatchObject({
      format: 'cloudfront',
      requests: 2,
      rejected: 1,
      firstRejected: { line: 2, reason: NUL_REASON },
    });
  });

  it('skips binary noise; with gzip magic it is a damaged gzip', async () => {
    const bytes = noise(200_000);
    bytes[0] = 0x00;
    const { result } = await scan(bytes);
    expect(result).toMatchObject({ format: null, lines: 0, skipped: SKIP_REASON.notLog });
    const fake = Buffer.concat([Buffer.from([0x1f, 0x8b]), noise(5000)]);
    const fakeGz = await scan(fake);
    expect(fakeGz.result).toMatchObject({ format: null, lines: 0 });
    expect(fakeGz.result.damaged).toMatch(/^gzip: /);
  });

  it('skips an empty file, plain or gzip, and one of blank lines only', async () => {
    for (const input of [Buffer.alloc(0), gz(''), Buffer.from('\n\r\n  \n')]) {
      const { result } = await scan(input);
      expect(result).toEqual({
        format: null,
        lines: 0,
        requests: 0,
        rejected: 0,
        firstRejected: null,
        skipped: SKIP_REASON.empty,
        damaged: null,
        minMinute: null,
        maxMinute: null,
      });
    }
  });

  it('treats a header-only CloudFront file as CloudFront with no lines', async () => {
    const { result } = await scan(logFile(['#Version: 1.0', cfFieldsHeader()]));
    expect(result).toMatchObject({ format: 'cloudfront', lines: 0, skipped: null });
  });

  it('skips a file whose #Fields lacks c-ip or a time, without reading the rest', async () => {
    const noIp = ['date', 'time', 'cs-method'];
    let pulled = 0;
    const rows = Array.from({ length: 10_000 }, () => cfRow(cfRequest(), noIp));
    const body = Buffer.from(logFile([cfFieldsHeader(noIp), ...rows]));
    const input = new Readable({
      read() {
        const at = pulled * 1024;
        pulled++;
        this.push(at < body.length ? body.subarray(at, at + 1024) : null);
      },
    });
    const { result } = await scan(input);
    expect(result).toMatchObject({ format: null, lines: 0, skipped: FIELDS_PROBLEM.clientIp });
    expect(pulled * 1024).toBeLessThan(body.length / 2);
    expect(input.destroyed).toBe(true);
    const noTime = ['c-ip', 'cs-method', 'date'];
    const t = await scan(logFile([cfFieldsHeader(noTime), cfRow(cfRequest(), noTime)]));
    expect(t.result).toMatchObject({ format: null, skipped: FIELDS_PROBLEM.time });
  });

  it('skips NLB TLS logs, ALB connection logs and other objects with a reason', async () => {
    expect((await scan(logFile([nlbTlsLine(), nlbTlsLine()]))).result).toMatchObject({
      format: null,
      skipped: SKIP_REASON.nlbTls,
    });
    expect((await scan(logFile([albConnectionLine(), albConnectionLine()]))).result).toMatchObject({
      format: null,
      skipped: SKIP_REASON.albConnection,
    });
    const testFile = 'Enable AccessLog for ELB: edgeban-test at 2024-05-01T10:04:30.000Z';
    expect((await scan(testFile)).result).toMatchObject({
      format: null,
      skipped: SKIP_REASON.notLog,
    });
    const spaced = cfLegacyFile(requests(3)).replaceAll('\t', ' ');
    expect((await scan(spaced)).result).toMatchObject({
      format: null,
      skipped: SKIP_REASON.notLog,
    });
  });

  it('reads CloudFront JSON lines, and skips JSON lines without c-ip', async () => {
    const fields = ['timestamp(ms)', 'c-ip', 'cs-method', 'cs-uri-stem', 'sc-status'];
    const reqs = requests(4);
    const { result, requests: got } = await scan(logFile(reqs.map((r) => cfJsonLine(r, fields))));
    expect(result).toMatchObject({ format: 'cloudfront-json', requests: 4, rejected: 0 });
    expect(got[2]).toMatchObject({ ip: '198.51.100.2', path: '/p/2', status: 200 });
    const noIp = logFile(reqs.map((r) => cfJsonLine(r, ['date', 'time', 'x-host-header'])));
    expect((await scan(noIp)).result).toMatchObject({
      format: null,
      skipped: SKIP_REASON.jsonClientIp,
    });
    const other = logFile(['{"general": {"a": 1}}', '{"uriList": {}}']);
    expect((await scan(other)).result).toMatchObject({ format: null, skipped: SKIP_REASON.notLog });
  });

  it('detects ALB and Classic ELB logs and hands them to their parsers', async () => {
    const alb = await scan(logFile([albLine(), albLine('2001:db8::9:5000')]));
    expect(alb.result).toMatchObject({ format: 'alb', requests: 2, rejected: 0 });
    expect(alb.requests.map((r) => r.ip)).toEqual(['192.0.2.7', '2001:db8::9']);
    const elb = await scan(logFile([elbLine(), elbLine('203.0.113.9:80')]));
    expect(elb.result).toMatchObject({ format: 'elb', requests: 2, rejected: 0 });
    expect(elb.requests.map((r) => r.ip)).toEqual(['192.0.2.7', '203.0.113.9']);
  });

  it('lets the majority of the first 8 lines decide; lines of another format are rejected', async () => {
    const rows = requests(6).map((r) => cfRow(r));
    const text = logFile([
      rows[0]!,
      albLine(),
      rows[1]!,
      rows[2]!,
      albLine(),
      rows[3]!,
      rows[4]!,
      elbLine(),
      rows[5]!,
    ]);
    const { result } = await scan(text);
    expect(result).toMatchObject({
      format: 'cloudfront',
      requests: 6,
      rejected: 3,
      firstRejected: { line: 2, reason: CF_REJECT.truncated },
    });
    const mostlyAlb = logFile([albLine(), cfRow(cfRequest()), albLine(), albLine()]);
    expect((await scan(mostlyAlb)).result).toMatchObject({
      format: 'alb',
      requests: 3,
      rejected: 1,
    });
    const mostlyNoise = logFile(['garbage one', cfRow(cfRequest()), 'garbage two']);
    expect((await scan(mostlyNoise)).result).toMatchObject({
      format: null,
      skipped: SKIP_REASON.notLog,
    });
  });

  it('rejects every line of another format, whatever the file format', async () => {
    const json = (r = cfRequest()) => cfJsonLine(r, ['c-ip', 'timestamp(ms)', 'cs-method']);
    const kinds: Record<string, () => string> = {
      cloudfront: () => cfRow(cfRequest()),
      'cloudfront-json': json,
      alb: () => albLine(),
      elb: () => elbLine(),
    };
    for (const [format, make] of Object.entries(kinds)) {
      const own = Array.from({ length: 8 }, make);
      const others = [
        ...Object.entries(kinds)
          .filter(([other]) => other !== format)
          .map(([, other]) => other()),
        nlbTlsLine(),
        albConnectionLine(),
      ];
      const { result } = await scan(logFile([...own, ...others]));
      expect(result).toMatchObject({ format, requests: 8, rejected: others.length });
    }
  });

  it('detects the format from rows whose clients are invalid, then rejects them', async () => {
    const bad = Array.from({ length: 9 }, () => cfRow(cfRequest({ ip: 'x.x.x.x' })));
    const good = requests(2).map((r) => cfRow(r));
    const { result } = await scan(logFile(['#', ...bad, ...good]));
    expect(result).toMatchObject({
      format: 'cloudfront',
      requests: 2,
      rejected: 9,
      firstRejected: { line: 2, reason: CF_REJECT.client },
    });
  });

  it('re-maps the columns at a later #Fields header', async () => {
    const v2 = ['cs-uri-stem', 'sc-status', 'c-ip', 'timestamp(ms)', 'cs-method'];
    const a = requests(3);
    const b = requests(13).slice(10);
    const text = logFile([
      cfFieldsHeader(),
      ...a.map((r) => cfRow(r)),
      cfFieldsHeader(v2),
      ...b.map((r) => cfRow(r, v2)),
      cfFieldsHeader(['date', 'time', 'cs-method']),
      cfRow(cfRequest(), CF_LEGACY_FIELDS),
    ]);
    for (const input of [text, gz(text)]) {
      const { result, requests: got } = await scan(input);
      expect(result).toMatchObject({
        format: 'cloudfront',
        requests: 6,
        rejected: 1,
        firstRejected: { line: 10, reason: FIELDS_PROBLEM.clientIp },
      });
      expect(got.map((r) => `${r.ip} ${r.path} ${r.minute}`)).toEqual(
        [...a, ...b].map((r) => `${r.ip} ${r.path} ${minuteOf(r.at)}`),
      );
    }
  });

  it('counts neither blank nor comment lines, but numbers lines as they are in the file', async () => {
    const rows = requests(3).map((r) => cfRow(r));
    const text = logFile(
      ['#Version: 1.0', '', rows[0]!, '   ', '# note', rows[1]!, 'not a row', rows[2]!],
      {
        eol: '\r\n',
      },
    );
    const { result } = await scan(text);
    expect(result).toMatchObject({
      lines: 4,
      requests: 3,
      rejected: 1,
      firstRejected: { line: 7, reason: CF_REJECT.truncated },
    });
  });

  it('decides the format of a file shorter than 8 lines at its end', async () => {
    const { result } = await scan(cfRow(cfRequest()));
    expect(result).toMatchObject({ format: 'cloudfront', requests: 1 });
  });

  it('hands the callback one reused object, filled only as the rules need', async () => {
    const seen = new Set<ParsedRequest>();
    const copies: ParsedRequest[] = [];
    await scanStream(chunked(Buffer.from(cfLegacyFile(requests(20)))), { needs: NONE }, (req) => {
      seen.add(req);
      copies.push(checkedRequest(req));
    });
    expect(seen.size).toBe(1);
    expect(copies[19]).toEqual({
      ip: '198.51.100.19',
      minute: minuteOf(T0 + 19 * 20_000),
      method: null,
      path: null,
      host: null,
      status: null,
    });
  });

  it('lets an error of the callback propagate', async () => {
    const run = scanStream(chunked(Buffer.from(cfLegacyFile(requests(3)))), { needs: ALL }, () => {
      throw new Error('counter broke');
    });
    await expect(run).rejects.toThrow('counter broke');
  });

  it('honours maxLineBytes', async () => {
    const long = cfRow(cfRequest({ path: `/${'x'.repeat(600)}` }));
    const rows = [cfRow(cfRequest()), long, cfRow(cfRequest())];
    const { result } = await scan(logFile(rows), ALL, long.length - 1);
    expect(result).toMatchObject({
      requests: 2,
      firstRejected: { line: 2, reason: tooLongReason(long.length - 1) },
    });
  });
});
