import { Duration, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  type Dashboard,
  type IMetric,
  type IWidget,
  MathExpression,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { IP_SET_CAPACITY } from '../lambda/core/config';
import { METRIC_SERVICES, METRICS } from '../lambda/shared/contract';
import { edgebanDashboard, IP_SET_FILL_ALARM_PERCENT } from './edge-ban-dashboard';
import { edgebanMetric, ipSetSizeMetric } from './edge-ban-metrics';
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
  /**
   * Widgets for reviewing and acting on blocks from the console (DESIGN
   * section 9): the dashboard shows them first, under its title.
   * @default - none
   */
  readonly consoleWidgets?: readonly IWidget[];
}

export { IP_SET_FILL_ALARM_PERCENT };

/**
 * Minutes without a completed reconcile run after which the heartbeat
 * alarm fires (the reconciler runs every minute).
 */
export const HEARTBEAT_MINUTES = 5;

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
 * lag, dead-letter queue depth, reconcile retries, and how the reconciler
 * fares against WAF) and the alarms (a dead-letter queue not empty,
 * function errors, an IP-set version over 80% full, lag, circuit breaker,
 * no log object for `alarms.lag`, a reset of the IP sets, no completed
 * reconcile run for five minutes, the reconciler throttled), which notify
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
    // failure that lasts, not on one lost race with WAF. A minute without
    // any invocation counts as a failed one, and so does a range without
    // data: a stopped reconciler must not look healthy.
    alarm(
      new Alarm(this, 'ReconcilerErrors', {
        alarmDescription:
          'edgeban: the reconciler failed, or was not invoked, in 3 of the last 5 minutes',
        metric: new MathExpression({
          expression: 'FILL(errors, 0) + IF(FILL(invocations, 0) == 0, 1, 0)',
          usingMetrics: {
            errors: props.reconciler.metricErrors({
              period: Duration.minutes(1),
              statistic: 'Sum',
            }),
            invocations: props.reconciler.metricInvocations({
              period: Duration.minutes(1),
              statistic: 'Sum',
            }),
          },
          label: 'failed or missing runs',
          period: Duration.minutes(1),
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        treatMissingData: TreatMissingData.BREACHING,
      }),
    );
    // The heartbeat: runs that completed. Silence is a stopped reconciler
    // (a disabled schedule, a broken trigger, a function that cannot start).
    alarm(
      new Alarm(this, 'ReconcilerHeartbeat', {
        alarmDescription: `edgeban: no reconcile run completed for ${HEARTBEAT_MINUTES} minutes: WAF is not being kept up to date`,
        metric: edgebanMetric(
          METRICS.reconcileRuns,
          METRIC_SERVICES.reconciler,
          'Sum',
          Duration.minutes(1),
        ),
        threshold: 1,
        comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: HEARTBEAT_MINUTES,
        datapointsToAlarm: HEARTBEAT_MINUTES,
        treatMissingData: TreatMissingData.BREACHING,
      }),
    );
    alarm(
      new Alarm(this, 'ReconcilerThrottles', {
        alarmDescription:
          'edgeban: Lambda throttled the reconciler (account concurrency exhausted): runs are delayed or lost',
        metric: props.reconciler.metricThrottles({
          period: Duration.minutes(5),
          statistic: 'Sum',
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        // No data is no throttle; a reconciler that stopped is the heartbeat's.
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );
    // Addresses wiped from the sets without a person (CloudFormation's
    // rewrite of a set on update, aws-waf-security-automations issue #233,
    // or a mass loss) were re-added: worth knowing who or what did it.
    alarm(
      new Alarm(this, 'Resets', {
        alarmDescription:
          'edgeban: addresses were wiped from the IP sets (a stack update, or a mass removal) and re-added; see history kind reset',
        metric: reconcilerMetric(METRICS.resets),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
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
        usingMetrics[`m${i}`] = ipSetSizeMetric(s);
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

    this.dashboard = edgebanDashboard(this, 'Dashboard', props);
  }

  /** The dashboard's console address. */
  get dashboardUrl(): string {
    const region = Stack.of(this).region;
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${this.dashboard.dashboardName}`;
  }
}
