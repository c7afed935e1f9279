/**
 * The app in each shape it can take (every configuration the infra tests
 * synthesize), synthesized once here and checked as a whole:
 * - cdk-nag v3, the AwsSolutions and Serverless packs: nothing
 *   unacknowledged, and every acknowledgement answers a finding that is
 *   really there, with a reason;
 * - no reserved concurrency, and every asynchronous invoke bounded;
 * - cfn-lint over every template, in one run (cfnlint.ts).
 */
import { type App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, type NagPack, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { ASYNC_INVOKE } from '../../lib';
import { synth } from './app';
import { CFN_LINT, cfnLintAvailable, runCfnLint, staleListings, unlisted } from './cfnlint';

const DIST = 'E2QWRUHEXAMPLE';
const ALB =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef';

/** The app in each of its shapes (region null: environment-agnostic). */
const SHAPES: [string, Record<string, unknown>, string | null][] = [
  ['the shipped config', {}, 'us-east-1'],
  [
    'CLOUDFRONT from eu-west-1: distributions attached, replacing, logging on, e-mail',
    {
      logs: { prefix: 'cf/', enableOn: [DIST] },
      attach: { distributionIds: [DIST], replaceExistingWebAcl: true },
      alarms: { email: 'ops@example.com' },
    },
    'eu-west-1',
  ],
  [
    'REGIONAL: an ALB attached and logging, an existing bucket, a topic',
    {
      scope: 'REGIONAL',
      logs: { bucketName: 'my-logs', prefix: 'alb/', enableOn: [ALB] },
      attach: { albArns: [ALB] },
      alarms: { topicArn: 'arn:aws:sns:eu-west-1:123456789012:ops' },
    },
    'eu-west-1',
  ],
  [
    'CloudFront v2 delivery from eu-west-1, in its own us-east-1 stack',
    { logs: { prefix: 'cf/', enableOn: [DIST], cloudfrontDelivery: 'v2-json' } },
    'eu-west-1',
  ],
  [
    'CloudFront v2 delivery in the pipeline stack, us-east-1',
    { logs: { enableOn: [DIST], cloudfrontDelivery: 'v2-json' } },
    'us-east-1',
  ],
  [
    'CloudFront v2 delivery, environment-agnostic (a rule asserts us-east-1)',
    { logs: { enableOn: [DIST], cloudfrontDelivery: 'v2-w3c' } },
    null,
  ],
  [
    'legacy logging of a distribution with Lambda@Edge and VPC origins',
    { logs: { enableOn: [DIST], distributionFeatures: ['lambda-edge', 'vpc-origins'] } },
    'us-east-1',
  ],
  [
    'real-time logs of a distribution with Lambda@Edge, provisioned shards, e-mail',
    {
      attach: { distributionIds: [DIST] },
      realtime: { distributionIds: [DIST], shards: 2 },
      logs: { distributionFeatures: ['lambda-edge'] },
      alarms: { email: 'ops@example.com' },
    },
    'us-east-1',
  ],
  [
    'a rule group over several IP sets',
    { attach: { mode: 'rule-group' }, ipSets: { ipv4: 3, ipv6: 2 } },
    'us-east-1',
  ],
  ['no attachment', { scope: 'REGIONAL', attach: { mode: 'none' } }, 'ap-southeast-4'],
  [
    'CLOUDFRONT in us-east-1: an existing bucket, logging on, e-mail',
    {
      logs: { bucketName: 'my-logs', prefix: 'cf/', enableOn: [DIST] },
      attach: { distributionIds: [DIST] },
      alarms: { email: 'ops@example.com' },
    },
    'us-east-1',
  ],
  [
    'REGIONAL: a new bucket, an ALB attached and logging, a topic',
    {
      scope: 'REGIONAL',
      logs: { prefix: 'alb/', enableOn: [ALB] },
      attach: { albArns: [ALB] },
      alarms: { topicArn: 'arn:aws:sns:eu-west-1:123456789012:ops-alarms' },
    },
    'eu-west-1',
  ],
  ['the shipped config, environment-agnostic', {}, null],
  [
    'a staging deployment from eu-west-1',
    { stage: 'staging', attach: { distributionIds: [DIST] } },
    'eu-west-1',
  ],
];

/** Each shape, synthesized once for every check in this file. */
const BUILT = SHAPES.map(([name, fields, region]) => ({ name, region, ...synth(fields, region) }));

/** Every template of every shape (all the app's stacks), named `<shape>/<stack>`. */
const TEMPLATES: { name: string; template: Template }[] = BUILT.flatMap((b) =>
  b.app.node.children
    .filter((c): c is Stack => Stack.isStack(c))
    .map((stack) => ({
      name: `${b.name}/${stack.stackName}`,
      template: Template.fromStack(stack),
    })),
);

const packs = (): NagPack[] => [new AwsSolutionsChecks(), new ServerlessChecks()];

interface Ack {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

/** Every acknowledgement in the tree, where it was made. */
function acknowledgements(app: App): Ack[] {
  const out: Ack[] = [];
  for (const c of app.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [key, reason] of Object.entries(entry.data as Record<string, string>)) {
        out.push({ path: c.node.path, id: key.replace(/^annotation::/i, ''), reason });
      }
    }
  }
  return out;
}

/** What a pack finds when acknowledgements are ignored: rule id and construct path. */
function rawFindings(app: IConstruct): { rule: string; path: string }[] {
  const out: { rule: string; path: string }[] = [];
  for (const pack of packs()) {
    // The pack's own check, bypassed: every finding, acknowledged or not.
    (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
    for (const v of pack.validateScope(app).violations) {
      for (const r of v.violatingResources)
        out.push({ rule: v.ruleName, path: r.constructPath ?? '' });
    }
  }
  return out;
}

describe.each(BUILT.map((b) => [b.name, b.app] as const))('cdk-nag over %s', (_, app) => {
  it.each(packs().map((p) => [p.readPackName, p] as const))(
    'finds nothing unacknowledged with the %s pack',
    (_name, pack) => {
      const report = pack.validateScope(app);
      expect(
        report.violations.map((v) => `${v.ruleName} at ${v.violatingResources[0]?.constructPath}`),
      ).toEqual([]);
      expect(report.success).toBe(true);
    },
  );

  it('acknowledges only findings that are there, each with a reason', () => {
    const acks = acknowledgements(app);
    expect(acks.length).toBeGreaterThan(0);
    const raw = rawFindings(app);
    for (const ack of acks) {
      expect(ack.reason.length, `${ack.id} at ${ack.path}`).toBeGreaterThanOrEqual(40);
      expect(ack.reason, `${ack.id} at ${ack.path}`).not.toMatch(
        /\b(todo|tbd|suppress(ed)?|ignore[ds]?|n\/a)\b/i,
      );
      const answered = raw.some(
        (f) => f.rule === ack.id && (f.path === ack.path || f.path.startsWith(`${ack.path}/`)),
      );
      expect(answered, `stale acknowledgement ${ack.id} at ${ack.path}`).toBe(true);
    }
  });
});

describe.each(TEMPLATES.map((t) => [t.name, t.template] as const))('template %s', (_, t) => {
  const of = (type: string) => Object.entries(t.findResources(type));

  it('reserves no Lambda concurrency (new accounts cannot spare it)', () => {
    expect(JSON.stringify(t.toJSON())).not.toContain('ReservedConcurrentExecutions');
  });

  it('bounds the event age and retries of every function invoked asynchronously', () => {
    const configs = new Map(
      of('AWS::Lambda::EventInvokeConfig').map(([, c]) => [c.Properties.FunctionName.Ref, c]),
    );
    // Invoked asynchronously: custom resource handlers (CloudFormation) and rule targets.
    const resources = Object.values(t.toJSON().Resources as Record<string, { Type: string }>);
    const tokens = resources
      .filter((r) => r.Type.startsWith('Custom::'))
      .map((r) => JSON.stringify(r));
    const targets = of('AWS::Events::Rule').map(([, r]) => JSON.stringify(r.Properties.Targets));
    const functions = of('AWS::Lambda::Function').map(([id]) => id);
    const asynchronous = functions.filter((id) =>
      [...tokens, ...targets].some((ref) => ref.includes(`"${id}"`)),
    );
    if (tokens.length > 0) expect(asynchronous.length).toBeGreaterThan(0);
    for (const id of functions) {
      const c = configs.get(id);
      expect(c, `${id} has no EventInvokeConfig`).toBeDefined();
      expect(c?.Properties.Qualifier).toBe('$LATEST');
      expect(c?.Properties.MaximumEventAgeInSeconds).toBe(ASYNC_INVOKE.maxEventAge.toSeconds());
      expect(c?.Properties.MaximumRetryAttempts).toBeLessThanOrEqual(1);
    }
    // Anything a rule invokes directly has its own bounded retry policy too.
    for (const [, r] of of('AWS::Events::Rule')) {
      for (const target of r.Properties.Targets) {
        if (!functions.some((id) => JSON.stringify(target.Arn).includes(`"${id}"`))) continue;
        expect(target.RetryPolicy?.MaximumEventAgeInSeconds).toBeLessThanOrEqual(3600);
        expect(target.RetryPolicy?.MaximumRetryAttempts).toBeLessThanOrEqual(2);
      }
    }
  });
});

describe('cfn-lint over every template', () => {
  const available = cfnLintAvailable();
  const ci = process.env.CI === 'true';
  if (!available && !ci) {
    it.skip(`skipped: ${CFN_LINT} not found (pip install cfn-lint; CI fails without it)`, () => {});
    return;
  }

  it('finds no error and no warning that is not listed with its reason', () => {
    if (!available) throw new Error(`${CFN_LINT} not found: CI needs cfn-lint 1.x on PATH`);
    const regions = [...new Set(BUILT.map((b) => b.region ?? 'us-east-1'))];
    const findings = runCfnLint(
      TEMPLATES.map((t) => ({ name: t.name, body: t.template.toJSON() })),
      regions,
    );
    expect(findings.filter((f) => f.level === 'Error')).toEqual([]);
    expect(unlisted(findings)).toEqual([]);
    expect(staleListings(findings)).toEqual([]);
  }, 180_000);
});
