import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
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
