import type { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { GetAccountSettingsCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import {
  ListIPSetsCommand,
  ListRuleGroupsCommand,
  ListWebACLsCommand,
  type WAFV2Client,
} from '@aws-sdk/client-wafv2';
import { loggedDistributions } from '../lambda/core/config';
import type { EdgebanConfig } from '../lambda/core/types';
import { isUnreachable, oneLine, UnreachableError } from './errors';

/** How a check came out. */
export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One line of the doctor's report. */
export interface Check {
  /** Stable id, e.g. `lambda-concurrency`, `distribution:E2QWRUHEXAMPLE`. */
  readonly id: string;
  readonly status: CheckStatus;
  /** What was found. */
  readonly detail: string;
  /** How to fix it, one line; empty when ok. */
  readonly fix: string;
}

/** The clients the checks use, per Region where it matters. */
export interface DoctorClients {
  readonly lambda: LambdaClient;
  /** WAF in the Region of the config's scope (us-east-1 for CLOUDFRONT). */
  readonly wafv2: WAFV2Client;
  readonly cloudfront: CloudFrontClient;
  readonly s3: S3Client;
  /** SSM per Region, for the CDK bootstrap version. */
  ssm(region: string): SSMClient;
}

/** What the checks know of the deployment. */
export interface DoctorContext {
  readonly config: EdgebanConfig;
  readonly account: string;
  /** The pipeline stack's Region (the log bucket's). */
  readonly region: string;
  /** Whether `region` is an opt-in Region (from aws-cdk-lib's region facts). */
  readonly optInRegion: boolean;
}

export const ok = (id: string, detail: string): Check => ({ id, status: 'ok', detail, fix: '' });
export const warn = (id: string, detail: string, fix: string): Check => ({
  id,
  status: 'warn',
  detail,
  fix,
});
export const fail = (id: string, detail: string, fix: string): Check => ({
  id,
  status: 'fail',
  detail,
  fix,
});

export function errorName(err: unknown): string {
  return typeof err === 'object' && err !== null && 'name' in err ? String(err.name) : '';
}

/**
 * A check whose read failed: unreachable endpoints end the run (exit 3),
 * anything else (mostly a missing permission) is a warning naming the
 * action, since the deploy itself may still have it.
 */
export function couldNotCheck(id: string, action: string, err: unknown): Check {
  if (isUnreachable(err)) throw new UnreachableError(`${action}: ${oneLine(err)}`);
  return warn(
    id,
    `could not check: ${action} failed (${errorName(err) || 'Error'}: ${oneLine(err)})`,
    `run doctor with credentials allowed ${action}`,
  );
}

/**
 * Lambda needs at least this many executions free in the Region for
 * edgeban: ingest (one per batch of log objects in flight), the reconciler
 * and the custom resource handlers during the deploy. New accounts can
 * start with a concurrency quota of 10; the default is 1,000
 * (https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html,
 * "Concurrency quotas"; quota code L-B99A9384).
 */
export const NEEDED_CONCURRENCY = 10;
/** Below this account quota, ingest shares too little with the account's other functions. */
export const COMFORTABLE_CONCURRENCY = 100;

/** The account's Lambda concurrency against what edgeban needs. */
export async function checkLambdaConcurrency(c: DoctorClients, ctx: DoctorContext): Promise<Check> {
  const id = 'lambda-concurrency';
  let limit: number | undefined;
  let unreserved: number | undefined;
  try {
    const res = await c.lambda.send(new GetAccountSettingsCommand({}));
    limit = res.AccountLimit?.ConcurrentExecutions;
    unreserved = res.AccountLimit?.UnreservedConcurrentExecutions;
  } catch (err) {
    return couldNotCheck(id, 'lambda:GetAccountSettings', err);
  }
  const fix = `request a Lambda "Concurrent executions" quota (L-B99A9384) of at least ${COMFORTABLE_CONCURRENCY} in ${ctx.region} (Service Quotas console)`;
  if (limit === undefined || unreserved === undefined) {
    return warn(id, 'GetAccountSettings returned no concurrency limit', fix);
  }
  const detail = `${limit} concurrent executions in ${ctx.region}, ${unreserved} unreserved`;
  if (unreserved < NEEDED_CONCURRENCY) {
    return fail(id, `${detail}; edgeban needs ${NEEDED_CONCURRENCY}`, fix);
  }
  if (limit < COMFORTABLE_CONCURRENCY) {
    return warn(id, `${detail}; log bursts will be throttled and retried`, fix);
  }
  return ok(id, detail);
}

/** AWS WAF default quotas per account and Region (https://docs.aws.amazon.com/waf/latest/developerguide/limits.html). */
export const WAF_QUOTAS = { ipSets: 100, webAcls: 100, ruleGroups: 100 } as const;

/** Whether a WAF entity's name is one an earlier deploy of edgeban made (its construct path). */
export function isEdgebans(name: string | undefined): boolean {
  return (name ?? '').toLowerCase().startsWith('edgeban');
}

type Lister = (marker: string | undefined) => Promise<{
  names: (string | undefined)[];
  next: string | undefined;
}>;

async function listAll(list: Lister): Promise<(string | undefined)[]> {
  const names: (string | undefined)[] = [];
  let marker: string | undefined;
  do {
    const page = await list(marker);
    names.push(...page.names);
    marker = page.next;
  } while (marker !== undefined);
  return names;
}

/** WAF IP sets, web ACLs and rule groups the deploy adds, against the quotas. */
export async function checkWafQuotas(c: DoctorClients, ctx: DoctorContext): Promise<Check[]> {
  const scope = ctx.config.scope;
  const where = scope === 'CLOUDFRONT' ? 'us-east-1 (CLOUDFRONT)' : `${ctx.region} (REGIONAL)`;
  const mode = ctx.config.attach.mode;
  const kinds = [
    {
      id: 'waf-ip-sets',
      what: 'IP sets',
      action: 'wafv2:ListIPSets',
      quota: WAF_QUOTAS.ipSets,
      needed: ctx.config.ipSets.ipv4 + ctx.config.ipSets.ipv6,
      list: (m: string | undefined) =>
        c.wafv2
          .send(new ListIPSetsCommand({ Scope: scope, NextMarker: m, Limit: 100 }))
          .then((r) => ({ names: (r.IPSets ?? []).map((s) => s.Name), next: r.NextMarker })),
    },
    {
      id: 'waf-web-acls',
      what: 'web ACLs',
      action: 'wafv2:ListWebACLs',
      quota: WAF_QUOTAS.webAcls,
      needed: mode === 'new-web-acl' ? 1 : 0,
      list: (m: string | undefined) =>
        c.wafv2
          .send(new ListWebACLsCommand({ Scope: scope, NextMarker: m, Limit: 100 }))
          .then((r) => ({ names: (r.WebACLs ?? []).map((s) => s.Name), next: r.NextMarker })),
    },
    {
      id: 'waf-rule-groups',
      what: 'rule groups',
      action: 'wafv2:ListRuleGroups',
      quota: WAF_QUOTAS.ruleGroups,
      needed: mode === 'rule-group' ? 1 : 0,
      list: (m: string | undefined) =>
        c.wafv2
          .send(new ListRuleGroupsCommand({ Scope: scope, NextMarker: m, Limit: 100 }))
          .then((r) => ({ names: (r.RuleGroups ?? []).map((s) => s.Name), next: r.NextMarker })),
    },
  ];
  const out: Check[] = [];
  for (const k of kinds) {
    if (k.needed === 0) continue;
    let names: (string | undefined)[];
    try {
      names = await listAll(k.list);
    } catch (err) {
      out.push(couldNotCheck(k.id, k.action, err));
      continue;
    }
    const ours = names.filter(isEdgebans).length;
    // An update of an earlier deploy keeps its entities: only the rest are new.
    const adding = Math.max(0, k.needed - ours);
    const after = names.length + adding;
    const detail = `${names.length} ${k.what} in ${where}, the deploy adds ${adding}: ${after} of the default quota ${k.quota}`;
    const fix = `delete unused ${k.what} in ${where}, or request a higher AWS WAF quota for ${k.what} (Service Quotas)`;
    if (after > k.quota) out.push(fail(k.id, detail, fix));
    else if (after > k.quota * 0.9) out.push(warn(k.id, detail, fix));
    else out.push(ok(k.id, detail));
  }
  return out;
}

/**
 * The Region's constraints for the chosen logging: CloudFront's WAF
 * resources live in us-east-1 (https://docs.aws.amazon.com/waf/latest/developerguide/how-aws-waf-works-resources.html,
 * "Amazon CloudFront ... us-east-1"), and legacy CloudFront logging does not
 * deliver to buckets in opt-in Regions
 * (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging-legacy-s3.html).
 */
export function checkRegion(ctx: DoctorContext): Check[] {
  const { config, region } = ctx;
  const out: Check[] = [];
  if (config.scope === 'CLOUDFRONT') {
    out.push(
      ok(
        'region-waf',
        region === 'us-east-1'
          ? 'CLOUDFRONT scope: the WAF resources deploy with the pipeline in us-east-1'
          : `CLOUDFRONT scope: the WAF resources go to a second stack in us-east-1, the pipeline stays in ${region}`,
      ),
    );
  } else if (config.attach.distributionIds.length > 0) {
    out.push(
      fail(
        'region-waf',
        'REGIONAL scope cannot protect CloudFront distributions',
        'set scope to CLOUDFRONT, or remove attach.distributionIds',
      ),
    );
  } else {
    out.push(ok('region-waf', `REGIONAL scope: the WAF resources deploy in ${region}`));
  }
  const distributions = config.logs.enableOn.filter((id) => !id.startsWith('arn:'));
  if (distributions.length > 0) {
    const legacy = config.logs.cloudfrontDelivery === 'legacy';
    if (legacy && ctx.optInRegion) {
      out.push(
        fail(
          'region-logging',
          `CloudFront legacy logging does not deliver to buckets in the opt-in Region ${region}`,
          'set logs.cloudfrontDelivery to "v2-w3c" or "v2-json", or use a log bucket in another Region',
        ),
      );
    } else {
      out.push(
        ok(
          'region-logging',
          legacy
            ? `CloudFront legacy logging delivers to ${region}`
            : `CloudFront standard logging v2 (delivery source in us-east-1) delivers to ${region}`,
        ),
      );
    }
  }
  out.push(...checkLoadBalancerRegions(ctx));
  return out;
}

/** The Region of an ELB ARN (`arn:aws:elasticloadbalancing:<region>:...`), or null. */
function arnRegion(arn: string): string | null {
  return /^arn:[\w-]+:elasticloadbalancing:([\w-]+):/.exec(arn)?.[1] ?? null;
}

/**
 * A regional web ACL goes only on resources of its own Region
 * (https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-associating-aws-resource.html),
 * and a load balancer logs only to a bucket in its own Region
 * (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html).
 */
function checkLoadBalancerRegions(ctx: DoctorContext): Check[] {
  const { config, region } = ctx;
  const arns = [
    ...config.attach.albArns,
    ...config.logs.enableOn.filter((id) => id.startsWith('arn:')),
  ];
  const elsewhere = [...new Set(arns)].filter((arn) => arnRegion(arn) !== region);
  if (arns.length === 0) return [];
  if (elsewhere.length === 0) {
    return [ok('region-load-balancers', `every load balancer is in ${region}`)];
  }
  return [
    fail(
      'region-load-balancers',
      `${elsewhere.length} load balancer(s) outside ${region}: ${elsewhere.join(', ')}`,
      `deploy one edgeban per Region: keep only ${region}'s load balancers in attach.albArns and logs.enableOn`,
    ),
  ];
}

/**
 * The CDK bootstrap stack's version in a Region: the SSM parameter the
 * default synthesizer checks (`/cdk-bootstrap/hnb659fds/version`, qualifier
 * hnb659fds), at least 6 for aws-cdk-lib v2's file and image assets
 * (https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html).
 */
export const BOOTSTRAP_PARAMETER = '/cdk-bootstrap/hnb659fds/version';
export const MIN_BOOTSTRAP_VERSION = 6;

export async function checkBootstrap(c: DoctorClients, ctx: DoctorContext): Promise<Check[]> {
  const regions = [ctx.region];
  // CloudFront's WAF resources, and its v2 log deliveries, deploy in us-east-1.
  const v2 =
    ctx.config.logs.cloudfrontDelivery !== 'legacy' &&
    loggedDistributions(ctx.config.logs).length > 0;
  if ((ctx.config.scope === 'CLOUDFRONT' || v2) && ctx.region !== 'us-east-1') {
    regions.push('us-east-1');
  }
  const out: Check[] = [];
  for (const region of regions) {
    const id = `cdk-bootstrap:${region}`;
    const fix = `npx cdk bootstrap aws://${ctx.account}/${region}`;
    try {
      const res = await c.ssm(region).send(new GetParameterCommand({ Name: BOOTSTRAP_PARAMETER }));
      const version = Number(res.Parameter?.Value);
      if (!Number.isInteger(version) || version < MIN_BOOTSTRAP_VERSION) {
        out.push(
          fail(
            id,
            `bootstrap version ${res.Parameter?.Value ?? '?'} in ${region}, edgeban needs ${MIN_BOOTSTRAP_VERSION} or later`,
            fix,
          ),
        );
      } else {
        out.push(ok(id, `bootstrap version ${version} in ${region}`));
      }
    } catch (err) {
      if (errorName(err) === 'ParameterNotFound') {
        out.push(fail(id, `${region} is not bootstrapped for the CDK`, fix));
      } else {
        out.push(couldNotCheck(id, 'ssm:GetParameter', err));
      }
    }
  }
  return out;
}
