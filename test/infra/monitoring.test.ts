/**
 * The alarms and dashboard of the reliability work, property by property:
 * a reset of the IP sets alarms; a reconciler that stops, or is throttled,
 * alarms (its silence is never taken for health); the dashboard draws
 * resets, throttled WAF calls, stale reads and fenced-off writes from the
 * reconciler's own metrics, and keeps the first place for console review.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { TextWidget } from 'aws-cdk-lib/aws-cloudwatch';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { METRIC_DIMENSIONS, METRIC_SERVICES, METRICS } from '../../lambda/shared/contract';
import { RELIABILITY_WIDGETS } from '../../lib/edge-ban-dashboard';
import { EdgeBanMonitoring, HEARTBEAT_MINUTES } from '../../lib/edge-ban-monitoring';
import { logicalId, synth } from './app';

const reconcilerDimension = [
  { Name: METRIC_DIMENSIONS.service, Value: METRIC_SERVICES.reconciler },
];

let t: Template;
let reconciler: string;
let ingest: string;

beforeAll(() => {
  t = synth({ alarms: { email: 'ops@example.com' } }).pipeline;
  reconciler = logicalId(t, 'AWS::Lambda::Function', 'EdgeBanReconciler');
  ingest = logicalId(t, 'AWS::Lambda::Function', 'EdgeBanIngest');
});

/** The alarm whose description matches, exactly one. */
function alarm(description: RegExp): Record<string, unknown> {
  const found = Object.values(t.findResources('AWS::CloudWatch::Alarm')).filter((a) =>
    description.test(String(a.Properties.AlarmDescription)),
  );
  expect(found).toHaveLength(1);
  return found[0]!.Properties as Record<string, unknown>;
}

describe('alarms', () => {
  it('fire on any reset of the IP sets, from the reconciler metric', () => {
    expect(alarm(/wiped from the IP sets/)).toMatchObject({
      Namespace: METRICS.namespace,
      MetricName: METRICS.resets,
      Dimensions: reconcilerDimension,
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  it('fire when no reconcile run completed for five minutes, silence breaching', () => {
    expect(HEARTBEAT_MINUTES).toBe(5);
    expect(alarm(/no reconcile run completed/)).toMatchObject({
      Namespace: METRICS.namespace,
      MetricName: METRICS.reconcileRuns,
      Dimensions: reconcilerDimension,
      Statistic: 'Sum',
      Period: 60,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 5,
      DatapointsToAlarm: 5,
      TreatMissingData: 'breaching',
    });
  });

  it('fire when Lambda throttles the reconciler', () => {
    expect(alarm(/throttled the reconciler/)).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Throttles',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: reconciler } }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
  });

  it('count a minute without any reconciler invocation as a failed one, silence breaching', () => {
    const a = alarm(/the reconciler failed/);
    expect(a).toMatchObject({
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 5,
      DatapointsToAlarm: 3,
      TreatMissingData: 'breaching',
    });
    const metrics = a.Metrics as Record<string, unknown>[];
    expect(metrics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Expression: 'FILL(errors, 0) + IF(FILL(invocations, 0) == 0, 1, 0)',
          ReturnData: true,
        }),
      ]),
    );
    for (const [id, name] of [
      ['errors', 'Errors'],
      ['invocations', 'Invocations'],
    ]) {
      expect(metrics).toEqual(
        expect.arrayContaining([
          {
            Id: id,
            ReturnData: false,
            MetricStat: {
              Metric: {
                Namespace: 'AWS/Lambda',
                MetricName: name,
                Dimensions: [{ Name: 'FunctionName', Value: { Ref: reconciler } }],
              },
              Period: 60,
              Stat: 'Sum',
            },
          },
        ]),
      );
    }
  });

  it('keep ingest errors quiet when no log arrives (the no-logs alarm covers silence)', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: ingest } }],
      TreatMissingData: 'notBreaching',
    });
  });

  it('notify the topic, the new ones included', () => {
    for (const re of [/wiped from the IP sets/, /no reconcile run/, /throttled the reconciler/]) {
      expect(alarm(re).AlarmActions).toEqual([
        { Ref: expect.stringMatching(/^EdgeBanAlarmTopic/) },
      ]);
    }
  });
});

describe('dashboard', () => {
  /** Every widget of the dashboard, from its body. */
  function widgets(
    template: Template,
  ): { type: string; y: number; properties: Record<string, unknown> }[] {
    const [d] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    const body = d!.Properties.DashboardBody as { 'Fn::Join': [string, unknown[]] };
    // The body is JSON with tokens joined in; the tokens are region and function names.
    const text = body['Fn::Join'][1].map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('');
    return (JSON.parse(text) as { widgets: never[] }).widgets;
  }

  it('draws resets, throttled WAF calls, stale reads and fenced-off writes from the reconciler', () => {
    const all = widgets(t);
    const byTitle = (title: string) => {
      const w = all.find((x) => x.properties.title === title);
      if (w === undefined) throw new Error(`no widget ${title}`);
      return JSON.stringify(w.properties.metrics);
    };
    const expected: [string, string][] = [
      [RELIABILITY_WIDGETS.resets, METRICS.resets],
      [RELIABILITY_WIDGETS.throttled, METRICS.wafThrottled],
      [RELIABILITY_WIDGETS.staleReads, METRICS.staleReads],
      [RELIABILITY_WIDGETS.fencedWrites, METRICS.fencedWrites],
      [RELIABILITY_WIDGETS.runs, METRICS.reconcileRuns],
      [RELIABILITY_WIDGETS.runs, METRICS.partialRuns],
    ];
    for (const [title, metric] of expected) {
      expect(byTitle(title)).toContain(
        JSON.stringify([
          METRICS.namespace,
          metric,
          METRIC_DIMENSIONS.service,
          METRIC_SERVICES.reconciler,
        ]).slice(1, -1),
      );
    }
    expect(byTitle(RELIABILITY_WIDGETS.throttles)).toContain('"AWS/Lambda","Throttles"');
  });

  it('puts console review widgets first, right under the title', () => {
    const app = new App();
    const stack = new Stack(app, 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
    const fn = (id: string) =>
      new LambdaFunction(stack, id, {
        runtime: Runtime.NODEJS_22_X,
        handler: 'index.handler',
        code: Code.fromInline('export const handler = async () => {};'),
      });
    new EdgeBanMonitoring(stack, 'Monitoring', {
      ingest: fn('Ingest'),
      reconciler: fn('Reconciler'),
      queue: new Queue(stack, 'Q'),
      deadLetterQueues: {},
      ipSets: [],
      lagSeconds: 5400,
      topic: new Topic(stack, 'T'),
      consoleWidgets: [new TextWidget({ markdown: 'review here', width: 24, height: 8 })],
    });
    const all = widgets(Template.fromStack(stack));
    expect(all[0]!.properties.markdown).toMatch(/^# edgeban/);
    expect(all[1]).toMatchObject({ y: 2, properties: { markdown: 'review here' } });
    expect(Math.min(...all.slice(2).map((w) => w.y))).toBe(10);
  });
});
