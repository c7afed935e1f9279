/**
 * The pipeline stack of the shipped config (CLOUDFRONT scope, bucket in
 * us-east-1: one stack), property by property for everything that keeps
 * logs arriving, the data safe and the permissions tight.
 */
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import { parseS3EventBody } from '../../lambda/ingest/ingest';
import { readConfigOutput } from '../../lambda/shared/config-output';
import {
  ENV,
  METRIC_DIMENSIONS,
  METRIC_SERVICES,
  METRICS,
  OUTPUTS,
  TABLE,
} from '../../lambda/shared/contract';
import { RECONCILE_TRIGGER } from '../../lambda/shared/reconcile-trigger';
import {
  INGEST_BATCH_SIZE,
  MAX_RECEIVE_COUNT,
  RECONCILER_BATCH_SIZE,
  RECONCILER_VISIBILITY_TIMEOUTS,
  SIZING,
} from '../../lib';
import { actions, logicalId, masked, resources, SHIPPED, statements, synth } from './app';

let t: Template;
let bucket: string;
let queue: string;
let dlq: string;
let reconcilerQueue: string;
let reconcilerDlq: string;
let scheduleDlq: string;
let table: string;
let ingest: string;
let reconciler: string;

beforeAll(() => {
  const s = synth();
  expect(s.waf).toBeUndefined();
  t = s.pipeline;
  bucket = logicalId(t, 'AWS::S3::Bucket', 'EdgeBanLogBucket');
  queue = logicalId(t, 'AWS::SQS::Queue', 'EdgeBanQueue');
  dlq = logicalId(t, 'AWS::SQS::Queue', 'EdgeBanDeadLetterQueue');
  reconcilerQueue = logicalId(t, 'AWS::SQS::Queue', 'EdgeBanReconcilerQueue');
  reconcilerDlq = logicalId(t, 'AWS::SQS::Queue', 'EdgeBanReconcilerDeadLetterQueue');
  scheduleDlq = logicalId(t, 'AWS::SQS::Queue', 'EdgeBanScheduleDeadLetterQueue');
  table = logicalId(t, 'AWS::DynamoDB::Table', 'EdgeBanTable');
  ingest = logicalId(t, 'AWS::Lambda::Function', 'EdgeBanIngest');
  reconciler = logicalId(t, 'AWS::Lambda::Function', 'EdgeBanReconciler');
});

const arn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });

describe('log bucket', () => {
  it('is encrypted with SSE-S3, the only encryption ALB log delivery accepts', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
        ],
      },
    });
  });

  it('blocks all public access', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
    });
  });

  it('keeps ACLs enabled (BucketOwnerPreferred) for CloudFront legacy logging', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerPreferred' }] },
    });
  });

  it('expires log objects and abandoned uploads', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: [
          Match.objectLike({
            Status: 'Enabled',
            ExpirationInDays: 90,
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          }),
        ],
      },
    });
  });

  it('sends object events to EventBridge in its own notification configuration', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } },
    });
    t.resourceCountIs('Custom::S3BucketNotifications', 0);
  });

  it('expires count and bound items past the horizon by TTL', () => {
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      TimeToLiveSpecification: { AttributeName: TABLE.expiresAt, Enabled: true },
    });
  });

  it('is retained with the stack', () => {
    t.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });

  it('denies requests without TLS', () => {
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it("lets the region's ELB log delivery account write under AWSLogs/<account>/ only", () => {
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Sid: 'ElbLogDelivery',
            Effect: 'Allow',
            Action: 's3:PutObject',
            // us-east-1's ELB account.
            Principal: { AWS: 'arn:aws:iam::127311923021:root' },
            Resource: {
              'Fn::Join': ['', [arn(bucket), '/AWSLogs/', { Ref: 'AWS::AccountId' }, '/*']],
            },
          },
        ]),
      },
    });
  });
  // The vended log delivery statements: test/infra/log-delivery.test.ts.
});

describe('queues', () => {
  it('gives SQS a visibility timeout of at least 6x the ingest timeout', () => {
    const fn = t.findResources('AWS::Lambda::Function')[ingest]!;
    const q = t.findResources('AWS::SQS::Queue')[queue]!;
    const timeout = fn.Properties.Timeout as number;
    expect(timeout).toBe(SIZING.ingestTimeout.toSeconds());
    expect(q.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * timeout);
  });

  it('redrives failed objects to the dead-letter queue', () => {
    t.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: arn(dlq), maxReceiveCount: MAX_RECEIVE_COUNT },
    });
    t.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: {
        deadLetterTargetArn: arn(reconcilerDlq),
        maxReceiveCount: MAX_RECEIVE_COUNT,
      },
    });
  });

  it('encrypts every queue at rest', () => {
    for (const q of Object.values(t.findResources('AWS::SQS::Queue'))) {
      expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    }
  });

  it('denies every queue request without TLS', () => {
    const policies = Object.values(t.findResources('AWS::SQS::QueuePolicy'));
    expect(policies).toHaveLength(5);
    for (const p of policies) {
      expect(p.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 'sqs:*',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
    }
  });

  it('wake the reconciler through one FIFO queue that delays and deduplicates, its dead letters FIFO too', () => {
    const queues = t.findResources('AWS::SQS::Queue');
    expect(queues[reconcilerQueue]!.Properties).toMatchObject({
      FifoQueue: true,
      ContentBasedDeduplication: true,
      DelaySeconds: RECONCILE_TRIGGER.coalesceSeconds,
      VisibilityTimeout: SIZING.reconcilerTimeout.toSeconds() * RECONCILER_VISIBILITY_TIMEOUTS,
    });
    expect(queues[reconcilerDlq]!.Properties.FifoQueue).toBe(true);
    // EventBridge takes only a standard queue as a target's dead-letter queue.
    expect(queues[scheduleDlq]!.Properties.FifoQueue).toBeUndefined();
    for (const id of [queue, dlq]) expect(queues[id]!.Properties.FifoQueue).toBeUndefined();
  });

  it('keeps dead letters for 14 days', () => {
    for (const id of [dlq, reconcilerDlq, scheduleDlq]) {
      expect(t.findResources('AWS::SQS::Queue')[id]!.Properties.MessageRetentionPeriod).toBe(
        14 * 86400,
      );
    }
  });
});

describe('object events', () => {
  it("route the bucket's Object Created events to the queue, failures to the dead-letter queue", () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { bucket: { name: [{ Ref: bucket }] } },
      },
      Targets: [
        Match.objectLike({
          Arn: arn(queue),
          DeadLetterConfig: { Arn: arn(dlq) },
        }),
      ],
    });
  });

  it('let only this rule send to the queue', () => {
    const rule = logicalId(t, 'AWS::Events::Rule', 'EdgeBanLogObjects');
    t.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queue }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: Match.arrayWith(['sqs:SendMessage']),
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': arn(rule) } },
          }),
        ]),
      },
    });
  });

  it('arrive as S3 event notification records the ingest handler reads', () => {
    const rule = Object.values(t.findResources('AWS::Events::Rule')).find(
      (r) => r.Properties.EventPattern?.source?.[0] === 'aws.s3',
    );
    const transformer = rule?.Properties.Targets[0].InputTransformer;
    const body = applyInputTransformer(transformer, {
      version: '0',
      'detail-type': 'Object Created',
      source: 'aws.s3',
      time: '2024-05-01T10:05:00Z',
      region: 'us-east-1',
      detail: {
        bucket: { name: 'edgeban-logs' },
        object: {
          key: 'E2QWRUHEXAMPLE.2024-05-01-10.abcd1234.gz',
          size: 4096,
          etag: 'b1946ac92492d2347c6235b4d2611184',
          sequencer: '00617F08299329D189',
        },
        reason: 'PutObject',
      },
    });
    expect(parseS3EventBody(body)).toEqual([
      {
        bucket: 'edgeban-logs',
        key: 'E2QWRUHEXAMPLE.2024-05-01-10.abcd1234.gz',
        etag: 'b1946ac92492d2347c6235b4d2611184',
        size: 4096,
      },
    ]);
  });
});

describe('functions', () => {
  it('run Node 22 on ARM64 with X-Ray tracing', () => {
    for (const id of [ingest, reconciler]) {
      const p = t.findResources('AWS::Lambda::Function')[id]!.Properties;
      expect(p.Runtime).toBe('nodejs22.x');
      expect(p.Architectures).toEqual(['arm64']);
      expect(p.TracingConfig).toEqual({ Mode: 'Active' });
      expect(p.Handler).toBe('index.handler');
    }
  });

  it('are sized as the bench says', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('counts the requests'),
      MemorySize: SIZING.ingestMemoryMb,
      Timeout: SIZING.ingestTimeout.toSeconds(),
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('IP sets equal to the active blocks'),
      MemorySize: SIZING.reconcilerMemoryMb,
      Timeout: SIZING.reconcilerTimeout.toSeconds(),
    });
  });

  it('reserve no concurrency: one reconciler at a time comes from the FIFO queue', () => {
    const fns = t.findResources('AWS::Lambda::Function');
    for (const fn of Object.values(fns)) {
      expect(fn.Properties.ReservedConcurrentExecutions).toBeUndefined();
    }
    // The reconciler runs only from its queue: nothing invokes it directly.
    const mappings = Object.values(t.findResources('AWS::Lambda::EventSourceMapping')).filter(
      (m) => m.Properties.FunctionName.Ref === reconciler,
    );
    expect(mappings.map((m) => m.Properties.EventSourceArn)).toEqual([arn(reconcilerQueue)]);
    for (const p of Object.values(t.findResources('AWS::Lambda::Permission'))) {
      expect(JSON.stringify(p.Properties.FunctionName)).not.toContain(reconciler);
    }
  });

  it('log to explicit log groups with a retention', () => {
    for (const id of [ingest, reconciler]) {
      const fn = t.findResources('AWS::Lambda::Function')[id]!;
      const group = fn.Properties.LoggingConfig.LogGroup.Ref as string;
      const lg = t.findResources('AWS::Logs::LogGroup')[group]!;
      expect(lg.Properties.RetentionInDays).toBe(30);
    }
  });

  it('get the environment the handlers read', () => {
    const env = t.findResources('AWS::Lambda::Function')[reconciler]!.Properties.Environment
      .Variables as Record<string, unknown>;
    expect(env[ENV.tableName]).toEqual({ Ref: table });
    expect(env[ENV.reconcilerQueueUrl]).toEqual({ Ref: reconcilerQueue });
    expect(env[ENV.wafScope]).toBe('CLOUDFRONT');
    expect(env[ENV.wafRegion]).toBe('us-east-1');
    expect(env.NODE_OPTIONS).toBe('--enable-source-maps');
    // The config goes as the user wrote it, without comments, and parses the same.
    const config = env[ENV.config] as string;
    expect(config).not.toContain('//');
    expect(parseConfig(config)).toEqual(parseConfig(SHIPPED));
    expect(JSON.stringify(env[ENV.ipSets])).toContain('\\"version\\":\\"IPV4\\"');
  });

  it('take object events four at a time and report partial batch failures', () => {
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: arn(queue),
      FunctionName: { Ref: ingest },
      BatchSize: INGEST_BATCH_SIZE,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('wake the reconciler from its FIFO queue in batches, with no batching window', () => {
    const mapping = Object.values(t.findResources('AWS::Lambda::EventSourceMapping')).find(
      (m) => m.Properties.FunctionName.Ref === reconciler,
    )!;
    expect(mapping.Properties).toEqual({
      EventSourceArn: arn(reconcilerQueue),
      FunctionName: { Ref: reconciler },
      BatchSize: RECONCILER_BATCH_SIZE,
    });
  });

  it('put the minute schedule in the same message group, late ticks dropped to a standard dead-letter queue', () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [
        Match.objectLike({
          Arn: arn(reconcilerQueue),
          SqsParameters: { MessageGroupId: RECONCILE_TRIGGER.groupId },
          DeadLetterConfig: { Arn: arn(scheduleDlq) },
          RetryPolicy: { MaximumEventAgeInSeconds: 120, MaximumRetryAttempts: 2 },
        }),
      ],
    });
    const rule = logicalId(t, 'AWS::Events::Rule', 'EdgeBanReconcileSchedule');
    t.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: reconcilerQueue }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': arn(rule) } },
          }),
        ]),
      },
    });
  });
});

describe('state table', () => {
  it('is on demand with point-in-time recovery and the shared key schema', () => {
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      KeySchema: [
        { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
      ],
    });
  });

  it('is retained with the stack', () => {
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
  });
});

describe('permissions', () => {
  const of = (roleId: string) => {
    const out: Record<string, unknown>[] = [];
    for (const p of Object.values(t.findResources('AWS::IAM::Policy'))) {
      const roles = p.Properties.Roles as { Ref: string }[];
      if (roles.some((r) => r.Ref === roleId)) out.push(...p.Properties.PolicyDocument.Statement);
    }
    return out;
  };
  const roleOf = (fnId: string) =>
    (t.findResources('AWS::Lambda::Function')[fnId]!.Properties.Role as { 'Fn::GetAtt': string[] })[
      'Fn::GetAtt'
    ][0]!;

  it('let the reconciler get and update exactly the IP sets', () => {
    const sets = Object.keys(t.findResources('AWS::WAFv2::IPSet'));
    const waf = of(roleOf(reconciler)).filter((s) =>
      actions(s).some((a) => a.startsWith('wafv2:')),
    );
    expect(waf).toEqual([
      {
        Effect: 'Allow',
        Action: ['wafv2:GetIPSet', 'wafv2:UpdateIPSet'],
        Resource: sets.map(arn),
      },
    ]);
  });

  it('let ingest read log objects under the prefix of this bucket only', () => {
    const s3 = of(roleOf(ingest)).filter((s) => actions(s).some((a) => a.startsWith('s3:')));
    expect(s3).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: { 'Fn::Join': ['', [arn(bucket), '/*']] },
      },
      // Listing, without a prefix condition: a missing key is then NoSuchKey, not AccessDenied.
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: arn(bucket) },
    ]);
  });

  it('let the functions use DynamoDB on their table only', () => {
    for (const fn of [ingest, reconciler]) {
      const ddb = of(roleOf(fn)).filter((s) => actions(s).some((a) => a.startsWith('dynamodb:')));
      expect(ddb).toHaveLength(1);
      expect(resources(ddb[0]!)).toEqual([arn(table)]);
      expect(actions(ddb[0]!)).not.toContain('dynamodb:*');
    }
  });

  it('let ingest send to the reconciler queue and nothing else', () => {
    const send = of(roleOf(ingest)).filter((s) => actions(s).includes('sqs:SendMessage'));
    expect(send.map(resources)).toEqual([[arn(reconcilerQueue)]]);
    const reconcilerSend = of(roleOf(reconciler)).filter((s) =>
      actions(s).includes('sqs:SendMessage'),
    );
    expect(reconcilerSend).toEqual([]);
  });

  it('use "*" only for X-Ray, which has no resource-level permissions', () => {
    for (const s of statements(t)) {
      if (resources(s).includes('*')) {
        expect(actions(s).sort()).toEqual(['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
      }
      for (const a of actions(s)) expect(a).not.toMatch(/:\*$|^\*$/);
    }
  });

  it('attach no AWS managed policy to any role', () => {
    for (const role of Object.values(t.findResources('AWS::IAM::Role'))) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });
});

describe('WAF', () => {
  it('makes one CLOUDFRONT IP set per address version, empty', () => {
    t.resourceCountIs('AWS::WAFv2::IPSet', 2);
    for (const v of ['IPV4', 'IPV6']) {
      t.hasResourceProperties('AWS::WAFv2::IPSet', {
        Scope: 'CLOUDFRONT',
        IPAddressVersion: v,
        Addresses: [],
      });
    }
  });

  it('makes a web ACL that allows by default and blocks the IP sets with 403', () => {
    const sets = Object.keys(t.findResources('AWS::WAFv2::IPSet'));
    t.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'CLOUDFRONT',
      DefaultAction: { Allow: {} },
      Rules: [
        Match.objectLike({
          Name: 'edgeban-blocklist',
          Priority: 0,
          Action: { Block: {} },
          Statement: {
            OrStatement: {
              Statements: sets.map((id) => ({ IPSetReferenceStatement: { Arn: arn(id) } })),
            },
          },
          VisibilityConfig: Match.objectLike({ CloudWatchMetricsEnabled: true }),
        }),
      ],
    });
  });
});

describe('alarms and dashboard', () => {
  it('alarm on each dead-letter queue that is not empty', () => {
    for (const q of [dlq, reconcilerDlq, scheduleDlq]) {
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Namespace: 'AWS/SQS',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [q, 'QueueName'] } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
  });

  it('alarm on function errors (the reconciler counts missing runs too: monitoring.test.ts)', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: ingest } }],
    });
  });

  it('alarm when a version of IP sets is over 80% full', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Threshold: 80,
      ComparisonOperator: 'GreaterThanThreshold',
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: '100 * (FILL(m0, 0)) / 10000' }),
        Match.objectLike({
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({
              Namespace: METRICS.namespace,
              MetricName: METRICS.ipSetSize,
              Dimensions: Match.arrayWith([
                { Name: METRIC_DIMENSIONS.service, Value: METRIC_SERVICES.reconciler },
              ]),
            }),
          }),
        }),
      ]),
    });
  });

  it('alarm on lag over alarms.lag and on the circuit breaker', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS.namespace,
      MetricName: METRICS.lagSeconds,
      Dimensions: [{ Name: METRIC_DIMENSIONS.service, Value: METRIC_SERVICES.ingest }],
      Threshold: 90 * 60,
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS.namespace,
      MetricName: METRICS.circuitBreakerTrips,
      Dimensions: [{ Name: METRIC_DIMENSIONS.service, Value: METRIC_SERVICES.reconciler }],
      Threshold: 1,
    });
  });

  it('alarm when no log object arrived for alarms.lag, silence counting as breaching', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'NumberOfMessagesSent',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }],
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      Period: 300,
      EvaluationPeriods: 18,
      DatapointsToAlarm: 18,
      TreatMissingData: 'breaching',
    });
  });

  it('notify nobody when neither alarms.email nor alarms.topicArn is set', () => {
    t.resourceCountIs('AWS::SNS::Topic', 0);
    for (const a of Object.values(t.findResources('AWS::CloudWatch::Alarm'))) {
      expect(a.Properties.AlarmActions).toBeUndefined();
    }
  });

  it('draw every figure the operator watches', () => {
    const dashboards = Object.values(t.findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]!.Properties.DashboardBody);
    for (const title of [
      'Lines and rejected lines',
      'Stale requests',
      'Decisions',
      'Active blocks',
      'IP-set fill against capacity',
      'Lag',
      'Dead-letter queue depth',
      'Reconcile retries',
    ]) {
      expect(body).toContain(title);
    }
  });
});

describe('template', () => {
  it('matches the snapshot, asset hashes masked', () => {
    expect(masked(t)).toMatchSnapshot();
  });
});

describe('outputs', () => {
  it('give the table, IP sets with console links, web ACL and dashboard', () => {
    const outputs = t.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs).sort()).toEqual(
      [
        OUTPUTS.tableName,
        OUTPUTS.ipSetArns,
        `${OUTPUTS.ipSetConsoleUrl}Ipv41`,
        `${OUTPUTS.ipSetConsoleUrl}Ipv61`,
        OUTPUTS.webAclArn,
        OUTPUTS.dashboardUrl,
        OUTPUTS.queueUrl,
        OUTPUTS.reconcilerQueueUrl,
        OUTPUTS.logBucketName,
        OUTPUTS.config,
        OUTPUTS.widgetViewFunctionArn,
        OUTPUTS.widgetActFunctionArn,
      ].sort(),
    );
    expect(outputs[OUTPUTS.tableName]!.Value).toEqual({ Ref: table });
    expect(parseConfig(readConfigOutput(outputs[OUTPUTS.config]!.Value as string))).toEqual(
      parseConfig(SHIPPED),
    );
    expect(JSON.stringify(outputs[`${OUTPUTS.ipSetConsoleUrl}Ipv41`]!.Value)).toMatch(
      /https:\/\/us-east-1\.console\.aws\.amazon\.com\/wafv2\/homev2\/ip-set\/.+-ipv4-1\/.*\?region=global/,
    );
  });
});

/**
 * What EventBridge does with an input transformer: each `<name>` becomes
 * the value at its path, as JSON outside a string and as string content
 * inside one.
 */
function applyInputTransformer(
  transformer: { InputPathsMap: Record<string, string>; InputTemplate: string },
  event: unknown,
): string {
  const valueAt = (path: string): unknown =>
    path
      .replace(/^\$\./, '')
      .split('.')
      .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], event);
  let out = '';
  let inString = false;
  const tpl = transformer.InputTemplate;
  for (let i = 0; i < tpl.length; i++) {
    const c = tpl[i]!;
    if (c === '"' && tpl[i - 1] !== '\\') inString = !inString;
    const m = c === '<' ? /^<([A-Za-z0-9_.-]+)>/.exec(tpl.slice(i)) : null;
    const path = m === null ? undefined : transformer.InputPathsMap[m[1]!];
    if (m === null || path === undefined) {
      out += c;
      continue;
    }
    const value = valueAt(path);
    out += inString ? JSON.stringify(String(value)).slice(1, -1) : JSON.stringify(value);
    i += m[0].length - 1;
  }
  return out;
}
