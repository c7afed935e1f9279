/**
 * `logs.enableOn`: the log delivery the stack switches on (CloudFront
 * legacy logging, CloudFront standard logging v2, ALB access logs), its
 * logical ids, its bucket policy and the config checks around it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Construct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
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

/** cfn-lint's findings for a template, as its JSON output gives them. */
interface Finding {
  readonly Level: string;
  readonly Message: string;
  readonly Rule: { readonly Id: string };
  readonly Location: { readonly Path: readonly (string | number)[] };
}

const CFN_LINT = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' }).status === 0;
if (!CFN_LINT && process.env.CI === 'true') {
  throw new Error('cfn-lint is not installed: CI must run it (pip install cfn-lint)');
}

/** Lints the templates in one cfn-lint run; the findings of each, by name. */
function cfnLint(templates: Record<string, Template>): Record<string, Finding[]> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeban-cfn-lint-'));
  try {
    const files = Object.entries(templates).map(([name, t]) => {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(t.toJSON()));
      return file;
    });
    // Exit codes are a bit mask of the levels found; the JSON is the answer.
    const run = spawnSync('cfn-lint', ['--format', 'json', ...files], { encoding: 'utf8' });
    const all = JSON.parse(run.stdout || '[]') as (Finding & { Filename: string })[];
    const out: Record<string, Finding[]> = {};
    for (const name of Object.keys(templates)) {
      out[name] = all.filter((f) => f.Filename === join(dir, `${name}.json`));
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Findings that are aws-cdk-lib's, not this construct's: a NodejsFunction
 * lists its role in DependsOn next to the GetAtt (W3005), so the role's
 * default policy exists before the function runs.
 */
const CDK_OWN = (f: Finding) =>
  f.Rule.Id === 'W3005' &&
  /Role[0-9A-F]{8}' dependency already enforced by a 'GetAtt'/.test(f.Message);

/** The pipeline shapes whose log delivery resources are linted. */
const LINTED: [string, Record<string, unknown>, string | null][] = [
  ['v2-pipeline', { logs: { enableOn: [DIST], cloudfrontDelivery: 'v2-json' } }, 'us-east-1'],
  ['v2-no-region', { logs: { enableOn: [DIST], cloudfrontDelivery: 'v2-w3c' } }, null],
  [
    'legacy-features-no-region',
    { logs: { enableOn: [DIST], distributionFeatures: ['lambda-edge', 'vpc-origins'] } },
    null,
  ],
  ['alb', { scope: 'REGIONAL', logs: { prefix: 'alb/', enableOn: [ALB] } }, 'eu-west-1'],
];

/** Logical ids of the resources log delivery makes or changes in a pipeline stack. */
const OURS =
  /^(EdgeBanAlbLogging|EdgeBanLogging|EdgeBanCloudFrontLogDelivery|EdgeBanLogBucketPolicy|EdgebanAttachProviderHandlerRoleDefaultPolicy)/;

describe.skipIf(!CFN_LINT)('cfn-lint over the log delivery resources', () => {
  // Skipped only outside CI, where cfn-lint may be missing: `pip install cfn-lint`.
  let findings: Record<string, Finding[]>;
  const pipelines: Record<string, Template> = {};
  beforeAll(() => {
    const split = synth(
      { logs: { prefix: 'cf/', enableOn: [DIST, DIST2], cloudfrontDelivery: 'v2-w3c' } },
      'eu-west-1',
    );
    const templates: Record<string, Template> = {
      'v2-split': Template.fromStack(split.app.node.findChild('EdgebanLogDelivery') as Stack),
    };
    for (const [name, fields, region] of LINTED) {
      pipelines[name] = synth(fields, region).pipeline;
      templates[name] = pipelines[name];
    }
    findings = cfnLint(templates);
  });

  it('finds nothing in the us-east-1 v2 delivery stack', () => {
    expect(findings['v2-split']).toEqual([]);
  });

  it.each(LINTED.map(([name]) => name))(
    'finds nothing in the log delivery resources of the pipeline stack: %s',
    (name) => {
      const t = pipelines[name]!;
      const ours = new Set(Object.keys(t.toJSON().Resources).filter((id) => OURS.test(id)));
      expect(ours.size).toBeGreaterThan(0);
      const own = findings[name]!.filter(
        (f) =>
          (f.Location.Path[0] === 'Resources' && ours.has(String(f.Location.Path[1]))) ||
          f.Location.Path[0] === 'Rules',
      );
      expect(own.filter((f) => !CDK_OWN(f))).toEqual([]);
    },
  );
});
