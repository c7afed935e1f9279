/**
 * A bad `edgeban` context fails synth with one line naming the field and
 * the value. The config module's own tests cover every message; here each
 * validation rule must surface through the CDK app, plus the rules only the
 * app knows (regions, sizes). The last tests run the real entry point and
 * the real `cdk synth`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lambda/core/config';
import { EdgeBan, EdgeBanError, EdgeBanWaf } from '../../lib';
import { build, context } from './app';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ALB_EU =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef';
const rule = (fields: Record<string, unknown> = {}) => ({
  name: 'flood',
  threshold: 100,
  window: '5m',
  ...fields,
});

/** One row per rule of the config module: the `edgeban` value and what the line must name. */
const CONFIG_RULES: [string, unknown, RegExp][] = [
  ['the value is not JSON', '{"rules":', /^edgeban is not valid JSON/],
  ['the value is not an object', '[]', /^edgeban must be an object, got \[\]/],
  ['a field is unknown', { rule: [] }, /^unknown field rule/],
  ['scope is unknown', { scope: 'GLOBAL' }, /^scope .*"GLOBAL"/],
  [
    'logs.cloudfrontDelivery is unknown',
    { logs: { cloudfrontDelivery: 'v3' } },
    /^logs\.cloudfrontDelivery must be "legacy", "v2-w3c" or "v2-json", got "v3"$/,
  ],
  [
    'logs.distributionFeatures has no legacy-logged distribution to apply to',
    { logs: { distributionFeatures: ['vpc-origins'] } },
    /^logs\.distributionFeatures applies only to distributions in logs\.enableOn with logs\.cloudfrontDelivery "legacy"/,
  ],
  [
    'a v2-logged bucket name has dots',
    {
      logs: { bucketName: 'my.logs', enableOn: ['E2QWRUHEXAMPLE'], cloudfrontDelivery: 'v2-json' },
    },
    /^logs\.bucketName must hold only letters, digits, "_" and "-" for logs\.cloudfrontDelivery v2-json/,
  ],
  [
    'logs.bucketName is not a bucket name',
    { logs: { bucketName: 'My_Logs' } },
    /^logs\.bucketName .*"My_Logs"/,
  ],
  ['logs.prefix is not a string', { logs: { prefix: 7 } }, /^logs\.prefix .*7$/],
  [
    'logs.enableOn holds an NLB',
    { logs: { enableOn: [ALB_EU.replace('/app/', '/net/')] } },
    /^logs\.enableOn\[0\] .*\/net\//,
  ],
  [
    'attach.distributionIds holds a domain',
    { attach: { distributionIds: ['d1.cloudfront.net'] } },
    /^attach\.distributionIds\[0\] .*"d1\.cloudfront\.net"/,
  ],
  [
    'attach.albArns holds no ALB',
    { scope: 'REGIONAL', attach: { albArns: ['arn:aws:s3:::x'] } },
    /^attach\.albArns\[0\] .*"arn:aws:s3:::x"/,
  ],
  ['attach.mode is unknown', { attach: { mode: 'replace' } }, /^attach\.mode .*"replace"/],
  [
    'attach.replaceExistingWebAcl is not a boolean',
    { attach: { replaceExistingWebAcl: 'yes' } },
    /^attach\.replaceExistingWebAcl .*"yes"/,
  ],
  [
    'ALBs are attached with scope CLOUDFRONT',
    { attach: { albArns: [ALB_EU] } },
    /^attach\.albArns must be empty when scope is CLOUDFRONT/,
  ],
  [
    'distributions are attached with scope REGIONAL',
    { scope: 'REGIONAL', attach: { distributionIds: ['E2QWRUHEXAMPLE'] } },
    /^attach\.distributionIds must be empty when scope is REGIONAL/,
  ],
  [
    'targets are given with no web ACL',
    { attach: { mode: 'rule-group', distributionIds: ['E2QWRUHEXAMPLE'] } },
    /^attach\.distributionIds must be empty when attach\.mode is rule-group/,
  ],
  ['rules is empty', { rules: [] }, /^rules .*\[\]$/],
  [
    'a rule name is invalid',
    { rules: [rule({ name: 'bad name' })] },
    /^rules\[0\]\.name .*"bad name"/,
  ],
  ['two rules share a name', { rules: [rule(), rule()] }, /^rules\[1\]\.name must be unique/],
  [
    'a threshold is -1',
    { rules: [rule({ threshold: -1 })] },
    /^rules\[0\]\.threshold must be an integer >= 1, got -1$/,
  ],
  [
    'a window is not whole minutes',
    { rules: [rule({ window: '90s' })] },
    /^rules\[0\]\.window .*"90s"/,
  ],
  [
    'a method is not a method',
    { rules: [rule({ method: 'GE T' })] },
    /^rules\[0\]\.method .*"GE T"/,
  ],
  [
    'a path has no leading slash',
    { rules: [rule({ path: 'login' })] },
    /^rules\[0\]\.path .*"login"/,
  ],
  [
    'a host has a port',
    { rules: [rule({ host: 'example.com:8080' })] },
    /^rules\[0\]\.host .*"example\.com:8080"/,
  ],
  [
    'a status is out of range',
    { rules: [rule({ status: [600] })] },
    /^rules\[0\]\.status\[0\] .*600$/,
  ],
  [
    'an ipv4Prefix is out of range',
    { rules: [rule({ ipv4Prefix: 33 })] },
    /^rules\[0\]\.ipv4Prefix .*33$/,
  ],
  [
    'an ipv6Prefix is wider than minPrefix',
    { rules: [rule({ ipv6Prefix: 32 })] },
    /^rules\[0\]\.ipv6Prefix must be >= minPrefix\.ipv6/,
  ],
  [
    'a rule duration is not a duration',
    { rules: [rule({ duration: '4 hours' })] },
    /^rules\[0\]\.duration .*"4 hours"/,
  ],
  [
    'block.duration is not a duration',
    { block: { duration: 'forever' } },
    /^block\.duration .*"forever"/,
  ],
  ['block.factor is below 1', { block: { factor: 0.5 } }, /^block\.factor .*0\.5$/],
  [
    'block.maxDuration is below block.duration',
    { block: { maxDuration: '1h' } },
    /^block\.maxDuration .*"1h"/,
  ],
  [
    'block.forgetAfter is not a duration',
    { block: { forgetAfter: '30' } },
    /^block\.forgetAfter .*"30"/,
  ],
  [
    'an allowlist entry is invalid',
    { allowlist: ['10.0.0.256'] },
    /^allowlist\[0\] .*"10\.0\.0\.256"/,
  ],
  ['mode is unknown', { mode: 'deny' }, /^mode .*"deny"/],
  ['response is not 403 or 429', { response: 404 }, /^response .*404$/],
  ['maxNewBlocksPerRun is zero', { maxNewBlocksPerRun: 0 }, /^maxNewBlocksPerRun .*0$/],
  ['minPrefix.ipv4 is zero', { minPrefix: { ipv4: 0 } }, /^minPrefix\.ipv4 .*0$/],
  ['ipSets.ipv4 is over 10', { ipSets: { ipv4: 11 } }, /^ipSets\.ipv4 .*11$/],
  ['horizon is not a duration', { horizon: '1 day' }, /^horizon .*"1 day"/],
  ['alarms.email is not an address', { alarms: { email: 'ops' } }, /^alarms\.email .*"ops"/],
  [
    'alarms.topicArn is not an SNS ARN',
    { alarms: { topicArn: 'arn:aws:sqs:eu-west-1:123456789012:q' } },
    /^alarms\.topicArn .*"arn:aws:sqs:/,
  ],
  ['alarms.lag is not a duration', { alarms: { lag: 90 } }, /^alarms\.lag .*90$/],
];

describe('synth surfaces each config rule', () => {
  it.each(CONFIG_RULES)('fails when %s', (_, edgeban, line) => {
    const value = typeof edgeban === 'string' ? edgeban : edgeban;
    expect(() => build(value, 'eu-west-1')).toThrow(ConfigError);
    expect(() => build(value, 'eu-west-1')).toThrow(line);
  });

  it('takes the same config as a JSON string', () => {
    expect(() => build(JSON.stringify({ rules: [rule({ threshold: -1 })] }))).toThrow(
      /^rules\[0\]\.threshold must be an integer >= 1, got -1$/,
    );
    expect(() => build(JSON.stringify({ rules: [rule()] }))).not.toThrow();
  });
});

/** Rules only the app can check: they need the region or the Lambda limits. */
const APP_RULES: [string, unknown, string, RegExp][] = [
  [
    'an ALB to attach is in another region',
    { scope: 'REGIONAL', attach: { albArns: [ALB_EU] } },
    'us-west-2',
    /^attach\.albArns\[0\] must be in the web ACL's region us-west-2, got arn:aws:elasticloadbalancing:eu-west-1:/,
  ],
  [
    'an ALB to log is in another region than the bucket',
    { scope: 'REGIONAL', logs: { enableOn: [ALB_EU] } },
    'us-west-2',
    /^logs\.enableOn\[0\] must be an ALB in the log bucket's region us-west-2 .*, got arn:aws:elasticloadbalancing:eu-west-1:/,
  ],
  [
    'the alarm topic is in another region',
    { alarms: { topicArn: 'arn:aws:sns:us-west-2:123456789012:ops' } },
    'eu-west-1',
    /^alarms\.topicArn must be in the pipeline's region eu-west-1 .*, got arn:aws:sns:us-west-2:/,
  ],
  [
    'alarms.lag is over what CloudWatch evaluates',
    { alarms: { lag: '8d' } },
    'eu-west-1',
    /^alarms\.lag must be at most 7d .*, got 691200s$/,
  ],
  [
    'CloudFront legacy logging would go to a bucket in an opt-in Region',
    { logs: { enableOn: ['E2QWRUHEXAMPLE'] } },
    'af-south-1',
    /^logs\.cloudfrontDelivery must be "v2-w3c" or "v2-json" for a log bucket in the opt-in Region af-south-1 .*, got "legacy"$/,
  ],
  [
    'the config does not fit the Lambda environment',
    { allowlist: Array.from({ length: 300 }, (_, i) => `2001:db8::${i.toString(16)}`) },
    'eu-west-1',
    /^edgeban config is too large for the Lambda environment/,
  ],
];

describe('synth surfaces the app rules', () => {
  it.each(APP_RULES)('fails when %s', (_, edgeban, region, line) => {
    expect(() => build(edgeban, region)).toThrow(EdgeBanError);
    expect(() => build(edgeban, region)).toThrow(line);
  });

  it('fails when the construct is given CLOUDFRONT WAF resources outside us-east-1', () => {
    const app = new App({ context: context({}) });
    const stack = new Stack(app, 'S', { env: { region: 'eu-west-1', account: '123456789012' } });
    expect(() => new EdgeBan(stack, 'EdgeBan', { config: {} })).toThrow(
      /^scope CLOUDFRONT needs the WAF resources in us-east-1, got a stack in eu-west-1$/,
    );
  });

  it('fails when the WAF passed in has another scope than the config', () => {
    const app = new App({ context: context({}) });
    const env = { region: 'us-east-1', account: '123456789012' };
    const waf = new EdgeBanWaf(new Stack(app, 'W', { env }), 'Waf', {
      config: new EdgeBan(new Stack(app, 'P0', { env }), 'E', { config: {} }).config,
    });
    const stack = new Stack(app, 'P', { env });
    expect(() => new EdgeBan(stack, 'EdgeBan', { config: { scope: 'REGIONAL' }, waf })).toThrow(
      /^scope must match the waf passed in \(CLOUDFRONT\), got REGIONAL$/,
    );
  });
});

describe('the app entry point', () => {
  const out = mkdtempSync(join(tmpdir(), 'edgeban-synth-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));
  const env = {
    ...process.env,
    // Offline: no instance metadata lookups, a fixed region, no notices.
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REGION: 'us-east-1',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
  };

  it('prints one line naming the field and the value, and no stack trace', async () => {
    const bad = JSON.stringify({ edgeban: { rules: [rule({ threshold: -1 })] } });
    const result = await run('npx', ['tsx', 'bin/app.ts'], {
      cwd: ROOT,
      env: { ...env, CDK_CONTEXT_JSON: bad, CDK_OUTDIR: out },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'edgeban config: rules[0].threshold must be an integer >= 1, got -1\n',
    );
  });

  it('fails `cdk synth` with that line first and no stack trace', async () => {
    const result = await run(
      'npx',
      [
        'cdk',
        'synth',
        '-q',
        '-o',
        out,
        '-c',
        'edgeban={"rules":[{"name":"flood","threshold":-1,"window":"5m"}]}',
      ],
      { cwd: ROOT, env },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).not.toBe(0);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines[0]).toBe('edgeban config: rules[0].threshold must be an integer >= 1, got -1');
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
