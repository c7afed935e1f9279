import {
  Arn,
  ArnFormat,
  Aws,
  Duration,
  RemovalPolicy,
  Stack,
  Token,
  Validations,
} from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import { EventField, Match, Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import {
  AccountPrincipal,
  AnyPrincipal,
  Effect,
  type IPrincipal,
  PolicyStatement,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  type IBucket,
  ObjectOwnership,
} from 'aws-cdk-lib/aws-s3';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { parseConfig } from '../lambda/core/config';
import type { EdgebanConfig } from '../lambda/core/types';
import { EVENTBRIDGE_SOURCE } from '../lambda/ingest/keys';
import { ENV, TABLE } from '../lambda/shared/contract';
import { RECONCILE_TRIGGER } from '../lambda/shared/reconcile-trigger';
import { AttachProvider } from './attach-provider';
import { VENDED_LOG_DELIVERY } from './cloudfront-v2-delivery';
import { ConsoleWidget } from './console-widget';
import { DeployRecord } from './deploy-record';
import { EdgeBanMonitoring } from './edge-ban-monitoring';
import { albRegion, EdgeBanWaf, type IpSetRef } from './edge-ban-waf';
import { EdgebanFunction } from './edgeban-function';
import { EdgeBanError } from './errors';
import { LogDelivery, vendedLogDeliveryStatements } from './log-delivery';
import { acknowledgeXray, wildcardResourceFinding } from './nag';
import { RealtimeSource } from './realtime-source';
import { TABLE_ACTIONS } from './table-actions';

/**
 * The `edgeban` config as written in `cdk.json` context: an object, or the
 * same as a JSON string (`-c edgeban='{...}'`).
 */
export type EdgebanConfigSource = string | Readonly<Record<string, unknown>>;

/** Properties of {@link EdgeBan}. */
export interface EdgeBanProps {
  /**
   * The `edgeban` config (DESIGN section 3), validated here with the shared
   * config module; an invalid one throws its `ConfigError`.
   */
  readonly config: EdgebanConfigSource;
  /**
   * The bucket the access logs land in. It must allow S3 to send events to
   * EventBridge, which is switched on for it (its other notification
   * configuration stays as it is).
   * @default - the bucket named by `logs.bucketName`, else a new bucket
   */
  readonly logBucket?: IBucket;
  /**
   * WAF resources made elsewhere: for CLOUDFRONT scope they must be in
   * us-east-1, so a pipeline in another region takes an `EdgeBanWaf` from
   * a us-east-1 stack.
   * @default - an `EdgeBanWaf` in this construct
   */
  readonly waf?: EdgeBanWaf;
  /**
   * The topic the alarms notify.
   * @default - `alarms.topicArn`, else a new topic when `alarms.email` is
   *   set, else the alarms notify nobody
   */
  readonly alarmTopic?: ITopic;
  /**
   * Retention of the functions' logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * How long a new log bucket keeps each object (ignored for a bucket of
   * your own).
   * @default Duration.days(90)
   */
  readonly logExpiration?: Duration;
}

/**
 * Memory and timeouts, sized from the bench (`npm run bench`, many-clients
 * case) for the largest object a source writes: the worst is 1M lines from
 * 1M distinct clients, about 400 MB at the bench's bytes per client. 1024 MB
 * leaves about 710 MB for objects: ingest runs as many of a batch's objects
 * at once as their sizes say fit, and a larger one alone
 * (`lambda/ingest/admission.ts`; the arithmetic is in docs/deploy.md,
 * "Sizing"). 1024 MB also buys about 0.6 vCPU, roughly 200k lines/s, so the
 * 5-minute timeout covers objects of tens of millions of lines. The
 * DynamoDB writes of an object come on top and are bounded by its distinct
 * (rule, key, hour) triples.
 */
export const SIZING = {
  ingestMemoryMb: 1024,
  ingestTimeout: Duration.minutes(5),
  reconcilerMemoryMb: 256,
  reconcilerTimeout: Duration.seconds(90),
} as const;

/** SQS redelivers a message only after this many ingest timeouts (AWS guidance: 6). */
export const VISIBILITY_TIMEOUTS = 6;

/**
 * The reconciler queue's visibility timeout, in reconciler timeouts. Its
 * one FIFO message group waits out a failed run's message for this long
 * (the next run must not be far off), and Lambda needs at least one
 * function timeout.
 */
export const RECONCILER_VISIBILITY_TIMEOUTS = 2;

/** Objects per ingest invocation: the handler's default of 4 objects at a time, one round. */
export const INGEST_BATCH_SIZE = 4;

/** Wake-ups per reconciler invocation: whatever waits in the group, as one run. */
export const RECONCILER_BATCH_SIZE = 10;

/** Deliveries before a message goes to its dead-letter queue. */
export const MAX_RECEIVE_COUNT = 5;

/** Lambda's limit on a function's environment (keys and values). */
export const LAMBDA_ENVIRONMENT_BYTES = 4096;

/** Where ELB writes in Regions without a regional ELB account, for the bucket policy. */
const ELB_LOG_DELIVERY = 'logdelivery.elasticloadbalancing.amazonaws.com';

/**
 * edgeban, fail2ban for AWS WAF: access logs that land in S3 (CloudFront,
 * ALB, Classic ELB) are counted per client by an ingest function, clients
 * over a rule's threshold are blocked for a while, and a reconciler keeps
 * WAF IP sets equal to the active blocks.
 *
 * The pipeline lives in this construct's stack, which must be in the log
 * bucket's region. WAF resources are made here too, unless `waf` passes
 * them from another stack (CLOUDFRONT scope outside us-east-1).
 *
 * @example
 * // in another CDK app, with its own bucket and web ACL
 * const edgeban = new EdgeBan(stack, 'EdgeBan', {
 *   config: { scope: 'REGIONAL', attach: { mode: 'rule-group' } },
 *   logBucket: myAlbLogBucket,
 * });
 * // then reference edgeban.waf.ruleGroupArn from your CfnWebACL
 */
export class EdgeBan extends Construct {
  /** The validated config, defaults resolved. */
  readonly config: EdgebanConfig;
  readonly logBucket: IBucket;
  /** True when the log bucket was made here. */
  readonly ownsLogBucket: boolean;
  /** The queue S3 object events arrive on. */
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  /**
   * Every reconciler run starts from a message here (ingest, the schedule,
   * the CLI): a FIFO queue with one message group, so runs happen one at
   * a time.
   */
  readonly reconcilerQueue: Queue;
  readonly reconcilerDeadLetterQueue: Queue;
  /** Schedule events EventBridge could not put on the reconciler queue (a standard queue). */
  readonly scheduleDeadLetterQueue: Queue;
  readonly table: Table;
  readonly ingest: EdgebanFunction;
  readonly reconciler: EdgebanFunction;
  readonly waf: EdgeBanWaf;
  readonly monitoring: EdgeBanMonitoring;
  /** The dashboard's console widget and its two functions. */
  readonly consoleWidget: ConsoleWidget;
  /** The topic the alarms notify, if any. */
  readonly alarmTopic: ITopic | undefined;
  /** The real-time source, when `realtime.distributionIds` names distributions. */
  readonly realtime: RealtimeSource | undefined;

  constructor(scope: Construct, id: string, props: EdgeBanProps) {
    super(scope, id);
    // Validate first: the config, then how it fits this stack.
    const raw = configObject(props.config);
    const config = parseConfig(raw);
    const stack = Stack.of(this);
    validate(config, props, stack);

    this.config = config;
    const retention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const expiration = props.logExpiration ?? Duration.days(90);
    const prefix = config.logs.prefix;

    // Logs.
    this.ownsLogBucket = props.logBucket === undefined && config.logs.bucketName === undefined;
    this.logBucket =
      props.logBucket ??
      (config.logs.bucketName === undefined
        ? newLogBucket(this, config, expiration)
        : Bucket.fromBucketName(this, 'LogBucket', config.logs.bucketName));
    if (!this.ownsLogBucket) this.enableEventBridge(this.logBucket);

    // Queues.
    this.deadLetterQueue = deadLetterQueue(this, 'DeadLetterQueue');
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(SIZING.ingestTimeout.toSeconds() * VISIBILITY_TIMEOUTS),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });
    // One writer at a time by design: every run starts from a message of
    // this FIFO queue's one group, which Lambda delivers one batch at a time.
    this.reconcilerDeadLetterQueue = deadLetterQueue(this, 'ReconcilerDeadLetterQueue', true);
    this.reconcilerQueue = new Queue(this, 'ReconcilerQueue', {
      fifo: true,
      // EventBridge can target a FIFO queue only with content-based
      // deduplication; ingest's coalescing ids override it
      // (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_SqsParameters.html).
      contentBasedDeduplication: true,
      // The coalescing delay (lambda/shared/reconcile-trigger.ts).
      deliveryDelay: Duration.seconds(RECONCILE_TRIGGER.coalesceSeconds),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(
        SIZING.reconcilerTimeout.toSeconds() * RECONCILER_VISIBILITY_TIMEOUTS,
      ),
      // A wake-up older than this is moot: the schedule has run many times since.
      retentionPeriod: Duration.hours(1),
      deadLetterQueue: {
        queue: this.reconcilerDeadLetterQueue,
        maxReceiveCount: MAX_RECEIVE_COUNT,
      },
    });
    // EventBridge dead-letter queues must be standard queues
    // (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
    this.scheduleDeadLetterQueue = deadLetterQueue(this, 'ScheduleDeadLetterQueue');
    Validations.of(this.scheduleDeadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        "this is the minute schedule target's dead-letter queue (EventBridge names it in the rule, not in a redrive policy); an alarm fires on its depth",
    });
    this.routeObjectEvents(prefix);

    // State.
    this.table = new Table(this, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Count items past the live horizon cost storage only: TTL removes them.
      timeToLiveAttribute: TABLE.expiresAt,
      // Blocks, offences and who lifted what outlive the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // WAF.
    this.waf = props.waf ?? new EdgeBanWaf(this, 'Waf', { config });
    // Deploy records: in the stack of the IP sets, after every update of them.
    new DeployRecord(this.waf, 'DeployRecord', {
      ipSets: this.waf.ipSetResources,
      table: this.table,
    });

    // Functions.
    const environment: Record<string, string> = {
      [ENV.tableName]: this.table.tableName,
      [ENV.config]: JSON.stringify(raw),
      [ENV.reconcilerQueueUrl]: this.reconcilerQueue.queueUrl,
      [ENV.ipSets]: ipSetsEnvironment(this.waf.ipSets, stack),
      [ENV.wafScope]: this.waf.scope,
      [ENV.wafRegion]: this.waf.region,
    };
    checkEnvironmentSize(environment, this.waf.ipSets);
    this.ingest = new EdgebanFunction(this, 'Ingest', {
      entry: 'ingest/handler.ts',
      description: 'edgeban: counts the requests of each new log object, decides blocks',
      memorySize: SIZING.ingestMemoryMb,
      timeout: SIZING.ingestTimeout,
      environment,
      logRetention: retention,
    });
    this.reconciler = new EdgebanFunction(this, 'Reconciler', {
      entry: 'reconciler/handler.ts',
      description: 'edgeban: keeps the WAF IP sets equal to the active blocks',
      memorySize: SIZING.reconcilerMemoryMb,
      timeout: SIZING.reconcilerTimeout,
      environment,
      logRetention: retention,
    });
    this.grantIngest(prefix);
    this.grantReconciler();
    this.ingest.function.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: INGEST_BATCH_SIZE,
        reportBatchItemFailures: true,
      }),
    );
    // Batching windows do not apply to FIFO sources; the queue's delay and
    // deduplication coalesce instead (lambda/shared/reconcile-trigger.ts).
    this.reconciler.function.addEventSource(
      new SqsEventSource(this.reconcilerQueue, { batchSize: RECONCILER_BATCH_SIZE }),
    );
    new Rule(this, 'ReconcileSchedule', {
      description: 'edgeban: runs the reconciler every minute (expiries, console edits)',
      schedule: Schedule.rate(Duration.minutes(1)),
    }).addTarget(
      new SqsQueue(this.reconcilerQueue, {
        messageGroupId: RECONCILE_TRIGGER.groupId,
        // One body per minute: content-based deduplication drops only
        // EventBridge's own retries of the same tick.
        message: RuleTargetInput.fromObject({ source: 'schedule', at: EventField.time }),
        deadLetterQueue: this.scheduleDeadLetterQueue,
        // A late run is superseded by the next one.
        maxEventAge: Duration.minutes(2),
        retryAttempts: 2,
      }),
    );

    // Logging on, where asked (`Default`: the resources keep their logical ids).
    new LogDelivery(this, 'Default', { config, bucket: this.logBucket });

    // --- console widget hook (lib/console-widget.ts): review and lift blocks on the dashboard ---
    this.consoleWidget = new ConsoleWidget(this, 'ConsoleWidget', {
      table: this.table,
      config: environment[ENV.config] ?? '',
      reconcilerQueue: this.reconcilerQueue,
      logRetention: retention,
    });
    // --- end console widget hook ---

    // Alarms and dashboard.
    this.alarmTopic = alarmTopic(this, config, props.alarmTopic);
    this.monitoring = new EdgeBanMonitoring(this, 'Monitoring', {
      ingest: this.ingest.function,
      reconciler: this.reconciler.function,
      queue: this.queue,
      deadLetterQueues: {
        Ingest: this.deadLetterQueue,
        Reconciler: this.reconcilerDeadLetterQueue,
        Schedule: this.scheduleDeadLetterQueue,
      },
      ipSets: this.waf.ipSets,
      lagSeconds: config.alarms.lagSeconds,
      consoleWidgets: [this.consoleWidget.widget],
      ...(this.alarmTopic === undefined ? {} : { topic: this.alarmTopic }),
    });

    // CloudFront real-time logs, where asked (DESIGN section 8).
    if (config.realtime.distributionIds.length > 0) {
      this.realtime = new RealtimeSource(this, 'Realtime', {
        config,
        table: this.table,
        reconcilerQueue: this.reconcilerQueue,
        environment,
        logRetention: retention,
        ...(this.alarmTopic === undefined ? {} : { alarmTopic: this.alarmTopic }),
      });
    }

    this.acknowledge();
  }

  /**
   * S3 → EventBridge → SQS for both kinds of bucket: nothing else in the
   * bucket's notification configuration changes, and an existing bucket's
   * other destinations never overlap ours. The event is reshaped into the
   * S3 event notification record the ingest handler reads; `eventSource`
   * tells it the key is EventBridge's, whose encoding AWS leaves
   * undocumented (lambda/ingest/keys.ts reads it every plausible way).
   */
  private routeObjectEvents(prefix: string): void {
    const field = (path: string) => EventField.fromPath(path);
    const rule = new Rule(this, 'LogObjects', {
      description: 'edgeban: new log objects to the ingest queue',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [this.logBucket.bucketName] },
          ...(prefix === '' ? {} : { object: { key: Match.prefix(prefix) } }),
        },
      },
    });
    rule.addTarget(
      new SqsQueue(this.queue, {
        message: RuleTargetInput.fromObject({
          Records: [
            {
              eventVersion: '2.1',
              eventSource: EVENTBRIDGE_SOURCE,
              awsRegion: field('$.region'),
              eventTime: field('$.time'),
              eventName: `ObjectCreated:${field('$.detail.reason')}`,
              s3: {
                s3SchemaVersion: '1.0',
                bucket: { name: field('$.detail.bucket.name') },
                object: {
                  key: field('$.detail.object.key'),
                  size: field('$.detail.object.size'),
                  eTag: field('$.detail.object.etag'),
                  sequencer: field('$.detail.object.sequencer'),
                },
              },
            },
          ],
        }),
        deadLetterQueue: this.deadLetterQueue,
      }),
    );
  }

  /** Turns on S3 → EventBridge for a bucket made elsewhere, keeping its notifications. */
  private enableEventBridge(bucket: IBucket): void {
    const provider = AttachProvider.of(this);
    provider.grant(
      new PolicyStatement({
        actions: ['s3:GetBucketNotification', 's3:PutBucketNotification'],
        resources: [bucket.bucketArn],
      }),
    );
    provider.resource(this, 'LogBucketEventBridge', 'BucketEventBridge', {
      BucketName: bucket.bucketName,
      ExpectedBucketOwner: Aws.ACCOUNT_ID,
    });
  }

  private grantIngest(prefix: string): void {
    const role = this.ingest.role;
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [this.logBucket.arnForObjects(`${prefix}*`)],
      }),
    );
    // Without s3:ListBucket, GetObject of a key that is gone answers 403
    // AccessDenied instead of 404 NoSuchKey, and the object-gone branch
    // never runs (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
    // Permissions). No s3:prefix condition: GetObject's check of ListBucket
    // carries no prefix, so a conditioned grant would still give 403.
    role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.logBucket.bucketArn] }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: [...TABLE_ACTIONS.counting],
        resources: [this.table.tableArn],
      }),
    );
    this.reconcilerQueue.grantSendMessages(role);
  }

  private grantReconciler(): void {
    const role = this.reconciler.role;
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['wafv2:GetIPSet', 'wafv2:UpdateIPSet'],
        resources: this.waf.ipSets.map((s) => s.arn),
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: [...TABLE_ACTIONS.reconciler],
        resources: [this.table.tableArn],
      }),
    );
  }

  private acknowledge(): void {
    for (const fn of [this.ingest, this.reconciler]) acknowledgeFunction(fn);
    acknowledgeXray(this.ingest.role);
    acknowledgeXray(this.reconciler.role);
    Validations.of(this.ingest.role).acknowledge({
      id: wildcardResourceFinding(
        this,
        this.logBucket.arnForObjects(`${this.config.logs.prefix}*`),
      ),
      reason:
        'log objects are named by the AWS service that writes them; the grant is GetObject under the configured prefix of this bucket only',
    });
    for (const q of [
      this.deadLetterQueue,
      this.reconcilerDeadLetterQueue,
      this.scheduleDeadLetterQueue,
    ]) {
      Validations.of(q).acknowledge({
        id: 'Serverless-SQSRedrivePolicy',
        reason:
          'this is a dead-letter queue: nothing redrives out of it on its own; an alarm fires on its depth',
      });
    }
    Validations.of(this.ingest.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        "invoked only by the SQS event source mapping; failed messages go to the queue's dead-letter queue by its redrive policy",
    });
    Validations.of(this.reconciler.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        "invoked only by the SQS event source mapping of its FIFO queue; failed messages go to the queue's dead-letter queue by its redrive policy",
    });
    for (const fn of [this.ingest.function, this.reconciler.function]) {
      for (const mapping of fn.node.findAll().filter((c) => c.node.id === 'Resource')) {
        if (mapping.node.scope?.node.id.startsWith('SqsEventSource')) {
          Validations.of(mapping).acknowledge({
            id: 'Serverless-LambdaEventSourceMappingDestination',
            reason:
              'Lambda has no on-failure destination for SQS event sources; the redrive policy sends failures to the dead-letter queue',
          });
        }
      }
    }
  }
}

/** The config as an object without `//` comment keys: what the handlers parse again. */
export function configObject(source: EdgebanConfigSource | undefined): Record<string, unknown> {
  let value: unknown = source ?? {};
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      // Leave the string to parseConfig, which says what is wrong with it.
      parseConfig(value);
    }
  }
  const stripped = stripComments(value);
  if (typeof stripped !== 'object' || stripped === null || Array.isArray(stripped)) {
    parseConfig(stripped);
    throw new EdgeBanError(`edgeban must be an object, got ${JSON.stringify(stripped)}`);
  }
  return stripped as Record<string, unknown>;
}

function stripComments(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripComments);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!k.startsWith('//')) out[k] = stripComments(v);
  }
  return out;
}

function validate(config: EdgebanConfig, props: EdgeBanProps, stack: Stack): void {
  const region = stack.region;
  const given = props.logBucket?.bucketName;
  const named = config.logs.bucketName;
  if (given !== undefined && named !== undefined && !Token.isUnresolved(given) && given !== named) {
    throw new EdgeBanError(
      `logs.bucketName must match the logBucket passed to the construct (${given}), got ${named}`,
    );
  }
  if (props.waf !== undefined && props.waf.scope !== config.scope) {
    throw new EdgeBanError(
      `scope must match the waf passed in (${props.waf.scope}), got ${config.scope}`,
    );
  }
  if (!Token.isUnresolved(region)) {
    config.logs.enableOn.forEach((target, i) => {
      if (target.startsWith('arn:') && albRegion(target) !== region) {
        throw new EdgeBanError(
          `logs.enableOn[${i}] must be an ALB in the log bucket's region ${region} (ALB logs only go to a bucket in their region), got ${target}`,
        );
      }
    });
    const topicArn = config.alarms.topicArn;
    if (topicArn !== undefined) {
      const topicRegion = Arn.split(topicArn, ArnFormat.NO_RESOURCE_NAME).region;
      if (topicRegion !== region) {
        throw new EdgeBanError(
          `alarms.topicArn must be in the pipeline's region ${region} (alarms notify topics of their region), got ${topicArn}`,
        );
      }
    }
  }
}

function newLogBucket(scope: Construct, config: EdgebanConfig, expiration: Duration): Bucket {
  const prefix = config.logs.prefix;
  const bucket = new Bucket(scope, 'LogBucket', {
    // ALB and Classic ELB log delivery supports SSE-S3 only.
    encryption: BucketEncryption.S3_MANAGED,
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    // CloudFront legacy logging writes through the bucket ACL.
    objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
    lifecycleRules: [
      {
        id: 'expire-logs',
        expiration,
        abortIncompleteMultipartUploadAfter: Duration.days(1),
      },
    ],
    // Logs are evidence: they stay when the stack goes.
    removalPolicy: RemovalPolicy.RETAIN,
  });
  // EventBridge in the bucket's own notification configuration: no custom
  // resource, and nothing to validate against a queue policy.
  (bucket.node.defaultChild as CfnBucket).notificationConfiguration = {
    eventBridgeConfiguration: { eventBridgeEnabled: true },
  };
  const stack = Stack.of(scope);
  const albPrefix = prefix.replace(/\/+$/, '');
  const elbKeys = bucket.arnForObjects(
    `${albPrefix === '' ? '' : `${albPrefix}/`}AWSLogs/${Aws.ACCOUNT_ID}/*`,
  );
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: 'ElbLogDelivery',
      principals: [elbLogDeliveryPrincipal(stack)],
      actions: ['s3:PutObject'],
      resources: [elbKeys],
    }),
  );
  // CloudFront standard logging (v2) delivers as CloudWatch vended logs.
  for (const statement of vendedLogDeliveryStatements(bucket, prefix)) {
    bucket.addToResourcePolicy(statement);
  }
  bucket.addToResourcePolicy(onlyLogDeliveryWrites(bucket, config, stack));
  Validations.of(bucket).acknowledge({
    id: 'AwsSolutions-S1',
    reason:
      'this bucket receives access logs; its own server access logs would need yet another bucket that needs logging in turn. Use CloudTrail data events to audit reads',
  });
  return bucket;
}

/**
 * Only log delivery may write logs: anyone who could put an object under
 * the prefix could plant lines that block any address. An explicit Deny
 * wins over every Allow, in any identity policy of the account
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
 * Exempt, each by a key of the request context
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html):
 * - the delivery service principals (`aws:PrincipalServiceName`, present
 *   only for a service principal's own calls): CloudWatch vended logs
 *   (CloudFront standard logging v2) and ELB in Regions opened since 2022;
 * - the Region's ELB log delivery account (`aws:PrincipalAccount`);
 * - `logs.extraWriters` (`aws:PrincipalArn`: a role's ARN, whatever the session).
 * CloudFront legacy logging writes as the awslogsdelivery account through
 * the bucket ACL, an account AWS names only by its canonical user id, which
 * no condition key carries. Where it may deliver (CLOUDFRONT scope, legacy
 * delivery), the Deny covers every principal of this account instead:
 * other accounts can only write through an ACL grant, and changing the ACL
 * takes `s3:PutBucketAcl` in this account.
 */
function onlyLogDeliveryWrites(
  bucket: Bucket,
  config: EdgebanConfig,
  stack: Stack,
): PolicyStatement {
  const services = [VENDED_LOG_DELIVERY, ELB_LOG_DELIVERY];
  const region = stack.region;
  const elbAccount = Token.isUnresolved(region) ? undefined : RegionInfo.get(region).elbv2Account;
  const legacyCloudFront =
    config.scope === 'CLOUDFRONT' && config.logs.cloudfrontDelivery === 'legacy';
  const writers = config.logs.extraWriters;
  return new PolicyStatement({
    sid: 'OnlyLogDeliveryWrites',
    effect: Effect.DENY,
    principals: [new AnyPrincipal()],
    actions: ['s3:PutObject'],
    resources: [bucket.arnForObjects(`${config.logs.prefix}*`)],
    conditions: {
      StringNotEqualsIfExists: { 'aws:PrincipalServiceName': services },
      ...(legacyCloudFront
        ? { StringEquals: { 'aws:PrincipalAccount': Aws.ACCOUNT_ID } }
        : elbAccount === undefined
          ? {}
          : { StringNotEquals: { 'aws:PrincipalAccount': [elbAccount] } }),
      ...(writers.length === 0 ? {} : { ArnNotLike: { 'aws:PrincipalArn': [...writers] } }),
    },
  });
}

/**
 * ELB log delivery: the regional ELB account in regions that have one,
 * the log delivery service principal in regions opened since August 2022.
 */
function elbLogDeliveryPrincipal(stack: Stack): IPrincipal {
  const region = stack.region;
  const account = Token.isUnresolved(region) ? undefined : RegionInfo.get(region).elbv2Account;
  return account === undefined
    ? new ServicePrincipal(ELB_LOG_DELIVERY)
    : new AccountPrincipal(account);
}

function deadLetterQueue(scope: Construct, id: string, fifo = false): Queue {
  return new Queue(scope, id, {
    // The dead-letter queue of a FIFO queue must be FIFO too.
    ...(fifo ? { fifo: true } : {}),
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
}

function alarmTopic(
  scope: Construct,
  config: EdgebanConfig,
  given: ITopic | undefined,
): ITopic | undefined {
  const { email, topicArn } = config.alarms;
  let topic = given;
  if (topic === undefined && topicArn !== undefined) {
    topic = Topic.fromTopicArn(scope, 'AlarmTopic', topicArn);
  }
  if (topic === undefined && email !== undefined) {
    const made = new Topic(scope, 'AlarmTopic', {
      displayName: 'edgeban alarms',
      enforceSSL: true,
    });
    Validations.of(made).acknowledge({
      id: 'Serverless-SNSRedrivePolicy',
      reason:
        "alarm e-mails that fail after SNS's retries show in the topic's NumberOfNotificationsFailed; a dead-letter queue for them would alarm through this same topic",
    });
    topic = made;
  }
  if (topic !== undefined && email !== undefined) {
    topic.addSubscription(new EmailSubscription(email));
  }
  return topic;
}

/** The IP sets as the reconciler reads them, without ARNs when they would not fit. */
function ipSetsEnvironment(sets: readonly IpSetRef[], stack: Stack): string {
  const withArns = sets.map((s) => ({
    name: s.name,
    id: s.id,
    arn: s.arn,
    version: s.version,
    scope: s.scope,
  }));
  if (estimateIpSets(sets, true) <= IP_SETS_BUDGET) return stack.toJsonString(withArns);
  return stack.toJsonString(
    sets.map((s) => ({ name: s.name, id: s.id, version: s.version, scope: s.scope })),
  );
}

/** Room for the IP sets in the environment, leaving the rest for the config. */
const IP_SETS_BUDGET = 2048;
/** An IP set id is a UUID. */
const ID_LENGTH = 36;
/** `arn:aws:wafv2:<region>:<account>:regional/ipset/` and `/`. */
const ARN_OVERHEAD = 70;

function estimateIpSets(sets: readonly IpSetRef[], arns: boolean): number {
  let n = 2;
  for (const s of sets) {
    n += 60 + s.name.length + ID_LENGTH + s.scope.length;
    if (arns) n += 10 + ARN_OVERHEAD + s.name.length + ID_LENGTH;
  }
  return n;
}

function checkEnvironmentSize(env: Record<string, string>, sets: readonly IpSetRef[]): void {
  let bytes = 0;
  for (const [k, v] of Object.entries(env)) {
    bytes += k.length;
    if (k === ENV.ipSets) {
      bytes += Math.min(estimateIpSets(sets, true), estimateIpSets(sets, false));
    } else if (Token.isUnresolved(v)) {
      // Table names, queue URLs and regions resolve to well under this.
      bytes += 160;
    } else {
      bytes += Buffer.byteLength(v);
    }
  }
  bytes += 'NODE_OPTIONS--enable-source-maps'.length;
  if (bytes > LAMBDA_ENVIRONMENT_BYTES) {
    throw new EdgeBanError(
      `edgeban config is too large for the Lambda environment (about ${bytes} of ${LAMBDA_ENVIRONMENT_BYTES} bytes with the IP sets): shorten allowlist or rules, got ${env[ENV.config]?.length ?? 0} bytes of config`,
    );
  }
}

function acknowledgeFunction(fn: EdgebanFunction): void {
  const reason =
    'edgeban targets Node 22 (nodejs22.x, supported into 2027): the version its engine, bench and tests run on';
  Validations.of(fn.function).acknowledge(
    { id: 'AwsSolutions-L1', reason },
    { id: 'Serverless-LambdaLatestVersion', reason },
  );
}
