import { Duration } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { METRIC_DIMENSIONS, METRIC_SERVICES, METRICS } from '../lambda/shared/contract';
import type { IpSetRef } from './edge-ban-waf';

/**
 * One of edgeban's own metrics (EMF, namespace `edgeban`) as a function
 * publishes it: under its Powertools `service` dimension.
 * @default period - five minutes
 */
export function edgebanMetric(
  name: string,
  service: string,
  statistic: string,
  period: Duration = Duration.minutes(5),
): Metric {
  return new Metric({
    namespace: METRICS.namespace,
    metricName: name,
    dimensionsMap: { [METRIC_DIMENSIONS.service]: service },
    statistic,
    period,
  });
}

/** The reconciler's count of an IP set's addresses (ours and others'). */
export function ipSetSizeMetric(set: IpSetRef): Metric {
  return new Metric({
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
}
