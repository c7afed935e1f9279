/**
 * Every attachment mode (a new web ACL on distributions or ALBs, a rule
 * group, none), logging switched on where asked, an existing bucket, and
 * who the alarms notify.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import { OUTPUTS } from '../../lambda/shared/contract';
import { EdgeBanWaf, RULE_GROUP_CAPACITY } from '../../lib';
import {
  actions,
  context,
  logicalId,
  resources,
  SHIPPED,
  type Synthesized,
  statements,
  synth,
} from './app';

const DIST = 'E2QWRUHEXAMPLE';
const ALB =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:ops-alarms';
const arn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const distributionArn = (id: string) => `arn:aws:cloudfront::123456789012:distribution/${id}`;
const bucketArn = (name: string) => `arn:aws:s3:::${name}`;

/** Every action granted on the bucket itself (not its objects), sorted. */
function bucketActions(s: Synthesized): string[] {
  const onBucket = statements(s.pipeline).filter((st) =>
    resources(st).includes(bucketArn('my-logs')),
  );
  return [...new Set(onBucket.flatMap(actions))].sort();
}

describe('new web ACL on CloudFront distributions, logging on, an existing bucket, alarm e-mail', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth({
      logs: { bucketName: 'my-logs', prefix: 'cf/', enableOn: [DIST] },
      attach: { distributionIds: [DIST] },
      alarms: { email: 'ops@example.com' },
    });
  });

  it('attaches the web ACL by a custom resource that refuses to replace another', () => {
    const acl = logicalId(s.pipeline, 'AWS::WAFv2::WebACL', 'EdgeBanWafWebAcl');
    s.pipeline.hasResourceProperties('Custom::EdgebanDistributionWebAcl', {
      Kind: 'DistributionWebAcl',
      DistributionId: DIST,
      WebAclArn: arn(acl),
      ReplaceExisting: false,
      ServiceToken: arn(
        logicalId(s.pipeline, 'AWS::Lambda::Function', 'EdgebanAttachProviderframeworkonEvent'),
      ),
    });
  });

  it('lets the handler update these distributions and use this web ACL only', () => {
    const acl = logicalId(s.pipeline, 'AWS::WAFv2::WebACL', 'EdgeBanWafWebAcl');
    const all = statements(s.pipeline);
    const onDistributions = all.filter((st) =>
      JSON.stringify(resources(st)).includes(':distribution/'),
    );
    expect(onDistributions.length).toBeGreaterThan(0);
    for (const st of onDistributions) expect(resources(st)).toEqual([distributionArn(DIST)]);
    // The web ACL through CloudFront's own association calls; the whole
    // config is rewritten only for the logging.
    expect([...new Set(onDistributions.flatMap(actions))].sort()).toEqual([
      'cloudfront:AssociateDistributionWebACL',
      'cloudfront:DisassociateDistributionWebACL',
      'cloudfront:GetDistributionConfig',
      'cloudfront:UpdateDistribution',
    ]);
    const vpcOrigins = all.filter((st) => actions(st).includes('cloudfront:GetVpcOrigin'));
    expect(vpcOrigins).toEqual([
      {
        Effect: 'Allow',
        Action: 'cloudfront:GetVpcOrigin',
        Resource: 'arn:aws:cloudfront::123456789012:vpcorigin/*',
      },
    ]);
    const waf = all.filter((st) =>
      actions(st).some((a) => a.startsWith('wafv2:') && a.endsWith('WebACL')),
    );
    expect(waf).toEqual([
      {
        Effect: 'Allow',
        Action: ['wafv2:AssociateWebACL', 'wafv2:DisassociateWebACL', 'wafv2:GetWebACL'],
        Resource: arn(acl),
      },
    ]);
  });

  it('switches the distribution logging to the bucket and prefix', () => {
    s.pipeline.hasResourceProperties('Custom::EdgebanDistributionLogging', {
      Kind: 'DistributionLogging',
      DistributionId: DIST,
      Bucket: 'my-logs.s3.amazonaws.com',
      Prefix: 'cf/',
    });
    // CloudFront writes its log delivery grant into the bucket ACL with the caller's rights.
    expect(bucketActions(s)).toEqual(
      expect.arrayContaining(['s3:GetBucketAcl', 's3:PutBucketAcl']),
    );
  });

  it('uses the existing bucket and turns on its EventBridge events without touching the rest', () => {
    s.pipeline.resourceCountIs('AWS::S3::Bucket', 0);
    s.pipeline.resourceCountIs('AWS::S3::BucketPolicy', 0);
    s.pipeline.hasResourceProperties('Custom::EdgebanBucketEventBridge', {
      Kind: 'BucketEventBridge',
      BucketName: 'my-logs',
      ExpectedBucketOwner: { Ref: 'AWS::AccountId' },
    });
    // Bucket-level calls: the notification read-merge-write, the logging ACL,
    // and ingest's ListBucket (a missing key is then NoSuchKey), nothing else.
    expect(bucketActions(s)).toEqual([
      's3:GetBucketAcl',
      's3:GetBucketNotification',
      's3:ListBucket',
      's3:PutBucketAcl',
      's3:PutBucketNotification',
    ]);
  });

  it('routes only objects under the prefix and lets ingest read only there', () => {
    s.pipeline.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        detail: { bucket: { name: ['my-logs'] }, object: { key: [{ prefix: 'cf/' }] } },
      },
    });
    const reads = statements(s.pipeline).filter((st) => actions(st).includes('s3:GetObject'));
    expect(reads.map(resources)).toEqual([['arn:aws:s3:::my-logs/cf/*']]);
  });

  it('runs the attachment handler like the others: Node 22, ARM64, own log group', () => {
    s.pipeline.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('web ACL on CloudFront distributions'),
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      LoggingConfig: {
        LogGroup: { Ref: Match.stringLikeRegexp('EdgebanAttachProviderHandlerLogs') },
      },
    });
  });

  it('subscribes the e-mail to a TLS-only topic that every alarm notifies', () => {
    const topic = logicalId(s.pipeline, 'AWS::SNS::Topic', 'EdgeBanAlarmTopic');
    s.pipeline.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: topic },
    });
    s.pipeline.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
    const alarms = Object.values(s.pipeline.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(0);
    for (const a of alarms) expect(a.Properties.AlarmActions).toEqual([{ Ref: topic }]);
  });
});

describe('replacing an existing web ACL', () => {
  it('grants the WAF calls on any global web ACL of the account, only when allowed', () => {
    const s = synth({ attach: { distributionIds: [DIST], replaceExistingWebAcl: true } });
    s.pipeline.hasResourceProperties('Custom::EdgebanDistributionWebAcl', {
      ReplaceExisting: true,
    });
    const wildcard = statements(s.pipeline).filter((st) =>
      JSON.stringify(resources(st)).includes('global/webacl/*'),
    );
    expect(wildcard).toHaveLength(1);
    expect(actions(wildcard[0]!)).toEqual([
      'wafv2:AssociateWebACL',
      'wafv2:DisassociateWebACL',
      'wafv2:GetWebACL',
    ]);
  });
});

describe('new web ACL on ALBs, ALB logging on, an alarm topic of your own', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth(
      {
        scope: 'REGIONAL',
        logs: { prefix: 'alb/', enableOn: [ALB] },
        attach: { albArns: [ALB] },
        alarms: { topicArn: TOPIC },
      },
      'eu-west-1',
    );
  });

  it('associates the web ACL with the ALB', () => {
    const acl = logicalId(s.pipeline, 'AWS::WAFv2::WebACL', 'EdgeBanWafWebAcl');
    s.pipeline.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {
      ResourceArn: ALB,
      WebACLArn: arn(acl),
    });
    s.pipeline.resourceCountIs('Custom::EdgebanDistributionWebAcl', 0);
  });

  it('switches ALB access logs to the bucket, prefix without its trailing slash, after the bucket policy', () => {
    const bucket = logicalId(s.pipeline, 'AWS::S3::Bucket', 'EdgeBanLogBucket');
    const resource = Object.values(s.pipeline.findResources('Custom::EdgebanAlbLogging'));
    expect(resource).toHaveLength(1);
    expect(resource[0]!.Properties).toEqual({
      ServiceToken: { 'Fn::GetAtt': [expect.stringMatching(/^EdgeBanAlbLoggingProvider/), 'Arn'] },
      LoadBalancerArn: ALB,
      Bucket: { Ref: bucket },
      Prefix: 'alb',
    });
    expect(resource[0]!.DependsOn).toEqual(
      expect.arrayContaining([
        logicalId(s.pipeline, 'AWS::S3::BucketPolicy', 'EdgeBanLogBucketPolicy'),
      ]),
    );
    const modify = statements(s.pipeline).filter((st) =>
      actions(st).includes('elasticloadbalancing:ModifyLoadBalancerAttributes'),
    );
    expect(modify.map(resources)).toEqual([[ALB]]);
  });

  it('lets ELB log delivery write under the ALB prefix', () => {
    s.pipeline.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'ElbLogDelivery',
            Resource: {
              'Fn::Join': [
                '',
                [Match.anyValue(), '/alb/AWSLogs/', { Ref: 'AWS::AccountId' }, '/*'],
              ],
            },
          }),
        ]),
      },
    });
  });

  it('notifies the given topic and makes none', () => {
    s.pipeline.resourceCountIs('AWS::SNS::Topic', 0);
    for (const a of Object.values(s.pipeline.findResources('AWS::CloudWatch::Alarm'))) {
      expect(a.Properties.AlarmActions).toEqual([TOPIC]);
    }
  });
});

describe('rule group for your own web ACL, more IP sets', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth({ attach: { mode: 'rule-group' }, ipSets: { ipv4: 3, ipv6: 2 } });
  });

  it('makes a rule group sized for the most IP sets and no web ACL', () => {
    s.pipeline.resourceCountIs('AWS::WAFv2::WebACL', 0);
    s.pipeline.hasResourceProperties('AWS::WAFv2::RuleGroup', {
      Scope: 'CLOUDFRONT',
      Capacity: RULE_GROUP_CAPACITY,
      Rules: [
        Match.objectLike({
          Name: 'edgeban-blocklist',
          Action: { Block: {} },
          Statement: { OrStatement: { Statements: Match.anyValue() } },
        }),
      ],
    });
    const group = Object.values(s.pipeline.findResources('AWS::WAFv2::RuleGroup'))[0]!;
    expect(group.Properties.Rules[0].Statement.OrStatement.Statements).toHaveLength(5);
  });

  it('outputs the rule group ARN, not a web ACL', () => {
    const outputs = s.pipeline.toJSON().Outputs as Record<string, unknown>;
    expect(outputs[OUTPUTS.ruleGroupArn]).toBeDefined();
    expect(outputs[OUTPUTS.webAclArn]).toBeUndefined();
    expect(outputs[`${OUTPUTS.ipSetConsoleUrl}Ipv43`]).toBeDefined();
  });

  it('lets the reconciler update all five sets and alarms on each version as a whole', () => {
    const sets = Object.keys(s.pipeline.findResources('AWS::WAFv2::IPSet'));
    expect(sets).toHaveLength(5);
    s.pipeline.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: ['wafv2:GetIPSet', 'wafv2:UpdateIPSet'],
            Resource: sets.map(arn),
          },
        ]),
      },
    });
    s.pipeline.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: '100 * (FILL(m0, 0) + FILL(m1, 0) + FILL(m2, 0)) / 30000' }),
      ]),
    });
  });
});

describe('no attachment', () => {
  it('makes the IP sets only and exports their ARNs', () => {
    const s = synth({ attach: { mode: 'none' } });
    s.pipeline.resourceCountIs('AWS::WAFv2::WebACL', 0);
    s.pipeline.resourceCountIs('AWS::WAFv2::RuleGroup', 0);
    s.pipeline.resourceCountIs('AWS::WAFv2::IPSet', 2);
    const outputs = s.pipeline.toJSON().Outputs as Record<string, unknown>;
    expect(outputs[OUTPUTS.ipSetArns]).toBeDefined();
    expect(outputs[OUTPUTS.webAclArn]).toBeUndefined();
    expect(outputs[OUTPUTS.ruleGroupArn]).toBeUndefined();
  });
});

describe('EdgeBanWaf.blocklistRule', () => {
  const rule = (fields: Record<string, unknown>) => {
    const app = new App({ context: context(SHIPPED) });
    const stack = new Stack(app, 'S', { env: { region: 'us-east-1', account: '123456789012' } });
    const waf = new EdgeBanWaf(stack, 'Waf', {
      config: parseConfig({
        ...SHIPPED,
        attach: { mode: 'none' },
        ipSets: { ipv4: 1, ipv6: 1 },
        ...fields,
      }),
    });
    return stack.resolve(waf.blocklistRule(7)) as Record<string, unknown>;
  };

  it('blocks with WAF default 403 in block mode', () => {
    expect(rule({ mode: 'block', response: 403 })).toMatchObject({
      priority: 7,
      action: { block: {} },
    });
  });

  it('blocks with a custom 429 when response is 429', () => {
    expect(rule({ mode: 'block', response: 429 }).action).toEqual({
      block: { customResponse: { responseCode: 429 } },
    });
  });

  it('counts in count and observe modes', () => {
    expect(rule({ mode: 'count' }).action).toEqual({ count: {} });
    expect(rule({ mode: 'observe', response: 429 }).action).toEqual({ count: {} });
  });

  it('references every IP set in one OR, IPv4 sets first', () => {
    const app = new App({ context: context(SHIPPED) });
    const stack = new Stack(app, 'S', { env: { region: 'eu-west-1', account: '123456789012' } });
    const waf = new EdgeBanWaf(stack, 'Waf', {
      config: parseConfig({
        scope: 'REGIONAL',
        attach: { mode: 'none' },
        ipSets: { ipv4: 2, ipv6: 1 },
      }),
    });
    const statement = stack.resolve(waf.blocklistRule(0).statement);
    expect(statement.orStatement.statements).toEqual(
      waf.ipSets.map((set) => ({ ipSetReferenceStatement: { arn: stack.resolve(set.arn) } })),
    );
    expect(waf.ipSets.map((set) => set.version)).toEqual(['IPV4', 'IPV4', 'IPV6']);
  });
});
