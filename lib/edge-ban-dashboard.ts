import { Duration } from 'aws-cdk-lib';
import {
  Dashboard,
  GraphWidget,
  type HorizontalAnnotation,
  type IMetric,
  type IWidget,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { IP_SET_CAPACITY } from '../lambda/core/config';
import { METRIC_SERVICES, METRICS } from '../lambda/shared/contract';
import { edgebanMetric, ipSetSizeMetric } from './edge-ban-metrics';
import type { IpSetRef } from './edge-ban-waf';

/** Share of an IP set's total capacity at which the fill alarm fires. */
export const IP_SET_FILL_ALARM_PERCENT = 80;

/** What the dashboard draws. */
export interface EdgeBanDashboardProps {
  readonly ingest: IFunction;
  readonly reconciler: IFunction;
  readonly queue: IQueue;
  readonly deadLetterQueues: Readonly<Record<string, IQueue>>;
  readonly ipSets: readonly IpSetRef[];
  readonly lagSeconds: number;
  /**
   * Widgets for reviewing and acting on blocks from the console (DESIGN
   * section 9), placed first, right under the title, one row each.
   * @default - none
   */
  readonly consoleWidgets?: readonly IWidget[];
}

/** Titles of the reliability row: the WAF behaviours edgeban survives (README "Reliability"). */
export const RELIABILITY_WIDGETS = {
  resets: 'Resets: addresses re-added after a CloudFormation update or mass loss',
  throttled: 'Throttled WAF calls (delayed, never aborted)',
  staleReads: 'Stale IP set reads (ignored)',
  fencedWrites: 'Fenced-off state writes (a stale reconciler refused)',
  runs: 'Reconcile runs (heartbeat) and partial runs',
  throttles: 'Reconciler invocations throttled by Lambda',
} as const;

/**
 * The operator's dashboard: console review first (when there is one), then
 * logs in, blocks out, the IP sets, lag, failures, and how the reconciler
 * fares against WAF (resets, throttling, stale reads, fencing, heartbeat).
 */
export function edgebanDashboard(
  scope: Construct,
  id: string,
  props: EdgeBanDashboardProps,
): Dashboard {
  const lag = props.lagSeconds;
  const ingestMetric = (name: string, statistic = 'Sum') =>
    edgebanMetric(name, METRIC_SERVICES.ingest, statistic);
  const reconcilerMetric = (name: string, statistic = 'Sum') =>
    edgebanMetric(name, METRIC_SERVICES.reconciler, statistic);
  const title = new TextWidget({
    markdown: `# edgeban\nLogs in, blocks out. Alarms fire on lag over ${lag}s and on ${lag}s without a log object.`,
    width: 24,
    height: 2,
  });
  const rows: IWidget[][] = [
    [title],
    ...(props.consoleWidgets ?? []).map((w) => [w]),
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
        props.ipSets.map((s) => ipSetSizeMetric(s)),
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
    [
      graph(RELIABILITY_WIDGETS.resets, [reconcilerMetric(METRICS.resets)], [], 6),
      graph(RELIABILITY_WIDGETS.throttled, [reconcilerMetric(METRICS.wafThrottled)], [], 6),
      graph(RELIABILITY_WIDGETS.staleReads, [reconcilerMetric(METRICS.staleReads)], [], 6),
      graph(RELIABILITY_WIDGETS.fencedWrites, [reconcilerMetric(METRICS.fencedWrites)], [], 6),
    ],
    [
      graph(
        RELIABILITY_WIDGETS.runs,
        [reconcilerMetric(METRICS.reconcileRuns), reconcilerMetric(METRICS.partialRuns)],
        [],
        12,
      ),
      graph(
        RELIABILITY_WIDGETS.throttles,
        [props.reconciler.metricThrottles({ period: Duration.minutes(5), label: 'throttles' })],
        [],
        12,
      ),
    ],
  ];
  return new Dashboard(scope, id, { defaultInterval: Duration.hours(6), widgets: rows });
}

function graph(
  title: string,
  left: IMetric[],
  annotations: HorizontalAnnotation[] = [],
  width = 8,
): GraphWidget {
  return new GraphWidget({ title, left, leftAnnotations: annotations, width, height: 6 });
}
