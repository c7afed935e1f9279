/**
 * Only log delivery may write logs: the new log bucket's policy denies
 * `s3:PutObject` under the prefix to every principal but the delivery
 * principals the config uses and `logs.extraWriters`. The Deny is checked
 * as a document and evaluated against the requests that matter, the way
 * IAM evaluates its conditions (all operators must hold; an `...IfExists`
 * operator holds when its key is absent; a negated operator holds when
 * its key is absent).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../lambda/core/config';
import { ACCOUNT, synth } from './app';

const DIST = 'E2QWRUHEXAMPLE';
const REPLAY_ROLE = `arn:aws:iam::${ACCOUNT}:role/log-replay`;
const SERVICES = ['delivery.logs.amazonaws.com', 'logdelivery.elasticloadbalancing.amazonaws.com'];

type Statement = {
  Sid?: string;
  Effect: string;
  Principal: unknown;
  Action: string;
  Resource: unknown;
  Condition: Record<string, Record<string, unknown>>;
};

function denyStatement(fields: Record<string, unknown>, region: string): Statement {
  const s = synth(fields, region);
  const policy = Object.values(s.pipeline.findResources('AWS::S3::BucketPolicy'))[0]!;
  const found = (policy.Properties.PolicyDocument.Statement as Statement[]).filter(
    (x) => x.Sid === 'OnlyLogDeliveryWrites',
  );
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** A PutObject request's context: only the keys the Deny reads. */
interface Request {
  readonly 'aws:PrincipalServiceName'?: string;
  readonly 'aws:PrincipalAccount'?: string;
  readonly 'aws:PrincipalArn'?: string;
}

function values(v: unknown): string[] {
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => (JSON.stringify(x) === '{"Ref":"AWS::AccountId"}' ? ACCOUNT : String(x)));
}

/** Whether the Deny applies to the request (IAM condition evaluation, for the operators used). */
function denies(st: Statement, req: Request): boolean {
  return Object.entries(st.Condition).every(([op, keys]) =>
    Object.entries(keys).every(([key, v]) => {
      const actual = req[key as keyof Request];
      const wanted = values(v);
      switch (op) {
        case 'StringEquals':
          return actual !== undefined && wanted.includes(actual);
        case 'StringNotEquals':
        case 'StringNotEqualsIfExists':
          return actual === undefined || !wanted.includes(actual);
        case 'ArnNotLike':
          return actual === undefined || !wanted.some((w) => w === actual);
        default:
          throw new Error(`operator ${op} is not modelled here`);
      }
    }),
  );
}

const vended: Request = { 'aws:PrincipalServiceName': 'delivery.logs.amazonaws.com' };
const elbService: Request = {
  'aws:PrincipalServiceName': 'logdelivery.elasticloadbalancing.amazonaws.com',
};
const admin: Request = {
  'aws:PrincipalAccount': ACCOUNT,
  'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:role/Admin`,
};
const root: Request = {
  'aws:PrincipalAccount': ACCOUNT,
  'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:root`,
};
const replay: Request = { 'aws:PrincipalAccount': ACCOUNT, 'aws:PrincipalArn': REPLAY_ROLE };
const otherAccount: Request = {
  'aws:PrincipalAccount': '210987654321',
  'aws:PrincipalArn': 'arn:aws:iam::210987654321:role/x',
};

describe('the log bucket policy with CloudFront legacy logging (the shipped config)', () => {
  const st = denyStatement({}, 'us-east-1');

  it('denies PutObject under the prefix to every principal of this account, bar the delivery services', () => {
    expect(st).toEqual({
      Sid: 'OnlyLogDeliveryWrites',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 's3:PutObject',
      Resource: { 'Fn::Join': ['', [expect.anything(), '/*']] },
      Condition: {
        StringNotEqualsIfExists: { 'aws:PrincipalServiceName': SERVICES },
        StringEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } },
      },
    });
  });

  it('lets log delivery and the awslogsdelivery account write, and nobody of this account', () => {
    expect(denies(st, vended)).toBe(false);
    expect(denies(st, elbService)).toBe(false);
    // CloudFront legacy logging: the awslogsdelivery account, through the bucket ACL.
    expect(denies(st, otherAccount)).toBe(false);
    expect(denies(st, admin)).toBe(true);
    expect(denies(st, root)).toBe(true);
  });
});

describe('the log bucket policy for ALBs, with one more writer', () => {
  const st = denyStatement(
    {
      scope: 'REGIONAL',
      logs: { prefix: 'alb/', extraWriters: [REPLAY_ROLE] },
      attach: { mode: 'none' },
    },
    'eu-west-1',
  );

  it('denies everyone but the delivery services, the Region ELB account and the extra writer', () => {
    expect(st.Resource).toEqual({ 'Fn::Join': ['', [expect.anything(), '/alb/*']] });
    expect(st.Condition).toEqual({
      StringNotEqualsIfExists: { 'aws:PrincipalServiceName': SERVICES },
      // eu-west-1's ELB log delivery account.
      StringNotEquals: { 'aws:PrincipalAccount': ['156460612806'] },
      ArnNotLike: { 'aws:PrincipalArn': [REPLAY_ROLE] },
    });
  });

  it('lets the ELB account and the extra writer through, and no other account', () => {
    expect(denies(st, { 'aws:PrincipalAccount': '156460612806' })).toBe(false);
    expect(denies(st, elbService)).toBe(false);
    expect(denies(st, replay)).toBe(false);
    expect(denies(st, admin)).toBe(true);
    expect(denies(st, otherAccount)).toBe(true);
  });
});

describe('the log bucket policy with CloudFront standard logging v2 only', () => {
  it('gives the awslogsdelivery account (or any other) no way in', () => {
    const st = denyStatement(
      { logs: { enableOn: [DIST], cloudfrontDelivery: 'v2-json' } },
      'us-east-1',
    );
    expect(denies(st, vended)).toBe(false);
    expect(denies(st, otherAccount)).toBe(true);
    expect(denies(st, admin)).toBe(true);
  });
});

describe('logs.extraWriters', () => {
  it('takes IAM role, user and account root ARNs', () => {
    const ok = [
      REPLAY_ROLE,
      `arn:aws:iam::${ACCOUNT}:user/ops/alice`,
      `arn:aws:iam::${ACCOUNT}:root`,
    ];
    expect(parseConfig({ logs: { extraWriters: ok } }).logs.extraWriters).toEqual(ok);
    expect(parseConfig({}).logs.extraWriters).toEqual([]);
  });

  it.each([
    ['*', /^logs\.extraWriters\[0\] must be an IAM role, user or account root ARN, got "\*"$/],
    [
      `arn:aws:iam::${ACCOUNT}:role/*`,
      /^logs\.extraWriters\[0\] must be an IAM role, user or account root ARN/,
    ],
    ['arn:aws:s3:::bucket', /^logs\.extraWriters\[0\] must be an IAM role/],
  ])('refuses %s with one line', (arn, line) => {
    expect(() => parseConfig({ logs: { extraWriters: [arn] } })).toThrow(ConfigError);
    expect(() => parseConfig({ logs: { extraWriters: [arn] } })).toThrow(line);
  });
});
