import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAlbParser } from '../../lambda/core/formats/alb';
import { createCloudFrontParser } from '../../lambda/core/formats/cloudfront';
import { compileFilter, fieldNeeds, pathPrefixBytes } from '../../lambda/core/rules';
import type { ParsedRequest, Rule } from '../../lambda/core/types';

const base: Rule = { name: 'r', threshold: 1, windowMinutes: 1, ipv4Prefix: 32, ipv6Prefix: 64 };

function blank(): ParsedRequest {
  return { ip: '', minute: 0, method: null, path: null, host: null, status: null };
}

// Path bytes: ASCII, multi-byte UTF-8, and bytes that are not UTF-8.
const pathBytes = fc
  .array(
    fc.oneof(
      fc.constantFrom(...Buffer.from('/login/aé€😀-')),
      fc.integer({ min: 0x80, max: 0xff }),
      fc.integer({ min: 0x21, max: 0x7e }),
    ),
    { maxLength: 12 },
  )
  .map((b) => Buffer.from(b));

const prefixes = fc.oneof(
  fc.constantFrom('', '/', '/login', '/a', 'é', '/é', '\uFFFD', '/\uFFFD', '\uD83D', '😀', '-'),
  fc.string({ unit: 'binary', maxLength: 4 }),
);

describe('path rules over raw bytes', () => {
  it('match exactly as a prefix test on the decoded path', () => {
    fc.assert(
      fc.property(pathBytes, prefixes, (bytes, prefix) => {
        const filter = compileFilter({ ...base, path: prefix })!;
        const text = blank();
        text.path = bytes.length === 0 ? null : bytes.toString('utf8');
        const raw = blank();
        const buf = Buffer.concat([Buffer.from('xx'), bytes, Buffer.from('yy')]);
        raw.pathBuf = bytes.length === 0 ? null : buf;
        raw.pathStart = 2;
        raw.pathEnd = 2 + bytes.length;
        expect(filter(raw)).toBe(filter(text));
        expect(filter(text)).toBe(text.path?.startsWith(prefix) === true);
      }),
      { numRuns: 3000 },
    );
  });

  it('are tested on text when the prefix holds U+FFFD or a lone surrogate', () => {
    expect(pathPrefixBytes('/login')).toEqual(Buffer.from('/login'));
    expect(pathPrefixBytes('/\uFFFD')).toBeNull();
    expect(pathPrefixBytes('/\uD83D')).toBeNull();
    expect(fieldNeeds([{ ...base, path: '/a' }]).pathBytes).toBe(true);
    expect(
      fieldNeeds([
        { ...base, path: '/a' },
        { ...base, path: '\uFFFD' },
      ]).pathBytes,
    ).toBe(undefined);
  });

  it('leave the CloudFront path undecoded, and `-` as no path', () => {
    const needs = fieldNeeds([{ ...base, path: '/login' }]);
    const parser = createCloudFrontParser(needs);
    const row = (path: string) =>
      Buffer.from(
        `2024-05-01\t10:00:00\tIAD\t100\t192.0.2.1\tGET\td.cloudfront.net\t${path}\t200\t-\tUA\t-`,
      );
    const out = blank();
    const login = row('/login/x');
    expect(parser.parse(login, 0, login.length, out)).toBeNull();
    expect(out.path).toBeNull();
    expect(out.pathBuf).toBe(login);
    expect(login.toString('utf8', out.pathStart, out.pathEnd)).toBe('/login/x');
    expect(compileFilter({ ...base, path: '/login' })!(out)).toBe(true);
    const dash = row('-');
    expect(parser.parse(dash, 0, dash.length, out)).toBeNull();
    expect(out.pathBuf).toBeNull();
    expect(compileFilter({ ...base, path: '' })!(out)).toBe(false);
  });
});

describe('ALB path rules over raw bytes', () => {
  const line = (request: string) =>
    Buffer.from(
      `https 2024-05-01T10:00:01.123456Z app/my-lb/50dc6c495c0c9188 192.0.2.1:443 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "${request}" "curl/8.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "example.com" "-" 0 2024-05-01T10:00:01.000000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1`,
    );
  const byBytes = fieldNeeds([{ ...base, path: '/login' }]);
  const byText = { ...byBytes, pathBytes: undefined };

  it('decide as the decoded path does, escapes and all', () => {
    const urls = fc.oneof(
      fc.constantFrom('/login', '/login/x?y=1', '/logi', '/', '/l%6Fgin', '/login#f', '/\\x6cogin'),
      fc.string({ maxLength: 10 }).map((t) => `/${t.replace(/[" \\]/g, '')}`),
    );
    const filters = ['/login', '/', '/l', '/login/', 'x'].map(
      (p) => compileFilter({ ...base, path: p })!,
    );
    fc.assert(
      fc.property(urls, fc.constantFrom('', 'https://example.com:443'), (url, origin) => {
        const buf = line(`GET ${origin}${url} HTTP/1.1`);
        const raw = blank();
        const text = blank();
        expect(createAlbParser(byBytes).parse(buf, 0, buf.length, raw)).toBeNull();
        expect(createAlbParser(byText).parse(buf, 0, buf.length, text)).toBeNull();
        expect(raw.path).toBeNull();
        for (const f of filters) expect(f(raw)).toBe(f(text));
      }),
      { numRuns: 500 },
    );
  });

  it('hand out the path bytes, and none for a request without a path', () => {
    const parser = createAlbParser(byBytes);
    const out = blank();
    const login = line('POST https://example.com:443/login/x?next=/ HTTP/1.1');
    expect(parser.parse(login, 0, login.length, out)).toBeNull();
    expect(out.path).toBeNull();
    expect(out.pathBuf).toBe(login);
    expect(login.toString('utf8', out.pathStart, out.pathEnd)).toBe('/login/x');
    // The reused request must not keep the previous line's path.
    const none = line('- - - ');
    expect(parser.parse(none, 0, none.length, out)).toBeNull();
    expect(out.pathBuf).toBeNull();
    expect(compileFilter({ ...base, path: '/' })!(out)).toBe(false);
  });
});
