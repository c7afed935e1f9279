/**
 * cdk-nag v3, the AwsSolutions and Serverless packs, over the app in each
 * shape it can take: nothing unacknowledged, and every acknowledgement
 * answers a finding that is really there, with a reason.
 */
import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, type NagPack, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { synth } from './app';

const DIST = 'E2QWRUHEXAMPLE';
const ALB =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef';

/** The app in each of its shapes. */
const SHAPES: [string, Record<string, unknown>, string][] = [
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
  ['a rule group', { attach: { mode: 'rule-group' } }, 'us-east-1'],
  ['no attachment', { scope: 'REGIONAL', attach: { mode: 'none' } }, 'ap-southeast-4'],
];

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

describe.each(SHAPES)('cdk-nag over %s', (_, fields, region) => {
  const { app } = synth(fields, region);

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
