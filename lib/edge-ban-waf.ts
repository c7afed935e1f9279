import { Arn, ArnFormat, Aws, CfnRule, Fn, Names, Stack, Token, Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { CfnIPSet, CfnRuleGroup, CfnWebACL, CfnWebACLAssociation } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { MAX_IP_SETS } from '../lambda/core/config';
import type { EdgebanConfig, Scope } from '../lambda/core/types';
import { AttachProvider } from './attach-provider';
import { EdgeBanError } from './errors';
import { wildcardResourceFinding } from './nag';

/** Where the CLOUDFRONT scope's WAF resources must live. */
export const CLOUDFRONT_WAF_REGION = 'us-east-1';

/** One IP set the reconciler maintains. */
export interface IpSetRef {
  readonly name: string;
  readonly id: string;
  readonly arn: string;
  readonly version: 'IPV4' | 'IPV6';
  readonly scope: Scope;
}

/** Properties of {@link EdgeBanWaf}. */
export interface EdgeBanWafProps {
  /**
   * The parsed `edgeban` config: `scope`, `mode`, `response`, `ipSets` and
   * `attach` shape the WAF resources.
   */
  readonly config: EdgebanConfig;
}

/**
 * A rule group's capacity cannot change after creation, so it is sized for
 * the most IP sets the config allows (one WCU per IP set reference): a
 * change of `ipSets` never replaces a group that a web ACL references.
 */
export const RULE_GROUP_CAPACITY = 2 * MAX_IP_SETS;

/** Name of the WAF rule that matches the IP sets. */
export const BLOCKLIST_RULE_NAME = 'edgeban-blocklist';

/**
 * The WAF side of edgeban: the IP sets (per `ipSets`), and per
 * `attach.mode` a new web ACL whose rule matches them (attached to the
 * `attach` distributions or ALBs), a rule group for a web ACL of your own,
 * or nothing but the sets.
 *
 * For CLOUDFRONT scope this must sit in a us-east-1 stack.
 *
 * @example
 * const waf = new EdgeBanWaf(wafStack, 'Waf', { config: parseConfig(raw) });
 * new EdgeBan(pipelineStack, 'EdgeBan', { config: raw, waf });
 */
export class EdgeBanWaf extends Construct {
  /** IPv4 sets first, then IPv6, in the order the reconciler fills them. */
  readonly ipSets: readonly IpSetRef[];
  /** The sets' CloudFormation resources, in the order of {@link ipSets}. */
  readonly ipSetResources: readonly CfnIPSet[];
  readonly scope: Scope;
  /** The new web ACL's ARN (`attach.mode` `new-web-acl`). */
  readonly webAclArn: string | undefined;
  /** The rule group's ARN (`attach.mode` `rule-group`). */
  readonly ruleGroupArn: string | undefined;
  /** Region of the IP sets (a token in an environment-agnostic stack). */
  readonly region: string;

  private readonly config: EdgebanConfig;
  private readonly namePrefix: string;

  constructor(scope: Construct, id: string, props: EdgeBanWafProps) {
    super(scope, id);
    const config = props.config;
    const stack = Stack.of(this);
    validate(config, stack);

    this.config = config;
    this.scope = config.scope;
    this.region = stack.region;
    this.namePrefix = Names.uniqueResourceName(this, { maxLength: 40, separator: '-' });

    const sets: IpSetRef[] = [];
    const resources: CfnIPSet[] = [];
    for (const version of ['IPV4', 'IPV6'] as const) {
      const count = version === 'IPV4' ? config.ipSets.ipv4 : config.ipSets.ipv6;
      for (let n = 1; n <= count; n++) {
        const label = `${version === 'IPV4' ? 'Ipv4' : 'Ipv6'}Set${n}`;
        const name = `${this.namePrefix}-${version.toLowerCase()}-${n}`;
        // Every property depends only on what identifies the set (scope,
        // version, position): CloudFormation rewrites a set's addresses with
        // the template's empty list whenever it updates the resource, so a
        // config change that keeps a set must leave its properties alone
        // (aws-waf-security-automations issue #233, "Updating the stack
        // removes configured IP set"). `test/infra/ip-set-stability.test.ts`
        // holds every config field to that.
        const set = new CfnIPSet(this, label, {
          name,
          scope: config.scope,
          ipAddressVersion: version,
          // The reconciler owns the contents; CloudFormation only creates the set.
          addresses: [],
          description: `edgeban blocklist, ${version} set ${n}`,
        });
        sets.push({ name, id: set.attrId, arn: set.attrArn, version, scope: config.scope });
        resources.push(set);
      }
    }
    this.ipSets = sets;
    this.ipSetResources = resources;

    if (config.attach.mode === 'new-web-acl') {
      const acl = new CfnWebACL(this, 'WebAcl', {
        name: this.namePrefix,
        scope: config.scope,
        description: 'edgeban: blocks the addresses in the edgeban IP sets',
        defaultAction: { allow: {} },
        rules: [this.blocklistRule(0)],
        visibilityConfig: {
          cloudWatchMetricsEnabled: true,
          sampledRequestsEnabled: true,
          metricName: this.namePrefix,
        },
      });
      this.webAclArn = acl.attrArn;
      this.ruleGroupArn = undefined;
      this.attach(acl.attrArn);
    } else if (config.attach.mode === 'rule-group') {
      const group = new CfnRuleGroup(this, 'RuleGroup', {
        name: this.namePrefix,
        scope: config.scope,
        capacity: RULE_GROUP_CAPACITY,
        description: 'edgeban: blocks the addresses in the edgeban IP sets',
        rules: [this.blocklistRule(0)],
        visibilityConfig: {
          cloudWatchMetricsEnabled: true,
          sampledRequestsEnabled: true,
          metricName: this.namePrefix,
        },
      });
      this.webAclArn = undefined;
      this.ruleGroupArn = group.attrArn;
    } else {
      this.webAclArn = undefined;
      this.ruleGroupArn = undefined;
    }
  }

  /**
   * The rule that matches the IP sets, with the action of `mode` (Block
   * with the `response` status, or Count), for a web ACL of your own.
   * @param priority the rule's priority in that web ACL
   */
  blocklistRule(priority: number): CfnWebACL.RuleProperty {
    // The config has at least one set per version: always two or more, as OR needs.
    const statement = {
      orStatement: {
        statements: this.ipSets.map((s) => ({ ipSetReferenceStatement: { arn: s.arn } })),
      },
    };
    const action: CfnWebACL.RuleActionProperty =
      this.config.mode === 'block'
        ? {
            block:
              this.config.response === 403
                ? {}
                : { customResponse: { responseCode: this.config.response } },
          }
        : // `count` keeps the sets and counts matches; `observe` leaves them empty.
          { count: {} };
    return {
      name: BLOCKLIST_RULE_NAME,
      priority,
      statement,
      action,
      visibilityConfig: {
        cloudWatchMetricsEnabled: true,
        sampledRequestsEnabled: true,
        metricName: `${this.namePrefix}-blocklist`,
      },
    };
  }

  private attach(webAclArn: string): void {
    const { distributionIds, albArns, replaceExistingWebAcl } = this.config.attach;
    for (const albArn of albArns) {
      new CfnWebACLAssociation(this, `Alb${albId(albArn)}`, {
        resourceArn: albArn,
        webAclArn,
      });
    }
    if (distributionIds.length === 0) return;
    const provider = AttachProvider.of(this);
    const stack = Stack.of(this);
    provider.grantDistributionWebAcl(distributionIds);
    // CloudFront checks the caller's WAF permissions on the web ACL it is
    // given (AssociateDistributionWebACL); the handler also asks WAF whether a
    // previous web ACL is really gone before restoring none.
    provider.grant(
      new PolicyStatement({
        actions: ['wafv2:GetWebACL', 'wafv2:AssociateWebACL', 'wafv2:DisassociateWebACL'],
        resources: [webAclArn],
      }),
    );
    if (replaceExistingWebAcl) {
      // Restoring the web ACL that was there before needs the same rights on
      // it, and its ARN is only known at deploy time: any global web ACL of
      // this account, granted only when replacing one is allowed.
      const anyGlobalWebAcl = stack.formatArn({
        service: 'wafv2',
        region: CLOUDFRONT_WAF_REGION,
        resource: 'global',
        resourceName: 'webacl/*',
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      });
      provider.grant(
        new PolicyStatement({
          actions: ['wafv2:GetWebACL', 'wafv2:AssociateWebACL', 'wafv2:DisassociateWebACL'],
          resources: [anyGlobalWebAcl],
        }),
      );
      Validations.of(provider.handlerRole).acknowledge({
        id: wildcardResourceFinding(provider, anyGlobalWebAcl),
        reason:
          'attach.replaceExistingWebAcl is true: the web ACL to restore on delete is only known at deploy time; the grant covers global web ACLs of this account only, and only these three actions',
      });
    }
    for (const distributionId of distributionIds) {
      provider.resource(this, `Distribution${distributionId}`, 'DistributionWebAcl', {
        DistributionId: distributionId,
        WebAclArn: webAclArn,
        ReplaceExisting: replaceExistingWebAcl,
      });
    }
  }
}

/** The load balancer id: the last part of its ARN, unique in its region. */
function albId(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}

/** The region of an ALB ARN. */
export function albRegion(arn: string): string {
  return Arn.split(arn, ArnFormat.SLASH_RESOURCE_NAME).region ?? '';
}

function validate(config: EdgebanConfig, stack: Stack): void {
  const region = stack.region;
  if (config.scope === 'CLOUDFRONT') {
    if (!Token.isUnresolved(region) && region !== CLOUDFRONT_WAF_REGION) {
      throw new EdgeBanError(
        `scope CLOUDFRONT needs the WAF resources in ${CLOUDFRONT_WAF_REGION}, got a stack in ${region}`,
      );
    }
    if (Token.isUnresolved(region)) {
      // An environment-agnostic stack: fail the deployment early and clearly
      // rather than when WAF rejects a CLOUDFRONT set outside us-east-1.
      const id = 'EdgebanCloudFrontScopeRegion';
      if (stack.node.tryFindChild(id) === undefined) {
        new CfnRule(stack, id, {
          assertions: [
            {
              assert: Fn.conditionEquals(Aws.REGION, CLOUDFRONT_WAF_REGION),
              assertDescription: `edgeban scope CLOUDFRONT: deploy this stack in ${CLOUDFRONT_WAF_REGION}`,
            },
          ],
        });
      }
    }
  }
  if (!Token.isUnresolved(region)) {
    config.attach.albArns.forEach((arn, i) => {
      if (albRegion(arn) !== region) {
        throw new EdgeBanError(
          `attach.albArns[${i}] must be in the web ACL's region ${region}, got ${arn}`,
        );
      }
    });
  }
}
