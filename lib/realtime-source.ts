import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { CfnRealtimeLogConfig } from 'aws-cdk-lib/aws-cloudfront';
import {
  Alarm,
  ComparisonOperator,
  type IAlarmAction,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Stream, StreamEncryption, StreamMode } from 'aws-cdk-lib/aws-kinesis';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { KinesisEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { realtimeFields } from '../lambda/core/formats/realtime';
import type { EdgebanConfig } from '../lambda/core/types';
import { AttachProvider } from './attach-provider';
import { EdgebanFunction } from './edgeban-function';
import { grantDistributionRewrite } from './log-delivery';
import { acknowledgeXray } from './nag';
import { TABLE_ACTIONS } from './table-actions';

/** Properties of {@link RealtimeSource}. */
export interface RealtimeSourceProps {
  /** The validated config: `realtime` says which distributions and how many shards. */
  readonly config: EdgebanConfig;
  /** The state table the consumer counts into. */
  readonly table: ITable;
  /** The queue that wakes the reconciler when blocks change. */
  readonly reconcilerQueue: IQueue;
  /** The handlers' environment (table, config, reconciler queue). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * A customer managed key for the stream.
   * @default - the AWS managed key `aws/kinesis` (no key to pay for or manage)
   */
  readonly encryptionKey?: IKey;
  /** @default - the alarm notifies nobody */
  readonly alarmTopic?: ITopic;
  /** @default - EdgebanFunction's default */
  readonly logRetention?: RetentionDays;
}

/**
 * Consumer sizing: a batch of up to 500 records (about 250 KB at CloudFront's
 * typical 500 bytes a record) is parsed in milliseconds; the time goes to
 * DynamoDB (a few requests per chunk of 2,000 records) and is well under the
 * timeout.
 */
export const REALTIME_SIZING = {
  memoryMb: 512,
  timeout: Duration.seconds(60),
  batchSize: 500,
  /** Lambda waits at most this long to fill a batch: the latency floor it adds. */
  batchingWindow: Duration.seconds(1),
  /** Retries of a failing batch (halved each time) before the on-failure destination. */
  retryAttempts: 10_000,
  /** A record older than the stream's retention is gone anyway. */
  maxRecordAge: Duration.hours(24),
  /** Iterator age past which the pipeline misses its one-minute target. */
  iteratorAgeAlarm: Duration.seconds(60),
} as const;

/** The shortest retention Kinesis Data Streams offers (24 hours): the stream holds client addresses. */
export const STREAM_RETENTION = Duration.hours(24);

/**
 * CloudFront real-time logs as a second source of counts (DESIGN section
 * 8): a Kinesis data stream, the real-time log config that writes to it,
 * its attachment to the configured distributions' cache behaviors, and a
 * consumer function on an event source mapping.
 *
 * The stream holds client addresses (personal data in many jurisdictions):
 * it is encrypted at rest and keeps records for the shortest retention
 * Kinesis offers, 24 hours.
 */
export class RealtimeSource extends Construct {
  readonly stream: Stream;
  readonly logConfig: CfnRealtimeLogConfig;
  /** The role CloudFront assumes to write to the stream. */
  readonly deliveryRole: Role;
  readonly consumer: EdgebanFunction;
  /** Where the event source mapping puts what it gives up on. */
  readonly deadLetterQueue: Queue;
  readonly iteratorAgeAlarm: Alarm;

  constructor(scope: Construct, id: string, props: RealtimeSourceProps) {
    super(scope, id);
    const { config } = props;
    const shards = config.realtime.shards;
    const stack = Stack.of(this);

    this.stream = new Stream(this, 'Stream', {
      // On-demand costs nothing per shard-hour beyond its stream-hour and
      // scales with traffic; a fixed shard count is cheaper at steady load.
      streamMode: shards === undefined ? StreamMode.ON_DEMAND : StreamMode.PROVISIONED,
      ...(shards === undefined ? {} : { shardCount: shards }),
      retentionPeriod: STREAM_RETENTION,
      ...(props.encryptionKey === undefined
        ? { encryption: StreamEncryption.MANAGED }
        : { encryption: StreamEncryption.KMS, encryptionKey: props.encryptionKey }),
    });

    // The trust and permissions policies of "Real-time log configuration IAM
    // role" (CloudFront Developer Guide, real-time logs).
    this.deliveryRole = new Role(this, 'DeliveryRole', {
      assumedBy: new ServicePrincipal('cloudfront.amazonaws.com'),
      description: 'edgeban: CloudFront writes real-time log records to the edgeban stream',
    });
    this.deliveryRole.addToPrincipalPolicy(
      new PolicyStatement({
        actions: [
          'kinesis:DescribeStreamSummary',
          'kinesis:DescribeStream',
          'kinesis:PutRecord',
          'kinesis:PutRecords',
        ],
        resources: [this.stream.streamArn],
      }),
    );
    if (props.encryptionKey !== undefined) {
      // Producers to a stream under a customer managed key need GenerateDataKey on it
      // (Kinesis Data Streams Developer Guide, "Example producer permissions").
      this.deliveryRole.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['kms:GenerateDataKey'],
          resources: [props.encryptionKey.keyArn],
        }),
      );
    }

    this.logConfig = new CfnRealtimeLogConfig(this, 'LogConfig', {
      name: `${stack.stackName}-edgeban`.slice(0, 128),
      fields: realtimeFields(config),
      samplingRate: config.realtime.samplingRate,
      endPoints: [
        {
          streamType: 'Kinesis',
          kinesisStreamConfig: {
            roleArn: this.deliveryRole.roleArn,
            streamArn: this.stream.streamArn,
          },
        },
      ],
    });
    // CloudFront may check the role's permissions when the config is created:
    // its policy first (the role itself is already a reference).
    const deliveryPolicy = this.deliveryRole.node.tryFindChild('DefaultPolicy');
    if (deliveryPolicy !== undefined) this.logConfig.node.addDependency(deliveryPolicy);

    this.attach(config);

    this.consumer = new EdgebanFunction(this, 'Consumer', {
      entry: 'realtime/handler.ts',
      description: 'edgeban: counts CloudFront real-time log records, decides blocks',
      memorySize: REALTIME_SIZING.memoryMb,
      timeout: REALTIME_SIZING.timeout,
      environment: props.environment,
      ...(props.logRetention === undefined ? {} : { logRetention: props.logRetention }),
    });
    this.consumer.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: [...TABLE_ACTIONS.counting],
        resources: [props.table.tableArn],
      }),
    );
    props.reconcilerQueue.grantSendMessages(this.consumer.role);

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.consumer.function.addEventSource(
      new KinesisEventSource(this.stream, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: REALTIME_SIZING.batchSize,
        maxBatchingWindow: REALTIME_SIZING.batchingWindow,
        // One batch per shard at a time, in order: the shard ledger's premise.
        parallelizationFactor: 1,
        reportBatchItemFailures: true,
        bisectBatchOnError: true,
        retryAttempts: REALTIME_SIZING.retryAttempts,
        maxRecordAge: REALTIME_SIZING.maxRecordAge,
        onFailure: new SqsDlq(this.deadLetterQueue),
      }),
    );

    this.iteratorAgeAlarm = new Alarm(this, 'IteratorAge', {
      alarmDescription:
        'edgeban: real-time records wait more than a minute to be counted (consumer behind or failing)',
      metric: this.consumer.function.metric('IteratorAge', {
        statistic: 'Maximum',
        period: Duration.minutes(1),
      }),
      threshold: REALTIME_SIZING.iteratorAgeAlarm.toMilliseconds(),
      evaluationPeriods: 3,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    const dlqAlarm = new Alarm(this, 'DeadLetters', {
      alarmDescription: 'edgeban: real-time records were given up on and not counted',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      threshold: 0,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic !== undefined) {
      const action: IAlarmAction = new SnsAction(props.alarmTopic);
      this.iteratorAgeAlarm.addAlarmAction(action);
      dlqAlarm.addAlarmAction(action);
    }
    this.acknowledge();
  }

  /** One custom resource per distribution, through the stack's attachment handler. */
  private attach(config: EdgebanConfig): void {
    const ids = config.realtime.distributionIds;
    if (ids.length === 0) return;
    const provider = AttachProvider.of(this);
    const stack = Stack.of(this);
    provider.grant(
      new PolicyStatement({
        actions: ['cloudfront:GetDistributionConfig', 'cloudfront:UpdateDistribution'],
        resources: ids.map((d) =>
          stack.formatArn({
            service: 'cloudfront',
            region: '',
            resource: 'distribution',
            resourceName: d,
          }),
        ),
      }),
    );
    grantDistributionRewrite(provider, config);
    for (const d of ids) {
      provider.resource(this, `Attach${d}`, 'DistributionRealtimeLogs', {
        DistributionId: d,
        RealtimeLogConfigArn: this.logConfig.attrArn,
        ReplaceExisting: config.realtime.replaceExistingConfig,
      });
    }
  }

  private acknowledge(): void {
    acknowledgeXray(this.consumer.role);
    const reason =
      'edgeban targets Node 22 (nodejs22.x, supported into 2027): the version its engine, bench and tests run on';
    Validations.of(this.consumer.function).acknowledge(
      { id: 'AwsSolutions-L1', reason },
      { id: 'Serverless-LambdaLatestVersion', reason },
      {
        id: 'Serverless-LambdaDLQ',
        reason:
          'invoked only by the Kinesis event source mapping, whose on-failure destination is a dead-letter queue',
      },
    );
    Validations.of(this.deadLetterQueue).acknowledge(
      {
        id: 'Serverless-SQSRedrivePolicy',
        reason:
          'this is the on-failure destination of the event source mapping: it holds batch descriptions to inspect; an alarm fires on its depth',
      },
      {
        id: 'AwsSolutions-SQS3',
        reason:
          'this queue is itself the dead-letter destination of the real-time event source mapping (an on-failure destination, not a redrive policy, so cdk-nag does not see it as one)',
      },
    );
  }
}
