import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bucketNameProblem,
  ConfigError,
  DEFAULT_CONFIG_RAW,
  loadConfigFile,
  parseConfig,
  parseWindowMinutes,
  readConfigFile,
} from '../../lambda/core/config';
import type { EdgebanConfig } from '../../lambda/core/types';

const ALB_ARN =
  'arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/my-load-balancer/50dc6c495c0c9188';

/** A minimal valid rule, with fields replaced or added. */
function rule(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'r', threshold: 10, window: '5m', ...fields };
}

const DEFAULTS: EdgebanConfig = {
  scope: 'CLOUDFRONT',
  logs: {
    prefix: '',
    enableOn: [],
    cloudfrontDelivery: 'legacy',
    distributionFeatures: [],
    extraWriters: [],
  },
  attach: { distributionIds: [], albArns: [], mode: 'new-web-acl', replaceExistingWebAcl: false },
  rules: [{ name: 'flood', threshold: 2000, windowMinutes: 5, ipv4Prefix: 32, ipv6Prefix: 64 }],
  block: {
    durationSeconds: 4 * 3600,
    factor: 2,
    maxDurationSeconds: 7 * 86400,
    forgetAfterSeconds: 30 * 86400,
  },
  allowlist: [],
  mode: 'block',
  response: 403,
  maxNewBlocksPerRun: 500,
  minPrefix: { ipv4: 16, ipv6: 48 },
  ipSets: { ipv4: 1, ipv6: 1 },
  horizonSeconds: 86400,
  alarms: { lagSeconds: 90 * 60 },
  realtime: { distributionIds: [], samplingRate: 100, replaceExistingConfig: false },
};

const dir = mkdtempSync(join(tmpdir(), 'edgeban-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('parseConfig defaults', () => {
  it('returns every default of DESIGN section 3 when the value is undefined', () => {
    expect(parseConfig(undefined)).toEqual(DEFAULTS);
  });

  it('returns the defaults when the value is an empty object or "{}"', () => {
    expect(parseConfig({})).toEqual(DEFAULTS);
    expect(parseConfig('{}')).toEqual(DEFAULTS);
  });

  it('gives the documented raw defaults the same meaning as no config', () => {
    expect(parseConfig(DEFAULT_CONFIG_RAW)).toEqual(DEFAULTS);
  });

  it('keeps the defaults of sibling fields when one nested field is set', () => {
    const c = parseConfig({
      block: { factor: 1.5 },
      minPrefix: { ipv6: 56 },
      alarms: { email: 'ops@example.com' },
    });
    expect(c.block).toEqual({ ...DEFAULTS.block, factor: 1.5 });
    expect(c.minPrefix).toEqual({ ipv4: 16, ipv6: 56 });
    expect(c.alarms).toEqual({ email: 'ops@example.com', lagSeconds: 5400 });
  });
});

describe('parseConfig input forms', () => {
  const raw = {
    scope: 'REGIONAL',
    rules: [rule({ name: 'login', method: 'post', path: '/login' })],
    attach: { albArns: [ALB_ARN] },
  };

  it('returns the same config when the value is the object as a JSON string', () => {
    expect(parseConfig(JSON.stringify(raw))).toEqual(parseConfig(raw));
  });

  it('ignores keys starting with // at every level', () => {
    const commented = {
      '// top': 'note',
      ...raw,
      rules: [
        {
          '// why': 'credential stuffing',
          ...rule({ name: 'login', method: 'post', path: '/login' }),
        },
      ],
      attach: { '//': 1, albArns: [ALB_ARN] },
      logs: { '// bucket': 'created by the stack' },
      block: { '// escalation': ['x'] },
      minPrefix: { '//': null },
      ipSets: { '//': {} },
      alarms: { '// lag': 'default' },
    };
    expect(parseConfig(commented)).toEqual(parseConfig(raw));
  });
});

describe('parseConfig conversions', () => {
  it('converts rule fields to their engine form', () => {
    const c = parseConfig({
      rules: [
        rule({
          window: '120s',
          method: ['get', 'POST', 'post'],
          path: '/api/',
          host: '*.Example.COM',
          status: [404, '5xx'],
          ipv4Prefix: 24,
          ipv6Prefix: 56,
          duration: '90m',
        }),
        rule({ name: 'two', window: '24h', method: 'delete', host: 'API.example.com' }),
      ],
    });
    expect(c.rules).toEqual([
      {
        name: 'r',
        threshold: 10,
        windowMinutes: 2,
        methods: ['GET', 'POST'],
        path: '/api/',
        host: '*.example.com',
        status: [404, '5xx'],
        ipv4Prefix: 24,
        ipv6Prefix: 56,
        durationSeconds: 5400,
      },
      {
        name: 'two',
        threshold: 10,
        windowMinutes: 1440,
        methods: ['DELETE'],
        host: 'api.example.com',
        ipv4Prefix: 32,
        ipv6Prefix: 64,
      },
    ]);
  });

  it('writes allowlist entries as canonical CIDRs when given addresses and CIDRs', () => {
    const c = parseConfig({
      allowlist: [
        '192.0.2.7',
        '198.51.100.77/24',
        '2001:DB8::1',
        '2001:db8:1::5/48',
        '192.0.2.7/32',
      ],
    });
    expect(c.allowlist).toEqual([
      '192.0.2.7/32',
      '198.51.100.0/24',
      '2001:db8::1/128',
      '2001:db8:1::/48',
    ]);
  });

  it('converts every duration to seconds and keeps the other fields', () => {
    const c = parseConfig({
      scope: 'REGIONAL',
      logs: { bucketName: 'my-logs.example', prefix: 'cf/', enableOn: ['E2QWRUHAPOMQZL', ALB_ARN] },
      attach: { albArns: [ALB_ARN], replaceExistingWebAcl: true },
      block: { duration: '30m', factor: 3, maxDuration: '1d', forgetAfter: '7d' },
      mode: 'observe',
      response: 429,
      maxNewBlocksPerRun: 50,
      minPrefix: { ipv4: 24, ipv6: 64 },
      ipSets: { ipv4: 2, ipv6: 10 },
      horizon: '6h',
      alarms: { topicArn: 'arn:aws:sns:us-east-1:123456789012:edgeban-alarms', lag: '2h' },
    });
    expect(c).toMatchObject({
      scope: 'REGIONAL',
      logs: { bucketName: 'my-logs.example', prefix: 'cf/', enableOn: ['E2QWRUHAPOMQZL', ALB_ARN] },
      attach: {
        distributionIds: [],
        albArns: [ALB_ARN],
        mode: 'new-web-acl',
        replaceExistingWebAcl: true,
      },
      block: {
        durationSeconds: 1800,
        factor: 3,
        maxDurationSeconds: 86400,
        forgetAfterSeconds: 604800,
      },
      mode: 'observe',
      response: 429,
      maxNewBlocksPerRun: 50,
      minPrefix: { ipv4: 24, ipv6: 64 },
      ipSets: { ipv4: 2, ipv6: 10 },
      horizonSeconds: 21600,
      alarms: { topicArn: 'arn:aws:sns:us-east-1:123456789012:edgeban-alarms', lagSeconds: 7200 },
    });
  });

  it('accepts a rule prefix equal to minPrefix', () => {
    const c = parseConfig({
      minPrefix: { ipv4: 24, ipv6: 56 },
      rules: [rule({ ipv4Prefix: 24, ipv6Prefix: 56 })],
    });
    expect(c.rules[0]).toMatchObject({ ipv4Prefix: 24, ipv6Prefix: 56 });
  });

  it('returns whole minutes from parseWindowMinutes only within 1m to 24h', () => {
    expect(parseWindowMinutes('120s')).toBe(2);
    expect(parseWindowMinutes('1d')).toBe(1440);
    expect(parseWindowMinutes('90s')).toBeNull();
    expect(parseWindowMinutes('25h')).toBeNull();
  });
});

/**
 * One row per validation rule: the config and a pattern that names the
 * field path and shows the bad value.
 */
const INVALID: [string, unknown, RegExp][] = [
  ['the value is not JSON', '{"rules":', /^edgeban is not valid JSON: /],
  ['the value is not an object', [], /^edgeban must be an object, got \[\]$/],
  ['a top-level field is unknown', { rule: [] }, /^unknown field rule \(did you mean rules\?\)$/],
  [
    'a rule field is unknown',
    { rules: [rule(), rule({ name: 's', treshold: 1 })] },
    /^unknown field rules\[1\]\.treshold/,
  ],
  ['a nested field is unknown', { block: { durations: '1h' } }, /^unknown field block\.durations/],
  [
    'scope is not a scope',
    { scope: 'GLOBAL' },
    /^scope must be "CLOUDFRONT" or "REGIONAL", got "GLOBAL"$/,
  ],
  ['logs is not an object', { logs: 'bucket' }, /^logs must be an object, got "bucket"$/],
  [
    'logs.bucketName has invalid characters',
    { logs: { bucketName: 'My_Logs' } },
    /^logs\.bucketName must be an S3 bucket name \(.*\), got "My_Logs"$/,
  ],
  [
    'logs.bucketName is too short',
    { logs: { bucketName: 'ab' } },
    /^logs\.bucketName .*3 to 63.*, got "ab"$/,
  ],
  [
    'logs.bucketName ends with a hyphen',
    { logs: { bucketName: 'logs-' } },
    /^logs\.bucketName .*begin and end.*, got "logs-"$/,
  ],
  [
    'logs.bucketName has adjacent dots',
    { logs: { bucketName: 'my..logs' } },
    /^logs\.bucketName .*adjacent dots.*, got "my\.\.logs"$/,
  ],
  [
    'logs.bucketName looks like an IP address',
    { logs: { bucketName: '192.168.5.4' } },
    /^logs\.bucketName .*IP address.*, got "192\.168\.5\.4"$/,
  ],
  [
    'logs.bucketName has a reserved prefix',
    { logs: { bucketName: 'xn--logs' } },
    /^logs\.bucketName .*prefix xn--.*, got "xn--logs"$/,
  ],
  [
    'logs.bucketName has a reserved suffix',
    { logs: { bucketName: 'logs-s3alias' } },
    /^logs\.bucketName .*suffix -s3alias.*, got "logs-s3alias"$/,
  ],
  [
    'logs.prefix is not a string',
    { logs: { prefix: 7 } },
    /^logs\.prefix must be a string .*, got 7$/,
  ],
  [
    'logs.enableOn is not a list',
    { logs: { enableOn: 'E2QWRUHAPOMQZL' } },
    /^logs\.enableOn must be a list of .*, got "E2QWRUHAPOMQZL"$/,
  ],
  [
    'logs.enableOn holds an NLB ARN',
    { logs: { enableOn: [ALB_ARN.replace('/app/', '/net/')] } },
    /^logs\.enableOn\[0\] must be a CloudFront distribution id or ALB ARN, got "arn:aws:elasticloadbalancing:.*\/net\//,
  ],
  [
    'logs.enableOn repeats an id',
    { logs: { enableOn: ['E2QWRUHAPOMQZL', 'E2QWRUHAPOMQZL'] } },
    /^logs\.enableOn\[1\] must not repeat logs\.enableOn\[0\], got "E2QWRUHAPOMQZL"$/,
  ],
  [
    'attach.distributionIds holds a domain name',
    { attach: { distributionIds: ['d111111abcdef8.cloudfront.net'] } },
    /^attach\.distributionIds\[0\] must be a CloudFront distribution id, got "d111111abcdef8\.cloudfront\.net"$/,
  ],
  [
    'attach.albArns holds an invalid ARN',
    {
      scope: 'REGIONAL',
      attach: { albArns: ['arn:aws:elasticloadbalancing:us-west-2:123:loadbalancer/app/x/1'] },
    },
    /^attach\.albArns\[0\] must be an ALB ARN, got "arn:aws:elasticloadbalancing:us-west-2:123:/,
  ],
  [
    'attach.mode is unknown',
    { attach: { mode: 'replace' } },
    /^attach\.mode must be "new-web-acl", "rule-group" or "none", got "replace"$/,
  ],
  [
    'attach.replaceExistingWebAcl is not a boolean',
    { attach: { replaceExistingWebAcl: 'yes' } },
    /^attach\.replaceExistingWebAcl must be true or false, got "yes"$/,
  ],
  [
    'attach.albArns is set with scope CLOUDFRONT',
    { attach: { albArns: [ALB_ARN] } },
    /^attach\.albArns must be empty when scope is CLOUDFRONT .*, got \["arn:aws:elasticloadbalancing:/,
  ],
  [
    'attach.distributionIds is set with scope REGIONAL',
    { scope: 'REGIONAL', attach: { distributionIds: ['E2QWRUHAPOMQZL'] } },
    /^attach\.distributionIds must be empty when scope is REGIONAL .*, got \["E2QWRUHAPOMQZL"\]$/,
  ],
  [
    'attach targets are set with mode rule-group',
    { attach: { mode: 'rule-group', distributionIds: ['E2QWRUHAPOMQZL'] } },
    /^attach\.distributionIds must be empty when attach\.mode is rule-group .*, got \["E2QWRUHAPOMQZL"\]$/,
  ],
  [
    'attach ALB targets are set with mode none',
    { scope: 'REGIONAL', attach: { mode: 'none', albArns: [ALB_ARN] } },
    /^attach\.albArns must be empty when attach\.mode is none .*, got \["arn:aws:/,
  ],
  [
    'rules is not a list',
    { rules: { name: 'r' } },
    /^rules must be a non-empty list of rules, got \{"name":"r"\}$/,
  ],
  ['rules is empty', { rules: [] }, /^rules must be a non-empty list of rules, got \[\]$/],
  ['a rule is not an object', { rules: ['flood'] }, /^rules\[0\] must be an object, got "flood"$/],
  [
    'a rule name has a space',
    { rules: [rule({ name: 'bad name' })] },
    /^rules\[0\]\.name must match \[A-Za-z0-9_-\]\{1,64\}, got "bad name"$/,
  ],
  [
    'a rule name is too long',
    { rules: [rule({ name: 'x'.repeat(65) })] },
    /^rules\[0\]\.name must match .*, got "x{65}"$/,
  ],
  [
    'a rule has no name',
    { rules: [{ threshold: 1, window: '5m' }] },
    /^rules\[0\]\.name must match .*, got nothing$/,
  ],
  [
    'two rules share a name',
    { rules: [rule({ name: 'a' }), rule({ name: 'b' }), rule({ name: 'a' })] },
    /^rules\[2\]\.name must be unique \(rules\[0\] has it\), got "a"$/,
  ],
  [
    'a threshold is negative',
    { rules: [rule({ threshold: -1 })] },
    /^rules\[0\]\.threshold must be an integer >= 1, got -1$/,
  ],
  [
    'a threshold is zero',
    { rules: [rule({ threshold: 0 })] },
    /^rules\[0\]\.threshold must be an integer >= 1, got 0$/,
  ],
  [
    'a threshold is fractional',
    { rules: [rule({ threshold: 1.5 })] },
    /^rules\[0\]\.threshold must be an integer >= 1, got 1\.5$/,
  ],
  [
    'a threshold is a string',
    { rules: [rule({ threshold: '100' })] },
    /^rules\[0\]\.threshold must be an integer >= 1, got "100"$/,
  ],
  [
    'a threshold is missing',
    { rules: [{ name: 'r', window: '5m' }] },
    /^rules\[0\]\.threshold must be an integer >= 1, got nothing$/,
  ],
  [
    'a window is not whole minutes',
    { rules: [rule({ window: '90s' })] },
    /^rules\[0\]\.window must be whole minutes from 1m to 24h, got "90s"$/,
  ],
  [
    'a window is over 24h',
    { rules: [rule({ window: '1441m' })] },
    /^rules\[0\]\.window must be whole minutes from 1m to 24h, got "1441m"$/,
  ],
  [
    'a window is a number',
    { rules: [rule({ window: 5 })] },
    /^rules\[0\]\.window must be whole minutes from 1m to 24h, got 5$/,
  ],
  [
    'a window is missing',
    { rules: [{ name: 'r', threshold: 1 }] },
    /^rules\[0\]\.window must be .*, got nothing$/,
  ],
  [
    'a method list is empty',
    { rules: [rule({ method: [] })] },
    /^rules\[0\]\.method must be an HTTP method or a non-empty list of them, got \[\]$/,
  ],
  [
    'a method string is not a token',
    { rules: [rule({ method: 'GE T' })] },
    /^rules\[0\]\.method must be an HTTP method, got "GE T"$/,
  ],
  [
    'a method list holds a number',
    { rules: [rule({ method: ['GET', 1] })] },
    /^rules\[0\]\.method\[1\] must be an HTTP method, got 1$/,
  ],
  [
    'a path does not start with /',
    { rules: [rule({ path: 'login' })] },
    /^rules\[0\]\.path must be a path starting with "\/" .*, got "login"$/,
  ],
  ['a path is empty', { rules: [rule({ path: '' })] }, /^rules\[0\]\.path must be .*, got ""$/],
  [
    'a path has a query',
    { rules: [rule({ path: '/login?next=/' })] },
    /^rules\[0\]\.path must be .*, got "\/login\?next=\/"$/,
  ],
  [
    'a host has a port',
    { rules: [rule({ host: 'example.com:8080' })] },
    /^rules\[0\]\.host must be a host name or \*\.suffix \(no port\), got "example\.com:8080"$/,
  ],
  [
    'a host has a wildcard inside',
    { rules: [rule({ host: 'a.*.example.com' })] },
    /^rules\[0\]\.host must be .*, got "a\.\*\.example\.com"$/,
  ],
  [
    'a host is a bare wildcard',
    { rules: [rule({ host: '*' })] },
    /^rules\[0\]\.host must be .*, got "\*"$/,
  ],
  [
    'a status is not a list',
    { rules: [rule({ status: 404 })] },
    /^rules\[0\]\.status must be a non-empty list of status codes .*, got 404$/,
  ],
  [
    'a status list is empty',
    { rules: [rule({ status: [] })] },
    /^rules\[0\]\.status must be a non-empty list .*, got \[\]$/,
  ],
  [
    'a status code is over 599',
    { rules: [rule({ status: [404, 600] })] },
    /^rules\[0\]\.status\[1\] must be a status code from 100 to 599 or a class "1xx" to "5xx", got 600$/,
  ],
  [
    'a status class is out of range',
    { rules: [rule({ status: ['6xx'] })] },
    /^rules\[0\]\.status\[0\] must be .*, got "6xx"$/,
  ],
  [
    'a status class is upper case',
    { rules: [rule({ status: ['4XX'] })] },
    /^rules\[0\]\.status\[0\] must be .*, got "4XX"$/,
  ],
  [
    'an ipv4Prefix is over 32',
    { rules: [rule({ ipv4Prefix: 33 })] },
    /^rules\[0\]\.ipv4Prefix must be an integer from 1 to 32, got 33$/,
  ],
  [
    'an ipv4Prefix is wider than minPrefix',
    { rules: [rule({ ipv4Prefix: 8 })] },
    /^rules\[0\]\.ipv4Prefix must be >= minPrefix\.ipv4 \(16\), got 8$/,
  ],
  [
    'an ipv6Prefix is zero',
    { rules: [rule({ ipv6Prefix: 0 })] },
    /^rules\[0\]\.ipv6Prefix must be an integer from 1 to 128, got 0$/,
  ],
  [
    'an ipv6Prefix is wider than minPrefix',
    { rules: [rule({ ipv6Prefix: 32 })] },
    /^rules\[0\]\.ipv6Prefix must be >= minPrefix\.ipv6 \(48\), got 32$/,
  ],
  [
    'the default ipv6Prefix is wider than minPrefix',
    { minPrefix: { ipv6: 80 } },
    /^rules\[0\]\.ipv6Prefix must be >= minPrefix\.ipv6 \(80\), got 64 \(the default\)$/,
  ],
  [
    'a rule duration is not a duration',
    { rules: [rule({ duration: '4 hours' })] },
    /^rules\[0\]\.duration must be a duration like 90s, 5m, 4h or 7d, got "4 hours"$/,
  ],
  ['block is not an object', { block: '4h' }, /^block must be an object, got "4h"$/],
  [
    'block.duration is not a duration',
    { block: { duration: 'forever' } },
    /^block\.duration must be a duration .*, got "forever"$/,
  ],
  [
    'block.factor is below 1',
    { block: { factor: 0.5 } },
    /^block\.factor must be a number >= 1, got 0\.5$/,
  ],
  [
    'block.factor is a string',
    { block: { factor: '2' } },
    /^block\.factor must be a number >= 1, got "2"$/,
  ],
  [
    'block.maxDuration is shorter than block.duration',
    { block: { maxDuration: '1h' } },
    /^block\.maxDuration must be >= block\.duration \(4h\), got "1h"$/,
  ],
  [
    'block.forgetAfter has no unit',
    { block: { forgetAfter: '30' } },
    /^block\.forgetAfter must be a duration .*, got "30"$/,
  ],
  [
    'allowlist is not a list',
    { allowlist: '10.0.0.0/8' },
    /^allowlist must be a list of IP addresses or CIDRs, got "10\.0\.0\.0\/8"$/,
  ],
  [
    'an allowlist entry is invalid',
    { allowlist: ['192.0.2.1', '10.0.0.256'] },
    /^allowlist\[1\] must be an IP address or CIDR, got "10\.0\.0\.256"$/,
  ],
  [
    'an allowlist entry is a host name',
    { allowlist: ['example.com'] },
    /^allowlist\[0\] must be an IP address or CIDR, got "example\.com"$/,
  ],
  ['mode is unknown', { mode: 'deny' }, /^mode must be "block", "count" or "observe", got "deny"$/],
  ['response is not 403 or 429', { response: 404 }, /^response must be 403 or 429, got 404$/],
  ['response is a string', { response: '403' }, /^response must be 403 or 429, got "403"$/],
  [
    'maxNewBlocksPerRun is zero',
    { maxNewBlocksPerRun: 0 },
    /^maxNewBlocksPerRun must be an integer >= 1, got 0$/,
  ],
  [
    'minPrefix.ipv4 is zero',
    { minPrefix: { ipv4: 0 } },
    /^minPrefix\.ipv4 must be an integer from 1 to 32, got 0$/,
  ],
  [
    'minPrefix.ipv6 is over 128',
    { minPrefix: { ipv6: 129 } },
    /^minPrefix\.ipv6 must be an integer from 1 to 128, got 129$/,
  ],
  ['minPrefix has an unknown field', { minPrefix: { ipv5: 8 } }, /^unknown field minPrefix\.ipv5/],
  [
    'ipSets.ipv4 is over 10',
    { ipSets: { ipv4: 11 } },
    /^ipSets\.ipv4 must be an integer from 1 to 10, got 11$/,
  ],
  [
    'ipSets.ipv6 is zero',
    { ipSets: { ipv6: 0 } },
    /^ipSets\.ipv6 must be an integer from 1 to 10, got 0$/,
  ],
  [
    'horizon is not a duration',
    { horizon: '1 day' },
    /^horizon must be a duration .*, got "1 day"$/,
  ],
  [
    'alarms.email is not an address',
    { alarms: { email: 'ops' } },
    /^alarms\.email must be an email address, got "ops"$/,
  ],
  [
    'alarms.topicArn is not an SNS ARN',
    { alarms: { topicArn: 'arn:aws:sqs:us-east-1:123456789012:q' } },
    /^alarms\.topicArn must be an SNS topic ARN .*, got "arn:aws:sqs:us-east-1:123456789012:q"$/,
  ],
  [
    'alarms.lag is not a duration',
    { alarms: { lag: 90 } },
    /^alarms\.lag must be a duration .*, got 90$/,
  ],
];

describe('parseConfig validation', () => {
  it.each(INVALID)('throws when %s', (_, raw, pattern) => {
    expect(() => parseConfig(raw)).toThrow(pattern);
  });

  it('throws one-line ConfigErrors naming the field for every invalid config', () => {
    for (const [what, raw] of INVALID) {
      let error: unknown;
      try {
        parseConfig(raw);
      } catch (e) {
        error = e;
      }
      expect(error, what).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).name).toBe('ConfigError');
      expect((error as Error).message, what).not.toContain('\n');
    }
  });

  it('returns null from bucketNameProblem when the name follows the S3 rules', () => {
    for (const ok of ['abc', 'my-logs', 'logs.example.com', 'a'.repeat(63), '1logs1']) {
      expect(bucketNameProblem(ok), ok).toBeNull();
    }
  });
});

describe('readConfigFile and loadConfigFile', () => {
  it('reads context.edgeban when the file is a cdk.json', () => {
    const raw = { rules: [rule()] };
    const path = file('cdk.json', {
      app: 'npx tsx bin/app.ts',
      context: { edgeban: raw, other: 1 },
    });
    expect(readConfigFile(path)).toEqual(raw);
    expect(loadConfigFile(path).rules).toEqual([
      { name: 'r', threshold: 10, windowMinutes: 5, ipv4Prefix: 32, ipv6Prefix: 64 },
    ]);
  });

  it('returns the defaults when a cdk.json has no edgeban context', () => {
    const path = file('bare-cdk.json', { app: 'npx tsx bin/app.ts', context: {} });
    expect(readConfigFile(path)).toBeUndefined();
    expect(loadConfigFile(path)).toEqual(DEFAULTS);
    expect(loadConfigFile(file('no-context.json', { app: 'x' }))).toEqual(DEFAULTS);
  });

  it('reads the edgeban object itself when the file is not a cdk.json', () => {
    const path = file('edgeban.json', { mode: 'count', '// note': 'replay only' });
    expect(loadConfigFile(path).mode).toBe('count');
  });

  it('accepts a JSON string in context.edgeban, as -c writes it', () => {
    const path = file('string-cdk.json', {
      context: { edgeban: JSON.stringify({ response: 429 }) },
    });
    expect(loadConfigFile(path).response).toBe(429);
  });

  it('loads the repository cdk.json with its three rules', () => {
    const c = loadConfigFile(fileURLToPath(new URL('../../cdk.json', import.meta.url)));
    expect(c.rules.map((r) => r.name)).toEqual(['flood', 'login', 'probes']);
    expect(c.rules[1]).toMatchObject({ methods: ['POST'], path: '/login', threshold: 20 });
    expect(c.rules[2]).toMatchObject({ status: ['4xx'], windowMinutes: 1 });
  });

  it('throws a ConfigError naming the path when the file is missing', () => {
    const path = join(dir, 'missing.json');
    expect(() => loadConfigFile(path)).toThrow(new RegExp(`^cannot read ${path}: no such file$`));
  });

  it('throws a ConfigError naming the path when the file is not JSON', () => {
    const path = file('broken.json', '{"context": ');
    expect(() => readConfigFile(path)).toThrow(new RegExp(`^${path} is not valid JSON: `));
  });

  it('throws a ConfigError naming the path when the file holds no object', () => {
    const path = file('list.json', '[1]');
    expect(() => readConfigFile(path)).toThrow(
      new RegExp(`^${path} must hold a JSON object, got \\[1\\]$`),
    );
  });

  it('throws a ConfigError naming the path when context is not an object', () => {
    const path = file('bad-context.json', { app: 'x', context: 'edgeban' });
    expect(() => readConfigFile(path)).toThrow(
      new RegExp(`^${path}: context must be an object, got "edgeban"$`),
    );
  });

  it('prefixes the path to the field error when the config in the file is invalid', () => {
    const path = file('bad-rule.json', {
      context: { edgeban: { rules: [rule({ threshold: -1 })] } },
    });
    expect(() => loadConfigFile(path)).toThrow(
      new RegExp(`^${path}: rules\\[0\\]\\.threshold must be an integer >= 1, got -1$`),
    );
  });
});
