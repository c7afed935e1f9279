/**
 * The real-time source's resources (`lib/realtime-source.ts`): the stream,
 * the real-time log config and CloudFront's role, the attachment, the
 * consumer's event source mapping, alarm and grants.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { actions, logicalId, resources, statements, synth } from './app';

const DIST = 'E2QWRUHEXAMPLE';
const OTHER = 'E1OTHEREXAMPLE';

describe('the real-time source', () => {
  const { pipeline } = synth({
    realtime: { distributionIds: [DIST, OTHER] },
    alarms: { email: 'ops@example.com' },
  });
  const stream = logicalId(pipeline, 'AWS::Kinesis::Stream', 'EdgeBanRealtimeStream');

  it('makes an on-demand, encrypted stream with the shortest retention', () => {
    pipeline.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'ON_DEMAND' },
      RetentionPeriodHours: 24,
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
    expect(pipeline.findResources('AWS::Kinesis::Stream')[stream]?.Properties.ShardCount).toBe(
      undefined,
    );
  });

  it('makes a real-time log config with the rules fields, sampling 100, to the stream', () => {
    pipeline.hasResourceProperties('AWS::CloudFront::RealtimeLogConfig', {
      Fields: ['timestamp', 'c-ip', 'sc-status', 'cs-method', 'cs-uri-stem', 'x-edge-request-id'],
      SamplingRate: 100,
      EndPoints: [
        {
          StreamType: 'Kinesis',
          KinesisStreamConfig: {
            StreamArn: { 'Fn::GetAtt': [stream, 'Arn'] },
            RoleArn: {
              'Fn::GetAtt': [Match.stringLikeRegexp('^EdgeBanRealtimeDeliveryRole'), 'Arn'],
            },
          },
        },
      ],
    });
  });

  it("gives CloudFront's role exactly the documented stream actions", () => {
    pipeline.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: 'sts:AssumeRole',
            Effect: 'Allow',
            Principal: { Service: 'cloudfront.amazonaws.com' },
          },
        ],
      },
    });
    const delivery = statements(pipeline).filter((s) => actions(s).includes('kinesis:PutRecords'));
    expect(delivery).toHaveLength(1);
    expect(actions(delivery[0]!).sort()).toEqual([
      'kinesis:DescribeStream',
      'kinesis:DescribeStreamSummary',
      'kinesis:PutRecord',
      'kinesis:PutRecords',
    ]);
    expect(resources(delivery[0]!)).toEqual([{ 'Fn::GetAtt': [stream, 'Arn'] }]);
  });

  it('reads the stream one batch per shard, in order, with partial failures, bisect and a DLQ', () => {
    pipeline.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [stream, 'Arn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 1,
      ParallelizationFactor: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRecordAgeInSeconds: 86400,
      DestinationConfig: {
        OnFailure: {
          Destination: {
            'Fn::GetAtt': [Match.stringLikeRegexp('^EdgeBanRealtimeDeadLetterQueue'), 'Arn'],
          },
        },
      },
    });
  });

  it('grants the consumer no wildcard Kinesis resource', () => {
    for (const s of statements(pipeline)) {
      if (!actions(s).some((a) => a.startsWith('kinesis:'))) continue;
      for (const r of resources(s)) expect(JSON.stringify(r)).not.toContain('*');
    }
  });

  it('alarms on an iterator age over a minute and on given-up records, to the topic', () => {
    pipeline.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Namespace: 'AWS/Lambda',
      Statistic: 'Maximum',
      Threshold: 60000,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('AlarmTopic') }],
    });
    pipeline.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: {
            'Fn::GetAtt': [Match.stringLikeRegexp('^EdgeBanRealtimeDeadLetterQueue'), 'QueueName'],
          },
        },
      ],
      Threshold: 0,
    });
  });

  it('attaches the config to each distribution through the attachment handler', () => {
    const attached = pipeline.findResources('Custom::EdgebanDistributionRealtimeLogs');
    expect(
      Object.values(attached).map((r) => (r.Properties as Record<string, unknown>).DistributionId),
    ).toEqual([DIST, OTHER]);
    pipeline.hasResourceProperties('Custom::EdgebanDistributionRealtimeLogs', {
      Kind: 'DistributionRealtimeLogs',
      DistributionId: DIST,
      RealtimeLogConfigArn: {
        'Fn::GetAtt': [Match.stringLikeRegexp('^EdgeBanRealtimeLogConfig'), 'Arn'],
      },
      ReplaceExisting: false,
    });
    const update = statements(pipeline).find((s) =>
      actions(s).includes('cloudfront:UpdateDistribution'),
    );
    expect(JSON.stringify(resources(update!))).toContain(`distribution/${DIST}`);
    expect(JSON.stringify(resources(update!))).toContain(`distribution/${OTHER}`);
  });
});

describe('real-time options', () => {
  it('provisions shards when asked', () => {
    const { pipeline } = synth({ realtime: { distributionIds: [DIST], shards: 3 } });
    pipeline.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
      ShardCount: 3,
    });
  });

  it('adds x-host-header when a rule filters on host, and passes replaceExistingConfig', () => {
    const { pipeline } = synth({
      rules: [{ name: 'api', threshold: 100, window: '1m', host: 'api.example.com' }],
      realtime: { distributionIds: [DIST], replaceExistingConfig: true },
    });
    pipeline.hasResourceProperties('AWS::CloudFront::RealtimeLogConfig', {
      Fields: [
        'timestamp',
        'c-ip',
        'sc-status',
        'cs-method',
        'cs-uri-stem',
        'x-edge-request-id',
        'x-host-header',
      ],
    });
    pipeline.hasResourceProperties('Custom::EdgebanDistributionRealtimeLogs', {
      ReplaceExisting: true,
    });
  });

  it('makes nothing of it without real-time distributions', () => {
    const { pipeline } = synth({});
    expect(pipeline.findResources('AWS::Kinesis::Stream')).toEqual({});
    expect(pipeline.findResources('AWS::CloudFront::RealtimeLogConfig')).toEqual({});
  });
});
