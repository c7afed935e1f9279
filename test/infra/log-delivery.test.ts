/**
 * `logs.enableOn`: the log delivery the stack switches on (CloudFront
 * legacy logging and ALB access logs), its logical ids, its bucket policy
 * and the config checks around it.
 */
import { describe, expect, it } from 'vitest';
import { synth } from './app';

const DIST = 'E2QWRUHEXAMPLE';
const ALB =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef';

/** Logical ids of the resources of `type`. */
function ids(template: ReturnType<typeof synth>['pipeline'], type: string): string[] {
  return Object.keys(template.findResources(type)).sort();
}

describe('LogDelivery logical ids', () => {
  // A changed logical id replaces the resource: CloudFormation would switch
  // logging off and on again, and a custom resource's delete would run.
  it('keeps the ids the resources had when they were made by EdgeBan itself', () => {
    const cf = synth({ logs: { prefix: 'cf/', enableOn: [DIST] } }, 'eu-west-1');
    expect(ids(cf.pipeline, 'Custom::EdgebanDistributionLogging')).toEqual([
      'EdgeBanLoggingE2QWRUHEXAMPLE6E8803AC',
    ]);
    const alb = synth(
      { scope: 'REGIONAL', logs: { prefix: 'alb/', enableOn: [ALB] } },
      'eu-west-1',
    );
    expect(ids(alb.pipeline, 'Custom::EdgebanAlbLogging')).toEqual([
      'EdgeBanAlbLogging0123456789abcdefE4B91620',
    ]);
    expect(ids(alb.pipeline, 'AWS::IAM::Role')).toContain('EdgeBanAlbLoggingRole4F02F72D');
  });
});
