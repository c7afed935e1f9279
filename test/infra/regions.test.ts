/**
 * Where things go (DESIGN section 5): the pipeline in the log bucket's
 * region; CLOUDFRONT WAF resources in us-east-1, in a second stack when the
 * bucket is elsewhere; REGIONAL WAF resources with the pipeline.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV, OUTPUTS } from '../../lambda/shared/contract';
import { STACK_IDS } from '../../lib';
import { masked, type Synthesized, synth } from './app';

const ALB =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef';

describe('CLOUDFRONT scope with the log bucket in eu-west-1', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth(
      { logs: { prefix: 'cf/' }, attach: { distributionIds: ['E2QWRUHEXAMPLE'] } },
      'eu-west-1',
    );
  });

  it('puts the web ACL attachment with the web ACL, in us-east-1', () => {
    s.waf?.resourceCountIs('Custom::EdgebanDistributionWebAcl', 1);
    s.pipeline.resourceCountIs('Custom::EdgebanDistributionWebAcl', 0);
    expect(masked(s.waf!)).toMatchSnapshot();
  });

  it('makes a second stack in us-east-1 for the WAF resources', () => {
    expect(s.stacks.waf?.region).toBe('us-east-1');
    expect(s.stacks.waf?.node.id).toBe(STACK_IDS.waf);
    expect(s.stacks.pipeline.region).toBe('eu-west-1');
    expect(s.stacks.pipeline.dependencies).toContain(s.stacks.waf);
    s.waf?.resourceCountIs('AWS::WAFv2::IPSet', 2);
    s.waf?.hasResourceProperties('AWS::WAFv2::IPSet', { Scope: 'CLOUDFRONT' });
    s.waf?.resourceCountIs('AWS::WAFv2::WebACL', 1);
  });

  it('keeps every WAF resource out of the pipeline stack', () => {
    for (const type of ['AWS::WAFv2::IPSet', 'AWS::WAFv2::WebACL', 'AWS::WAFv2::RuleGroup']) {
      s.pipeline.resourceCountIs(type, 0);
    }
    s.pipeline.resourceCountIs('AWS::S3::Bucket', 1);
    // Ingest, reconciler and the console widget's two.
    s.pipeline.resourceCountIs('AWS::Lambda::Function', 4);
  });

  it('points the reconciler at the us-east-1 IP sets, read across regions', () => {
    const fromWaf = Match.objectLike({
      'Fn::GetStackOutput': Match.objectLike({ StackName: STACK_IDS.waf, Region: 'us-east-1' }),
    });
    s.pipeline.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: ['wafv2:GetIPSet', 'wafv2:UpdateIPSet'],
            Resource: [fromWaf, fromWaf],
          },
        ]),
      },
    });
    s.pipeline.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ [ENV.wafRegion]: 'us-east-1', [ENV.wafScope]: 'CLOUDFRONT' }),
      },
    });
  });

  it('grants ELB log delivery through eu-west-1 ELB account', () => {
    s.pipeline.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'ElbLogDelivery',
            Principal: { AWS: 'arn:aws:iam::156460612806:root' },
            Resource: {
              'Fn::Join': ['', [Match.anyValue(), '/cf/AWSLogs/', { Ref: 'AWS::AccountId' }, '/*']],
            },
          }),
        ]),
      },
    });
  });

  it('outputs the IP sets and web ACL from the pipeline stack, where the CLI looks', () => {
    const outputs = s.pipeline.toJSON().Outputs as Record<string, unknown>;
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining([OUTPUTS.ipSetArns, OUTPUTS.webAclArn, OUTPUTS.dashboardUrl]),
    );
    expect(JSON.stringify(outputs[OUTPUTS.dashboardUrl])).toContain(
      'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1',
    );
  });
});

describe('REGIONAL scope in eu-west-1', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth({ scope: 'REGIONAL', attach: { albArns: [ALB] } }, 'eu-west-1');
  });

  it('makes one stack with REGIONAL IP sets and web ACL', () => {
    expect(s.waf).toBeUndefined();
    s.pipeline.resourceCountIs('AWS::WAFv2::IPSet', 2);
    s.pipeline.hasResourceProperties('AWS::WAFv2::IPSet', { Scope: 'REGIONAL' });
    s.pipeline.hasResourceProperties('AWS::WAFv2::WebACL', { Scope: 'REGIONAL' });
  });

  it('tells the reconciler the WAF region is the pipeline region', () => {
    s.pipeline.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ [ENV.wafRegion]: 'eu-west-1', [ENV.wafScope]: 'REGIONAL' }),
      },
    });
  });

  it('links the IP sets in the regional WAF console', () => {
    const outputs = s.pipeline.toJSON().Outputs as Record<string, unknown>;
    expect(JSON.stringify(outputs[`${OUTPUTS.ipSetConsoleUrl}Ipv41`])).toContain(
      'https://eu-west-1.console.aws.amazon.com/wafv2/homev2/ip-set/',
    );
    expect(JSON.stringify(outputs[`${OUTPUTS.ipSetConsoleUrl}Ipv41`])).toContain(
      '?region=eu-west-1',
    );
  });
});

describe('a region opened after August 2022', () => {
  it('grants ELB log delivery to the log delivery service principal', () => {
    const s = synth({ scope: 'REGIONAL' }, 'ap-southeast-4');
    s.pipeline.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'ElbLogDelivery',
            Principal: { Service: 'logdelivery.elasticloadbalancing.amazonaws.com' },
          }),
        ]),
      },
    });
  });
});

describe('an environment-agnostic app', () => {
  it('keeps one stack and makes CLOUDFRONT scope fail fast outside us-east-1', () => {
    const s = synth({}, null);
    expect(s.waf).toBeUndefined();
    const rules = s.pipeline.toJSON().Rules as Record<string, unknown>;
    expect(rules.EdgebanCloudFrontScopeRegion).toEqual({
      Assertions: [
        {
          Assert: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] },
          AssertDescription: 'edgeban scope CLOUDFRONT: deploy this stack in us-east-1',
        },
      ],
    });
  });
});
