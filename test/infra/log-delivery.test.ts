import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Construct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import { LEGACY_LOGGING_REFUSED_REGIONS, V2_SUFFIX_PATH } from '../../lib/log-delivery';
import { actions, resources, statements, synth } from './app';

const DIST = 'E2QWRUHEXAMPLE';
const DIST2 = 'E3QWRUHEXAMPLE';
const ALB =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef';
const ACCOUNT = { Ref: 'AWS::AccountId' };

/** Logical ids of the resources of `type`. */
function ids(template: Template, type: string): string[] {
  return Object.keys(template.findResources(type)).sort();
}

/** The bucket policy statement with this Sid. */
function bucketStatement(template: Template, sid: string): Record<string, unknown> {
  const policies = Object.values(template.findResources('AWS::S3::BucketPolicy'));
  const all = policies.flatMap(
    (p) => (p.Properties.PolicyDocument.Statement as Record<string, unknown>[]) ?? [],
  );
  const found = all.filter((s) => s.Sid === sid);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('LogDelivery logical ids', () => {
  // A changed logical id replaces the resource: CloudFormation would switch
  // logging off and on again, and a custom resource's delete would run.
  it('keeps the ids the resources had when they were made by EdgeBan itself', () => {
    const cf = synth({ logs: { prefix: 'cf/', enableOn: [DIST] } }, 'eu-west-1');
    expect(ids(cf.pipeline, 'Custom::EdgebanDistributionLogging')).toEqual([
      'EdgeBanLoggingE2QWRUHEXAMPLE6E8803AC',
    ]);
    const alb = synth(
      { scope: 'REGIONAL', logs: { prefix: 'alb/', enableOn: [ALB] } },
      'eu-west-1',
    );
    expect(ids(alb.pipeline, 'Custom::EdgebanAlbLogging')).toEqual([
      'EdgeBanAlbLogging0123456789abcdefE4B91620',
    ]);
  });
});

describe('vended log delivery bucket policy', () => {
  // AWS's documented statements (AWS-logs-infrastructure-V2-S3): the ACL
  // check and the write, both bound to this account and to deliveries of
  // us-east-1, where CloudFront v2 deliveries live.
  const sourceArn = {
    'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':logs:us-east-1:', ACCOUNT, ':*']],
  };

  it('has AWSLogDeliveryAclCheck with aws:SourceAccount and aws:SourceArn', () => {
    const s = synth({ logs: { prefix: 'cf/' } });
    const acl = bucketStatement(s.pipeline, 'AWSLogDeliveryAclCheck');
    expect(acl).toEqual({
      Sid: 'AWSLogDeliveryAclCheck',
      Effect: 'Allow',
      Principal: { Service: 'delivery.logs.amazonaws.com' },
      Action: 's3:GetBucketAcl',
      Resource: { 'Fn::GetAtt': [expect.stringMatching(/^EdgeBanLogBucket/), 'Arn'] },
      Condition: {
        StringEquals: { 'aws:SourceAccount': ACCOUNT },
        ArnLike: { 'aws:SourceArn': sourceArn },
      },
    });
  });

  it('has AWSLogDeliveryWrite under the prefix folder, bucket-owner-full-control, same conditions', () => {
    const s = synth({ logs: { prefix: 'cf/' } });
    const write = bucketStatement(s.pipeline, 'AWSLogDeliveryWrite');
    expect(write).toEqual({
      Sid: 'AWSLogDeliveryWrite',
      Effect: 'Allow',
      Principal: { Service: 'delivery.logs.amazonaws.com' },
      Action: 's3:PutObject',
      Resource: {
        'Fn::Join': [
          '',
          [{ 'Fn::GetAtt': [expect.stringMatching(/^EdgeBanLogBucket/), 'Arn'] }, '/cf/*'],
        ],
      },
      Condition: {
        StringEquals: {
          's3:x-amz-acl': 'bucket-owner-full-control',
          'aws:SourceAccount': ACCOUNT,
        },
        ArnLike: { 'aws:SourceArn': sourceArn },
      },
    });
  });

  it('grants AWSLogs/<account>/CloudFront/ when there is no prefix, where CloudFront then writes', () => {
    const s = synth({ logs: { prefix: '' } });
    const write = bucketStatement(s.pipeline, 'AWSLogDeliveryWrite');
    expect(JSON.stringify(write.Resource)).toContain(
      JSON.stringify(['/AWSLogs/', ACCOUNT, '/CloudFront/*']).slice(1, -1),
    );
  });
});

describe('logs.cloudfrontDelivery config', () => {
  it('defaults to legacy, so a config without it means what it meant before', () => {
    const c = parseConfig({ logs: { enableOn: [DIST] } });
    expect(c.logs.cloudfrontDelivery).toBe('legacy');
    expect(c.logs.distributionFeatures).toEqual([]);
  });

  it.each([
    [
      { cloudfrontDelivery: 'v2' },
      /^logs\.cloudfrontDelivery must be "legacy", "v2-w3c" or "v2-json", got "v2"$/,
    ],
    [
      { enableOn: [DIST], cloudfrontDelivery: 'v2-w3c', bucketName: 'my.logs' },
      /^logs\.bucketName must hold only letters, digits, "_" and "-" for logs\.cloudfrontDelivery v2-w3c .*, got "my\.logs"$/,
    ],
    [
      { enableOn: [DIST], distributionFeatures: ['lambda@edge'] },
      /^logs\.distributionFeatures\[0\] must be a distribution feature \(lambda-edge or vpc-origins\), got "lambda@edge"$/,
    ],
    [
      { enableOn: [DIST], cloudfrontDelivery: 'v2-json', distributionFeatures: ['lambda-edge'] },
      /^logs\.distributionFeatures applies only to distributions in logs\.enableOn with logs\.cloudfrontDelivery "legacy" .*, got \["lambda-edge"\]$/,
    ],
    [
      // The same distribution twice would be logged, and counted, twice.
      { enableOn: [DIST, DIST] },
      /^logs\.enableOn\[1\] must not repeat logs\.enableOn\[0\], got "E2QWRUHEXAMPLE"$/,
    ],
  ])('refuses %j with one line', (logs, message) => {
    expect(() => parseConfig({ logs })).toThrow(message);
  });

  it('lets a v2 delivery use a bucket with dots when no distribution is logged', () => {
    expect(() =>
      parseConfig({ logs: { bucketName: 'my.logs', cloudfrontDelivery: 'v2-w3c' } }),
    ).not.toThrow();
  });
});

describe('CloudFront standard logging v2', () => {
  const v2 = (format: string) => ({
    logs: { prefix: 'cf/', enableOn: [DIST, DIST2], cloudfrontDelivery: format },
  });

  it('makes a delivery source per distribution for its access logs', () => {
    const t = synth(v2('v2-w3c')).pipeline;
    for (const d of [DIST, DIST2]) {
      t.hasResourceProperties('AWS::Logs::DeliverySource', {
        Name: `edgeban-${d}`,
        ResourceArn: `arn:aws:cloudfront::123456789012:distribution/${d}`,
        LogType: 'ACCESS_LOGS',
      });
    }
  });

  it.each([
    ['v2-w3c', 'w3c'],
    ['v2-json', 'json'],
  ])('sends %s to the bucket under the prefix folder as %s', (kind, format) => {
    const t = synth(v2(kind)).pipeline;
    t.resourceCountIs('AWS::Logs::DeliveryDestination', 1);
    t.hasResourceProperties('AWS::Logs::DeliveryDestination', {
      Name: Match.stringLikeRegexp('^[\\w-]{1,60}$'),
      DestinationResourceArn: {
        'Fn::Join': [
          '',
          [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^EdgeBanLogBucket'), 'Arn'] }, '/cf'],
        ],
      },
      OutputFormat: format,
    });
  });

  it('delivers each distribution by hour folders after its source and the bucket policy', () => {
    const t = synth(v2('v2-w3c')).pipeline;
    const deliveries = Object.values(t.findResources('AWS::Logs::Delivery'));
    expect(deliveries).toHaveLength(2);
    const policy = ids(t, 'AWS::S3::BucketPolicy');
    for (const d of deliveries) {
      expect(d.Properties.S3SuffixPath).toBe(V2_SUFFIX_PATH);
      expect(d.Properties.DeliveryDestinationArn).toEqual({
        'Fn::GetAtt': [expect.stringMatching(/Destination/), 'Arn'],
      });
      expect(d.DependsOn).toEqual(
        expect.arrayContaining([...policy, expect.stringMatching(/Source/)]),
      );
    }
  });

  it('leaves the distribution config alone: no legacy logging, no UpdateDistribution', () => {
    const s = synth(v2('v2-json'));
    s.pipeline.resourceCountIs('Custom::EdgebanDistributionLogging', 0);
    const all = statements(s.pipeline).flatMap(actions);
    expect(all).not.toContain('cloudfront:UpdateDistribution');
  });

  it('puts the delivery in a us-east-1 stack when the bucket is elsewhere', () => {
    const s = synth(v2('v2-w3c'), 'eu-west-1');
    s.pipeline.resourceCountIs('AWS::Logs::Delivery', 0);
    s.pipeline.resourceCountIs('AWS::Logs::DeliverySource', 0);
    const stack = s.app.node.findChild('EdgebanLogDelivery') as Stack;
    expect(stack.region).toBe('us-east-1');
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Logs::DeliverySource', 2);
    t.resourceCountIs('AWS::Logs::Delivery', 2);
    // The bucket is the pipeline stack's, read across regions.
    const destination = Object.values(t.findResources('AWS::Logs::DeliveryDestination'))[0]!;
    expect(JSON.stringify(destination.Properties.DestinationResourceArn)).toMatch(
      /"Fn::GetStackOutput":\{"StackName":"Edgeban","Region":"eu-west-1","OutputName":"[^"]*LogBucket/,
    );
    expect(stack.dependencies.map((d) => d.node.id)).toContain('Edgeban');
  });

  it('asserts us-east-1 at deploy time when the stack has no region', () => {
    const t = synth(v2('v2-w3c'), null).pipeline;
    const rule = t.toJSON().Rules?.EdgebanCloudFrontDeliveryRegion;
    expect(rule.Assertions).toEqual([
      {
        Assert: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] },
        AssertDescription: expect.stringContaining('deploy this stack in us-east-1'),
      },
    ]);
  });
});

describe('CloudFront legacy logging in opt-in Regions', () => {
  it('knows the opt-in Regions of the CloudFront docs', () => {
    for (const r of ['af-south-1', 'ap-east-1', 'eu-south-1', 'me-south-1', 'il-central-1']) {
      expect(LEGACY_LOGGING_REFUSED_REGIONS).toContain(r);
    }
    expect(LEGACY_LOGGING_REFUSED_REGIONS).not.toContain('eu-west-1');
  });

  it('fails synth with one line for a bucket in an opt-in Region', () => {
    expect(() =>
      synth(
        { scope: 'REGIONAL', attach: { mode: 'none' }, logs: { enableOn: [DIST] } },
        'af-south-1',
      ),
    ).toThrow(
      /^logs\.cloudfrontDelivery must be "v2-w3c" or "v2-json" for a log bucket in the opt-in Region af-south-1 \(CloudFront legacy logging does not deliver to opt-in Regions\), got "legacy"$/,
    );
  });

  it('synthesizes v2 delivery for the same bucket', () => {
    const s = synth(
      {
        scope: 'REGIONAL',
        attach: { mode: 'none' },
        logs: { enableOn: [DIST], cloudfrontDelivery: 'v2-w3c' },
      },
      'af-south-1',
    );
    s.pipeline.resourceCountIs('AWS::Logs::Delivery', 0);
    expect(s.app.node.tryFindChild('EdgebanLogDelivery')).toBeInstanceOf(Stack);
  });

  it('asserts a Region outside the opt-in ones at deploy time when the Region is unknown', () => {
    const t = synth({ logs: { enableOn: [DIST] } }, null).pipeline;
    const rule = t.toJSON().Rules?.EdgebanLegacyLoggingRegion;
    expect(rule.Assertions).toEqual([
      {
        Assert: {
          'Fn::Not': [
            { 'Fn::Contains': [[...LEGACY_LOGGING_REFUSED_REGIONS], { Ref: 'AWS::Region' }] },
          ],
        },
        AssertDescription: expect.stringContaining('opt-in Regions'),
      },
    ]);
  });

  it('adds no rule when the Region is known and allowed, or nothing is logged by legacy', () => {
    const legacy = synth({ logs: { enableOn: [DIST] } }, 'eu-west-1').pipeline.toJSON();
    expect(legacy.Rules?.EdgebanLegacyLoggingRegion).toBeUndefined();
    const v2 = synth({ logs: { enableOn: [DIST], cloudfrontDelivery: 'v2-json' } }, 'us-east-1');
    expect(v2.pipeline.toJSON().Rules?.EdgebanLegacyLoggingRegion).toBeUndefined();
  });
});

describe('logs.distributionFeatures', () => {
  const handlerStatements = (t: Template) => statements(t);

  it('grants nothing for Lambda@Edge or VPC origins unless the config says so', () => {
    const t = synth({ logs: { enableOn: [DIST] } }).pipeline;
    const all = handlerStatements(t).flatMap(actions);
    expect(all.filter((a) => /Replication/.test(a))).toEqual([]);
    expect(all).not.toContain('cloudfront:GetVpcOrigin');
    expect(all).not.toContain('iam:CreateServiceLinkedRole');
  });

  it('grants what a rewrite of a distribution with Lambda@Edge needs', () => {
    const t = synth({
      logs: { enableOn: [DIST], distributionFeatures: ['lambda-edge'] },
    }).pipeline;
    const st = handlerStatements(t);
    const replication = st.find((s) => actions(s).includes('lambda:EnableReplication*'))!;
    expect(actions(replication).sort()).toEqual([
      'lambda:DisableReplication*',
      'lambda:EnableReplication*',
      'lambda:GetFunction',
    ]);
    expect(JSON.stringify(resources(replication))).toContain(':lambda:us-east-1:');
    expect(JSON.stringify(resources(replication))).toContain(':function:*:*');
    const slr = st.find((s) => actions(s).includes('iam:CreateServiceLinkedRole'))!;
    expect(slr.Condition).toEqual({
      StringLike: { 'iam:AWSServiceName': 'replicator.lambda.amazonaws.com' },
    });
    expect(JSON.stringify(resources(slr))).toContain(
      'role/aws-service-role/replicator.lambda.amazonaws.com/AWSServiceRoleForLambdaReplicator',
    );
    expect(st.flatMap(actions)).not.toContain('cloudfront:GetVpcOrigin');
  });

  it('grants GetVpcOrigin for a distribution with VPC origins', () => {
    const t = synth({
      logs: { enableOn: [DIST], distributionFeatures: ['vpc-origins'] },
    }).pipeline;
    const st = handlerStatements(t).find((s) => actions(s).includes('cloudfront:GetVpcOrigin'))!;
    expect(actions(st)).toEqual(['cloudfront:GetVpcOrigin']);
    expect(JSON.stringify(resources(st))).toContain(':vpcorigin/*');
  });
});

describe('LogDelivery in another CDK app', () => {
  it('refuses v2 outside us-east-1 without an App to put the delivery stack in', async () => {
    const { LogDelivery } = await import('../../lib/log-delivery');
    const { Bucket } = await import('aws-cdk-lib/aws-s3');
    // A stack under a plain construct root: no App to add a stack to.
    const root = new Construct(undefined as unknown as Construct, '');
    const stack = new Stack(root, 'Lone', { env: { region: 'eu-west-1' } });
    const config = parseConfig({ logs: { enableOn: [DIST], cloudfrontDelivery: 'v2-w3c' } });
    expect(
      () =>
        new LogDelivery(stack, 'Default', {
          config,
          bucket: Bucket.fromBucketName(stack, 'B', 'my-logs'),
        }),
    ).toThrow(/^logs\.cloudfrontDelivery v2 needs a us-east-1 stack/);
  });
});

// cfn-lint runs over every stack of these shapes (v2 split, in us-east-1 and
// environment-agnostic; legacy with Lambda@Edge and VPC origins; ALB) in
// test/infra/nag.test.ts, in the one run that lints every template.
