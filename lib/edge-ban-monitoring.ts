import { Duration, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type HorizontalAnnotation,
  type IMetric,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { IP_SET_CAPACITY } from '../lambda/core/config';
import { METRIC_DIMENSIONS, METRIC_SERVICES, METRICS } from '../lambda/shared/contract';
import type { IpSetRef } from './edge-ban-waf';
import { EdgeBanError } from './errors';

/** Properties of {@link EdgeBanMonitoring}. */
export interface EdgeBanMonitoringProps {
  readonly ingest: IFunction;
  readonly reconciler: IFunction;
  /** The queue S3 object events arrive on. */
  readonly queue: IQueue;
  /** Dead-letter queues, by a short label for the dashboard. */
  readonly deadLetterQueues: Readonly<Record<string, IQueue>>;
  readonly ipSets: readonly IpSetRef[];
  /** `alarms.lag`: the longest tolerated pipeline lag and log silence, in seconds. */
  readonly lagSeconds: number;
  /** @default - alarms notify nobody */
  readonly topic?: ITopic;
}

/** Share of an IP set's total capacity at which the fill alarm fires. */
export const IP_SET_FILL_ALARM_PERCENT = 80;

/** CloudWatch evaluates an alarm over at most seven days. */
const MAX_ALARM_RANGE_SECONDS = 7 * 86400;

/**
 * Period and number of periods that cover `seconds`: five-minute periods up
 * to a day (CloudWatch's limit for periods under an hour), hourly periods
 * up to seven days.
 */
export function silencePeriods(seconds: number): { periodSeconds: number; periods: number } {
  if (seconds > MAX_ALARM_RANGE_SECONDS) {
    throw new EdgeBanError(
      `alarms.lag must be at most 7d (CloudWatch evaluates alarms over at most seven days), got ${seconds}s`,
    );
  }
  if (seconds < 300) return { periodSeconds: 60, periods: Math.ceil(seconds / 60) };
  if (seconds <= 86400) return { periodSeconds: 300, periods: Math.ceil(seconds / 300) };
  return { periodSeconds: 3600, periods: Math.ceil(seconds / 3600) };
}

/**
 * The operator's view of edgeban: a dashboard (lines and rejected lines,
 * stale requests, decisions, active blocks, IP-set fill against capacity,
 * lag, dead-letter queue depth, reconcile retries) and the alarms (a
 * dead-letter queue not empty, function errors, an IP-set version over 80%
 * full, lag, circuit breaker, no log object for `alarms.lag`), which notify
 * the topic when there is one.
 */
export class EdgeBanMonitoring extends Construct {
  readonly dashboard: Dashboard;
  readonly alarms: readonly Alarm[];

  constructor(scope: Construct, id: string, props: EdgeBanMonitoringProps) {
    super(scope, id);
    const lag = props.lagSeconds;
    const silence = silencePeriods(lag);
    const alarms: Alarm[] = [];
    const alarm = (made: Alarm): void => {
      if (props.topic !== undefined) made.addAlarmAction(new SnsAction(props.topic));
      alarms.push(made);
    };

    const ingestMetric = (name: string, statistic = 'Sum') =>
      edgebanMetric(name, METRIC_SERVICES.ingest, statistic);
    const reconcilerMetric = (name: string, statistic = 'Sum') =>
      edgebanMetric(name, METRIC_SERVICES.reconciler, statistic);
    const setSize = (set: IpSetRef) =>
      new Metric({
        namespace: METRICS.namespace,
        metricName: METRICS.ipSetSize,
        dimensionsMap: {
          [METRIC_DIMENSIONS.service]: METRIC_SERVICES.reconciler,
          [METRIC_DIMENSIONS.ipSet]: set.name,
        },
        statistic: 'Maximum',
        period: Duration.minutes(5),
        label: set.name,
      });

    // Dead-letter queues: anything there is an object or a wake-up that failed for good.
    for (const [label, dlq] of Object.entries(props.deadLetterQueues)) {
      alarm(
        new Alarm(this, `${label}DeadLetters`, {
          alarmDescription: `edgeban: messages in the ${label} dead-letter queue (failed for good; inspect, fix, redrive)`,
          metric: dlq.metricApproximateNumberOfMessagesVisible({
            statistic: 'Maximum',
            period: Duration.minutes(5),
          }),
          threshold: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }

    alarm(
      new Alarm(this, 'IngestErrors', {
        alarmDescription:
          'edgeban: the ingest function failed (objects it reported failed are retried)',
        metric: props.ingest.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );
    // The reconciler runs every minute and retries by itself: alarm on a
    // failure that lasts, not on one lost race with WAF.
    alarm(
      new Alarm(this, 'ReconcilerErrors', {
        alarmDescription: 'edgeban: the reconciler failed in 3 of the last 5 minutes',
        metric: props.reconciler.metricErrors({ period: Duration.minutes(1), statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );

    // Fill per address version: sets of a version fill one after another,
    // so the version's total is what runs out.
    for (const version of ['IPV4', 'IPV6'] as const) {
      const sets = props.ipSets.filter((s) => s.version === version);
      if (sets.length === 0) continue;
      const usingMetrics: Record<string, IMetric> = {};
      sets.forEach((s, i) => {
        usingMetrics[`m${i}`] = setSize(s);
      });
      const sum = sets.map((_, i) => `FILL(m${i}, 0)`).join(' + ');
      const label = version === 'IPV4' ? 'Ipv4' : 'Ipv6';
      alarm(
        new Alarm(this, `${label}SetsFill`, {
          alarmDescription: `edgeban: the ${version} IP sets are over ${IP_SET_FILL_ALARM_PERCENT}% full (add sets with ipSets.${version.toLowerCase()})`,
          metric: new MathExpression({
            expression: `100 * (${sum}) / ${sets.length * IP_SET_CAPACITY}`,
            usingMetrics,
            label: `${version} fill %`,
            period: Duration.minutes(5),
          }),
          threshold: IP_SET_FILL_ALARM_PERCENT,
          comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }

    alarm(
      new Alarm(this, 'Lag', {
        alarmDescription: `edgeban: the newest log minute processed is more than ${lag}s behind (alarms.lag)`,
        metric: ingestMetric(METRICS.lagSeconds, 'Maximum'),
        threshold: lag,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );
    alarm(
      new Alarm(this, 'CircuitBreaker', {
        alarmDescription:
          'edgeban: more new blocks than maxNewBlocksPerRun; nothing was written to WAF',
        metric: reconcilerMetric(METRICS.circuitBreakerTrips),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );
    // No object event at all for `alarms.lag`: logging is off, the bucket
    // or prefix is wrong, or events do not reach the queue. An idle queue
    // reports nothing, which counts as silence.
    alarm(
      new Alarm(this, 'NoLogs', {
        alarmDescription: `edgeban: no log object arrived for ${lag}s (alarms.lag)`,
        metric: props.queue.metricNumberOfMessagesSent({
          statistic: 'Sum',
          period: Duration.seconds(silence.periodSeconds),
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: silence.periods,
        datapointsToAlarm: silence.periods,
        treatMissingData: TreatMissingData.BREACHING,
      }),
    );
    this.alarms = alarms;

    this.dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(6),
      widgets: [
        [
          new TextWidget({
            markdown: `# edgeban\nLogs in, blocks out. Alarms fire on lag over ${lag}s and on ${lag}s without a log object.`,
            width: 24,
            height: 2,
          }),
        ],
        [
          graph('Lines and rejected lines', [
            ingestMetric(METRICS.lines),
            ingestMetric(METRICS.rejected),
          ]),
          graph('Stale requests (outside the live horizon)', [ingestMetric(METRICS.stale)]),
          graph('Decisions (new blocks)', [ingestMetric(METRICS.decisions)]),
        ],
        [
          graph('Active blocks', [reconcilerMetric(METRICS.activeBlocks, 'Maximum')]),
          graph(
            'IP-set fill against capacity',
            props.ipSets.map((s) => setSize(s)),
            [
              { value: IP_SET_CAPACITY, label: 'capacity' },
              {
                value: (IP_SET_CAPACITY * IP_SET_FILL_ALARM_PERCENT) / 100,
                label: `${IP_SET_FILL_ALARM_PERCENT}%`,
              },
            ],
          ),
          graph(
            'Lag (seconds)',
            [ingestMetric(METRICS.lagSeconds, 'Maximum')],
            [{ value: lag, label: 'alarms.lag' }],
          ),
        ],
        [
          graph(
            'Dead-letter queue depth',
            Object.entries(props.deadLetterQueues).map(([label, q]) =>
              q.metricApproximateNumberOfMessagesVisible({
                statistic: 'Maximum',
                period: Duration.minutes(5),
                label,
              }),
            ),
          ),
          graph('Reconcile retries, updates, evictions', [
            reconcilerMetric(METRICS.reconcileRetries),
            reconcilerMetric(METRICS.reconcileUpdates),
            reconcilerMetric(METRICS.evictions),
            reconcilerMetric(METRICS.circuitBreakerTrips),
          ]),
          graph('Objects and skipped objects', [
            ingestMetric(METRICS.objects),
            ingestMetric(METRICS.skippedObjects),
          ]),
        ],
        [
          graph('Function errors', [
            props.ingest.metricErrors({ period: Duration.minutes(5), label: 'ingest' }),
            props.reconciler.metricErrors({ period: Duration.minutes(5), label: 'reconciler' }),
          ]),
          graph('Log object events', [
            props.queue.metricNumberOfMessagesSent({
              period: Duration.minutes(5),
              label: 'object events',
            }),
          ]),
        ],
      ],
    });
  }

  /** The dashboard's console address. */
  get dashboardUrl(): string {
    const region = Stack.of(this).region;
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${this.dashboard.dashboardName}`;
  }
}

function edgebanMetric(name: string, service: string, statistic: string): Metric {
  return new Metric({
    namespace: METRICS.namespace,
    metricName: name,
    dimensionsMap: { [METRIC_DIMENSIONS.service]: service },
    statistic,
    period: Duration.minutes(5),
  });
}

function graph(
  title: string,
  left: IMetric[],
  annotations: HorizontalAnnotation[] = [],
): GraphWidget {
  return new GraphWidget({
    title,
    left,
    leftAnnotations: annotations,
    width: 8,
    height: 6,
  });
}
