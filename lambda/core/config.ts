/**
 * The `edgeban` config (DESIGN section 3): one parser for the CDK app, the
 * CLI and the handlers. Validates first, then resolves defaults; every
 * error is a {@link ConfigError} with one line naming the field and the
 * bad value.
 */
import { readFileSync } from 'node:fs';
import { parseDuration } from './duration';
import { parseCidr } from './ip';
import type {
  BlockConfig,
  CloudFrontDelivery,
  DistributionFeature,
  EdgebanConfig,
  Mode,
  RealtimeConfig,
  Rule,
  Scope,
} from './types';

/** Base error of this module: a config that cannot be used, as one line. */
export class ConfigError extends Error {
  /** Path of the offending field (`rules[0].threshold`), when there is one. */
  readonly field: string | undefined;

  constructor(message: string, field?: string) {
    super(message);
    this.name = 'ConfigError';
    this.field = field;
  }
}

/** The defaults of DESIGN section 3, as a user would write them. */
export const DEFAULT_CONFIG_RAW = {
  scope: 'CLOUDFRONT',
  logs: { prefix: '', enableOn: [], cloudfrontDelivery: 'legacy', distributionFeatures: [] },
  attach: { distributionIds: [], albArns: [], mode: 'new-web-acl', replaceExistingWebAcl: false },
  rules: [{ name: 'flood', threshold: 2000, window: '5m' }],
  block: { duration: '4h', factor: 2, maxDuration: '7d', forgetAfter: '30d' },
  allowlist: [],
  mode: 'block',
  response: 403,
  maxNewBlocksPerRun: 500,
  minPrefix: { ipv4: 16, ipv6: 48 },
  ipSets: { ipv4: 1, ipv6: 1 },
  horizon: '24h',
  alarms: { lag: '90m' },
  realtime: { distributionIds: [], samplingRate: 100, replaceExistingConfig: false },
} as const;

/** Rule counting prefixes when a rule sets none. */
export const DEFAULT_IPV4_PREFIX = 32;
export const DEFAULT_IPV6_PREFIX = 64;

/** Addresses one WAF IP set holds. */
export const IP_SET_CAPACITY = 10_000;

/** Most IP sets per address version. */
export const MAX_IP_SETS = 10;

const RULE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
// RFC 9110 token characters.
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HOST_LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST = new RegExp(`^(?:\\*\\.)?${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);
const STATUS_CLASS = /^[1-5]xx$/;
const DISTRIBUTION_ID = /^E[A-Z0-9]{9,19}$/;
const ALB_ARN =
  /^arn:aws(?:-cn|-us-gov)?:elasticloadbalancing:[a-z0-9-]+:\d{12}:loadbalancer\/app\/[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?\/[0-9a-f]{16}$/;
const SNS_TOPIC_ARN = /^arn:aws(?:-cn|-us-gov)?:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const EMAIL = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/;

type Obj = Record<string, unknown>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The bad value as it would appear in JSON, kept to one short line. */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function fail(field: string, rule: string, value: unknown): never {
  throw new ConfigError(`${field} ${rule}, got ${show(value)}`, field);
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j] ?? 0;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(up + 1, (row[j - 1] ?? 0) + 1, diag + cost);
      diag = up;
    }
  }
  return row[b.length] ?? 0;
}

/**
 * The object at `path` (undefined reads as empty), with every key either
 * known or a `//` comment.
 */
function objectAt(value: unknown, path: string, known: readonly string[]): Obj {
  if (value === undefined) return {};
  if (!isObject(value)) fail(path, 'must be an object', value);
  for (const key of Object.keys(value)) {
    if (key.startsWith('//') || known.includes(key)) continue;
    const near = known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
    const hint = near === undefined ? '' : ` (did you mean ${near}?)`;
    throw new ConfigError(`unknown field ${join(path, key)}${hint}`, join(path, key));
  }
  return value;
}

function integerAt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    fail(field, `must be an integer ${range}`, value);
  }
  return value;
}

function durationAt(value: unknown, field: string): number {
  const seconds = typeof value === 'string' ? parseDuration(value) : null;
  if (seconds === null) fail(field, 'must be a duration like 90s, 5m, 4h or 7d', value);
  return seconds;
}

function oneOf<T extends string | number>(value: unknown, field: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    const names = allowed.map((a) => JSON.stringify(a));
    const list =
      names.length === 2
        ? names.join(' or ')
        : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
    fail(field, `must be ${list}`, value);
  }
  return value as T;
}

/** A list of distinct strings, each accepted by `check`. */
function stringListAt(
  value: unknown,
  field: string,
  what: string,
  check: (s: string) => boolean,
): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(field, `must be a list of ${what}s`, value);
  const seen = new Map<string, number>();
  return value.map((item, i) => {
    if (typeof item !== 'string' || !check(item))
      fail(`${field}[${i}]`, `must be ${withArticle(what)}`, item);
    const first = seen.get(item);
    if (first !== undefined) fail(`${field}[${i}]`, `must not repeat ${field}[${first}]`, item);
    seen.set(item, i);
    return item;
  });
}

function withArticle(what: string): string {
  return /^[aeiouAEIOU]/.test(what) ? `an ${what}` : `a ${what}`;
}

/** Why `name` is not a valid general purpose S3 bucket name, or null when it is. */
export function bucketNameProblem(name: string): string | null {
  if (name.length < 3 || name.length > 63) return 'it must be 3 to 63 characters long';
  if (!/^[a-z0-9.-]+$/.test(name)) return 'only lower-case letters, digits, dots and hyphens';
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) {
    return 'it must begin and end with a letter or digit';
  }
  if (name.includes('..')) return 'no two adjacent dots';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return 'it must not look like an IP address';
  for (const prefix of ['xn--', 'sthree-', 'amzn-s3-demo-']) {
    if (name.startsWith(prefix)) return `the prefix ${prefix} is reserved`;
  }
  for (const suffix of ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3']) {
    if (name.endsWith(suffix)) return `the suffix ${suffix} is reserved`;
  }
  return null;
}

/**
 * A rule window (`5m`, `2h`, `120s`) → whole minutes, or null unless it is
 * a whole number of minutes from 1m to 24h.
 */
export function parseWindowMinutes(text: string): number | null {
  const seconds = parseDuration(text);
  if (seconds === null || seconds % 60 !== 0) return null;
  const minutes = seconds / 60;
  return minutes >= 1 && minutes <= 1440 ? minutes : null;
}

const RULE_FIELDS = [
  'name',
  'threshold',
  'window',
  'method',
  'path',
  'host',
  'status',
  'ipv4Prefix',
  'ipv6Prefix',
  'duration',
] as const;

function methodsAt(value: unknown, field: string): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) {
    fail(field, 'must be an HTTP method or a non-empty list of them', value);
  }
  const methods: string[] = [];
  list.forEach((item, i) => {
    const at = typeof value === 'string' ? field : `${field}[${i}]`;
    if (typeof item !== 'string' || !METHOD_TOKEN.test(item))
      fail(at, 'must be an HTTP method', item);
    const upper = item.toUpperCase();
    if (!methods.includes(upper)) methods.push(upper);
  });
  return methods;
}

function statusAt(value: unknown, field: string): (number | string)[] {
  if (!Array.isArray(value) || value.length === 0) {
    fail(
      field,
      'must be a non-empty list of status codes (100 to 599) or classes ("1xx" to "5xx")',
      value,
    );
  }
  return value.map((item, i) => {
    const code = typeof item === 'number' && Number.isInteger(item) && item >= 100 && item <= 599;
    const cls = typeof item === 'string' && STATUS_CLASS.test(item);
    if (!code && !cls) {
      fail(
        `${field}[${i}]`,
        'must be a status code from 100 to 599 or a class "1xx" to "5xx"',
        item,
      );
    }
    return item as number | string;
  });
}

function ruleAt(value: unknown, path: string, minPrefix: EdgebanConfig['minPrefix']): Rule {
  if (!isObject(value)) fail(path, 'must be an object', value);
  const r = objectAt(value, path, RULE_FIELDS);
  const at = (key: string): string => `${path}.${key}`;

  if (typeof r.name !== 'string' || !RULE_NAME.test(r.name)) {
    fail(at('name'), 'must match [A-Za-z0-9_-]{1,64}', r.name);
  }
  const threshold = integerAt(r.threshold, at('threshold'), 1, Number.MAX_SAFE_INTEGER);
  const windowMinutes = typeof r.window === 'string' ? parseWindowMinutes(r.window) : null;
  if (windowMinutes === null) fail(at('window'), 'must be whole minutes from 1m to 24h', r.window);

  const ipv4Given = r.ipv4Prefix !== undefined;
  const ipv6Given = r.ipv6Prefix !== undefined;
  const ipv4Prefix = integerAt(r.ipv4Prefix ?? DEFAULT_IPV4_PREFIX, at('ipv4Prefix'), 1, 32);
  const ipv6Prefix = integerAt(r.ipv6Prefix ?? DEFAULT_IPV6_PREFIX, at('ipv6Prefix'), 1, 128);
  if (ipv4Prefix < minPrefix.ipv4) {
    const shown = ipv4Given ? ipv4Prefix : `${ipv4Prefix} (the default)`;
    throw new ConfigError(
      `${at('ipv4Prefix')} must be >= minPrefix.ipv4 (${minPrefix.ipv4}), got ${shown}`,
      at('ipv4Prefix'),
    );
  }
  if (ipv6Prefix < minPrefix.ipv6) {
    const shown = ipv6Given ? ipv6Prefix : `${ipv6Prefix} (the default)`;
    throw new ConfigError(
      `${at('ipv6Prefix')} must be >= minPrefix.ipv6 (${minPrefix.ipv6}), got ${shown}`,
      at('ipv6Prefix'),
    );
  }

  const rule: Mutable<Rule> = { name: r.name, threshold, windowMinutes, ipv4Prefix, ipv6Prefix };
  if (r.method !== undefined) rule.methods = methodsAt(r.method, at('method'));
  if (r.path !== undefined) {
    // The path is matched against the logged URI path: it starts with `/`
    // and never holds whitespace or a query.
    if (typeof r.path !== 'string' || !/^\/[^\s?#]*$/.test(r.path)) {
      fail(at('path'), 'must be a path starting with "/" (no spaces or query)', r.path);
    }
    rule.path = r.path;
  }
  if (r.host !== undefined) {
    const host = typeof r.host === 'string' ? r.host.toLowerCase() : null;
    if (host === null || host.length > 253 || !HOST.test(host)) {
      fail(at('host'), 'must be a host name or *.suffix (no port)', r.host);
    }
    rule.host = host;
  }
  if (r.status !== undefined) rule.status = statusAt(r.status, at('status'));
  if (r.duration !== undefined) rule.durationSeconds = durationAt(r.duration, at('duration'));
  return rule;
}

function rulesAt(value: unknown, minPrefix: EdgebanConfig['minPrefix']): Rule[] {
  const list = value ?? DEFAULT_CONFIG_RAW.rules;
  if (!Array.isArray(list) || list.length === 0)
    fail('rules', 'must be a non-empty list of rules', value);
  const byName = new Map<string, number>();
  return list.map((item, i) => {
    const rule = ruleAt(item, `rules[${i}]`, minPrefix);
    const first = byName.get(rule.name);
    if (first !== undefined)
      fail(`rules[${i}].name`, `must be unique (rules[${first}] has it)`, rule.name);
    byName.set(rule.name, i);
    return rule;
  });
}

function blockAt(value: unknown): BlockConfig {
  const b = objectAt(value, 'block', ['duration', 'factor', 'maxDuration', 'forgetAfter']);
  const d = DEFAULT_CONFIG_RAW.block;
  const durationSeconds = durationAt(b.duration ?? d.duration, 'block.duration');
  const factor = b.factor ?? d.factor;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
    fail('block.factor', 'must be a number >= 1', factor);
  }
  const maxDurationSeconds = durationAt(b.maxDuration ?? d.maxDuration, 'block.maxDuration');
  if (maxDurationSeconds < durationSeconds) {
    fail(
      'block.maxDuration',
      `must be >= block.duration (${String(b.duration ?? d.duration)})`,
      b.maxDuration,
    );
  }
  const forgetAfterSeconds = durationAt(b.forgetAfter ?? d.forgetAfter, 'block.forgetAfter');
  return { durationSeconds, factor, maxDurationSeconds, forgetAfterSeconds };
}

function allowlistAt(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail('allowlist', 'must be a list of IP addresses or CIDRs', value);
  const cidrs: string[] = [];
  value.forEach((item, i) => {
    const c = typeof item === 'string' ? parseCidr(item) : null;
    if (c === null) fail(`allowlist[${i}]`, 'must be an IP address or CIDR', item);
    if (!cidrs.includes(c.cidr)) cidrs.push(c.cidr);
  });
  return cidrs;
}

function pairAt(
  value: unknown,
  field: string,
  defaults: { readonly ipv4: number; readonly ipv6: number },
  max: { readonly ipv4: number; readonly ipv6: number },
): { ipv4: number; ipv6: number } {
  const o = objectAt(value, field, ['ipv4', 'ipv6']);
  return {
    ipv4: integerAt(o.ipv4 ?? defaults.ipv4, `${field}.ipv4`, 1, max.ipv4),
    ipv6: integerAt(o.ipv6 ?? defaults.ipv6, `${field}.ipv6`, 1, max.ipv6),
  };
}

/** An IAM role, user or account root ARN (`logs.extraWriters`). */
const IAM_PRINCIPAL_ARN =
  /^arn:aws(-cn|-us-gov)?:iam::\d{12}:(root|(role|user)\/[A-Za-z0-9+=,.@_/-]{1,512})$/;

/** The values of `logs.cloudfrontDelivery`. */
export const CLOUDFRONT_DELIVERIES: readonly CloudFrontDelivery[] = ['legacy', 'v2-w3c', 'v2-json'];

/** The values of `logs.distributionFeatures`. */
export const DISTRIBUTION_FEATURES: readonly DistributionFeature[] = ['lambda-edge', 'vpc-origins'];

/** CloudWatch Logs takes S3 delivery destinations named `[\w-]` only (PutDeliveryDestination). */
const V2_BUCKET_NAME = /^[\w-]+$/;

function logsAt(value: unknown): EdgebanConfig['logs'] {
  const o = objectAt(value, 'logs', [
    'bucketName',
    'prefix',
    'enableOn',
    'cloudfrontDelivery',
    'distributionFeatures',
    'extraWriters',
  ]);
  const d = DEFAULT_CONFIG_RAW.logs;
  const logs: Mutable<EdgebanConfig['logs']> = {
    prefix: '',
    enableOn: stringListAt(
      o.enableOn,
      'logs.enableOn',
      'CloudFront distribution id or ALB ARN',
      (s) => DISTRIBUTION_ID.test(s) || ALB_ARN.test(s),
    ),
    // Legacy by default: a config written before v2 existed keeps meaning
    // what it meant (DESIGN section 3), and a deployed stack never swaps a
    // distribution's logging on its own.
    cloudfrontDelivery: oneOf(
      o.cloudfrontDelivery ?? d.cloudfrontDelivery,
      'logs.cloudfrontDelivery',
      CLOUDFRONT_DELIVERIES,
    ),
    distributionFeatures: stringListAt(
      o.distributionFeatures,
      'logs.distributionFeatures',
      `distribution feature (${DISTRIBUTION_FEATURES.join(' or ')})`,
      (s) => (DISTRIBUTION_FEATURES as readonly string[]).includes(s),
    ) as DistributionFeature[],
    // --- logs.extraWriters: who besides log delivery may put objects under the prefix ---
    extraWriters: stringListAt(
      o.extraWriters,
      'logs.extraWriters',
      'IAM role, user or account root ARN',
      (s) => IAM_PRINCIPAL_ARN.test(s),
    ),
  };
  if (o.bucketName !== undefined) {
    const problem =
      typeof o.bucketName === 'string' ? bucketNameProblem(o.bucketName) : 'not a string';
    if (problem !== null)
      fail('logs.bucketName', `must be an S3 bucket name (${problem})`, o.bucketName);
    logs.bucketName = o.bucketName as string;
  }
  const prefix = o.prefix ?? d.prefix;
  if (typeof prefix !== 'string' || prefix.length > 1024) {
    fail('logs.prefix', 'must be a string of at most 1024 characters', prefix);
  }
  logs.prefix = prefix;
  checkCloudFrontDelivery(logs);
  return logs;
}

/** The CloudFront distributions of `logs.enableOn` (the rest are ALB ARNs). */
export function loggedDistributions(logs: EdgebanConfig['logs']): string[] {
  return logs.enableOn.filter((t) => DISTRIBUTION_ID.test(t));
}

function checkCloudFrontDelivery(logs: EdgebanConfig['logs']): void {
  const distributions = loggedDistributions(logs);
  const v2 = logs.cloudfrontDelivery !== 'legacy';
  if (v2 && distributions.length > 0 && logs.bucketName !== undefined) {
    if (!V2_BUCKET_NAME.test(logs.bucketName)) {
      fail(
        'logs.bucketName',
        `must hold only letters, digits, "_" and "-" for logs.cloudfrontDelivery ${logs.cloudfrontDelivery} (CloudWatch Logs delivers to such bucket names only)`,
        logs.bucketName,
      );
    }
  }
}

/**
 * `logs.distributionFeatures` is about rewriting a distribution's whole
 * config (UpdateDistribution): legacy logging and the real-time log config
 * attachment do that, v2 delivery does not.
 */
function checkDistributionFeatures(logs: EdgebanConfig['logs'], realtime: RealtimeConfig): void {
  const legacy = logs.cloudfrontDelivery === 'legacy' && loggedDistributions(logs).length > 0;
  if (logs.distributionFeatures.length > 0 && !legacy && realtime.distributionIds.length === 0) {
    fail(
      'logs.distributionFeatures',
      'applies only to distributions in logs.enableOn with logs.cloudfrontDelivery "legacy" or in realtime.distributionIds (the only uses that rewrite a distribution\'s config)',
      logs.distributionFeatures,
    );
  }
}

function attachAt(value: unknown, scope: Scope): EdgebanConfig['attach'] {
  const o = objectAt(value, 'attach', [
    'distributionIds',
    'albArns',
    'mode',
    'replaceExistingWebAcl',
  ]);
  const d = DEFAULT_CONFIG_RAW.attach;
  const distributionIds = stringListAt(
    o.distributionIds,
    'attach.distributionIds',
    'CloudFront distribution id',
    (s) => DISTRIBUTION_ID.test(s),
  );
  const albArns = stringListAt(o.albArns, 'attach.albArns', 'ALB ARN', (s) => ALB_ARN.test(s));
  const mode = oneOf(o.mode ?? d.mode, 'attach.mode', [
    'new-web-acl',
    'rule-group',
    'none',
  ] as const);
  const replace = o.replaceExistingWebAcl ?? d.replaceExistingWebAcl;
  if (typeof replace !== 'boolean')
    fail('attach.replaceExistingWebAcl', 'must be true or false', replace);

  // A web ACL of one scope can only be associated with that scope's resources.
  if (scope === 'CLOUDFRONT' && albArns.length > 0) {
    fail(
      'attach.albArns',
      'must be empty when scope is CLOUDFRONT (use scope REGIONAL for load balancers)',
      albArns,
    );
  }
  if (scope === 'REGIONAL' && distributionIds.length > 0) {
    fail(
      'attach.distributionIds',
      'must be empty when scope is REGIONAL (use scope CLOUDFRONT)',
      distributionIds,
    );
  }
  if (mode !== 'new-web-acl') {
    if (distributionIds.length > 0) {
      fail(
        'attach.distributionIds',
        `must be empty when attach.mode is ${mode} (no web ACL is created)`,
        distributionIds,
      );
    }
    if (albArns.length > 0) {
      fail(
        'attach.albArns',
        `must be empty when attach.mode is ${mode} (no web ACL is created)`,
        albArns,
      );
    }
  }
  return { distributionIds, albArns, mode, replaceExistingWebAcl: replace };
}

function alarmsAt(value: unknown): EdgebanConfig['alarms'] {
  const o = objectAt(value, 'alarms', ['email', 'topicArn', 'lag']);
  const alarms: Mutable<EdgebanConfig['alarms']> = {
    lagSeconds: durationAt(o.lag ?? DEFAULT_CONFIG_RAW.alarms.lag, 'alarms.lag'),
  };
  if (o.email !== undefined) {
    if (typeof o.email !== 'string' || !EMAIL.test(o.email))
      fail('alarms.email', 'must be an email address', o.email);
    alarms.email = o.email;
  }
  if (o.topicArn !== undefined) {
    if (typeof o.topicArn !== 'string' || !SNS_TOPIC_ARN.test(o.topicArn)) {
      fail(
        'alarms.topicArn',
        'must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)',
        o.topicArn,
      );
    }
    alarms.topicArn = o.topicArn;
  }
  return alarms;
}

/**
 * Most provisioned shards edgeban will ask for: Kinesis Data Streams'
 * default shard quota per account in its largest regions.
 */
export const MAX_REALTIME_SHARDS = 500;

function realtimeAt(value: unknown, scope: Scope, logs: EdgebanConfig['logs']): RealtimeConfig {
  const o = objectAt(value, 'realtime', [
    'distributionIds',
    'samplingRate',
    'shards',
    'replaceExistingConfig',
  ]);
  const d = DEFAULT_CONFIG_RAW.realtime;
  const distributionIds = stringListAt(
    o.distributionIds,
    'realtime.distributionIds',
    'CloudFront distribution id',
    (s) => DISTRIBUTION_ID.test(s),
  );
  // A sampled stream would undercount every client by the same factor:
  // thresholds would silently mean something else.
  const samplingRate = o.samplingRate ?? d.samplingRate;
  if (samplingRate !== 100) {
    fail('realtime.samplingRate', 'must be 100 (exact counts need every request)', samplingRate);
  }
  const replace = o.replaceExistingConfig ?? d.replaceExistingConfig;
  if (typeof replace !== 'boolean') {
    fail('realtime.replaceExistingConfig', 'must be true or false', replace);
  }
  if (scope === 'REGIONAL' && distributionIds.length > 0) {
    fail(
      'realtime.distributionIds',
      'must be empty when scope is REGIONAL (real-time logs are CloudFront only)',
      distributionIds,
    );
  }
  // One source per distribution: its standard logs would count every request again.
  distributionIds.forEach((id, i) => {
    if (logs.enableOn.includes(id)) {
      fail(
        `realtime.distributionIds[${i}]`,
        'must not also be in logs.enableOn (a distribution is counted from one source)',
        id,
      );
    }
  });
  const out: Mutable<RealtimeConfig> = {
    distributionIds,
    samplingRate: 100,
    replaceExistingConfig: replace,
  };
  if (o.shards !== undefined) {
    out.shards = integerAt(o.shards, 'realtime.shards', 1, MAX_REALTIME_SHARDS);
  }
  return out;
}

const TOP_FIELDS = [
  'scope',
  'logs',
  'attach',
  'rules',
  'block',
  'allowlist',
  'mode',
  'response',
  'maxNewBlocksPerRun',
  'minPrefix',
  'ipSets',
  'horizon',
  'alarms',
  'realtime',
  'stage',
] as const;

/** `stage`: lower-case letters, digits and inner hyphens, up to 20 characters. */
const STAGE = /^[a-z](?:[a-z0-9-]{0,18}[a-z0-9])?$/;

/** `stage`, when given: it names the stacks, and with them every resource. */
function stageAt(value: unknown): { stage?: string } {
  if (value === undefined) return {};
  if (typeof value !== 'string' || !STAGE.test(value)) {
    fail(
      'stage',
      'must be 1 to 20 lower-case letters, digits and inner hyphens, starting with a letter',
      value,
    );
  }
  return { stage: value as string };
}

/**
 * Parses and validates the `edgeban` config.
 * @param raw the context value: an object, the same as a JSON string
 *   (`-c edgeban='{...}'`), or undefined for all defaults. Keys starting
 *   with `//` are comments at any level; any other unknown key is an error.
 * @returns the config with durations in seconds and every default resolved
 * @throws ConfigError with one line naming the field and the bad value
 * @example parseConfig('{"rules":[{"name":"login","threshold":20,"window":"5m","method":"post"}]}')
 */
export function parseConfig(raw: unknown): EdgebanConfig {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new ConfigError(`edgeban is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (value === undefined) value = {};
  if (!isObject(value)) throw new ConfigError(`edgeban must be an object, got ${show(value)}`);
  const c = objectAt(value, '', TOP_FIELDS);
  const d = DEFAULT_CONFIG_RAW;

  const scope = oneOf(c.scope ?? d.scope, 'scope', ['CLOUDFRONT', 'REGIONAL'] as const);
  const logs = logsAt(c.logs);
  const attach = attachAt(c.attach, scope);
  const minPrefix = pairAt(c.minPrefix, 'minPrefix', d.minPrefix, { ipv4: 32, ipv6: 128 });
  const rules = rulesAt(c.rules, minPrefix);
  const block = blockAt(c.block);
  const allowlist = allowlistAt(c.allowlist);
  const mode: Mode = oneOf(c.mode ?? d.mode, 'mode', ['block', 'count', 'observe'] as const);
  const response = oneOf(c.response ?? d.response, 'response', [403, 429] as const);
  const maxNewBlocksPerRun = integerAt(
    c.maxNewBlocksPerRun ?? d.maxNewBlocksPerRun,
    'maxNewBlocksPerRun',
    1,
    Number.MAX_SAFE_INTEGER,
  );
  const ipSets = pairAt(c.ipSets, 'ipSets', d.ipSets, { ipv4: MAX_IP_SETS, ipv6: MAX_IP_SETS });
  const horizonSeconds = durationAt(c.horizon ?? d.horizon, 'horizon');
  const alarms = alarmsAt(c.alarms);
  const realtime = realtimeAt(c.realtime, scope, logs);
  checkDistributionFeatures(logs, realtime);

  return {
    scope,
    logs,
    attach,
    rules,
    block,
    allowlist,
    mode,
    response,
    maxNewBlocksPerRun,
    minPrefix,
    ipSets,
    horizonSeconds,
    alarms,
    realtime,
    ...stageAt(c.stage),
  };
}

function readReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'EACCES') return 'permission denied';
  return String((e as Error).message ?? e).split('\n')[0] ?? 'unreadable';
}

/**
 * Reads the raw `edgeban` value from a file, unvalidated, so a caller can
 * apply overrides before {@link parseConfig}: a `cdk.json` (an object with
 * a `context` or an `app` key) gives `context.edgeban` (undefined when
 * absent), any other JSON object is the `edgeban` object itself.
 * @throws ConfigError naming the path, for an unreadable file or invalid JSON
 */
export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${readReason(e)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new ConfigError(`${path} must hold a JSON object, got ${show(doc)}`);
  if (!('context' in doc) && !('app' in doc)) return doc;
  const context = doc.context;
  if (context !== undefined && !isObject(context)) {
    throw new ConfigError(`${path}: context must be an object, got ${show(context)}`, 'context');
  }
  return context?.edgeban;
}

/**
 * Loads and validates the config of a file: {@link readConfigFile}, then
 * {@link parseConfig}; a cdk.json without `context.edgeban` gives the defaults.
 * @throws ConfigError naming the path, for an unreadable or invalid file or config
 */
export function loadConfigFile(path: string): EdgebanConfig {
  const raw = readConfigFile(path);
  try {
    return parseConfig(raw);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${path}: ${e.message}`, e.field);
    throw e;
  }
}
