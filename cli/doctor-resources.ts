/**
 * The checks of `edgeban doctor` on the resources a config names: each
 * CloudFront distribution (its web ACL and logging against what the deploy
 * will do) and the log bucket (Region, ownership controls, notifications).
 */
import { type DistributionConfig, GetDistributionConfigCommand } from '@aws-sdk/client-cloudfront';
import {
  GetBucketLocationCommand,
  GetBucketNotificationConfigurationCommand,
  GetBucketOwnershipControlsCommand,
} from '@aws-sdk/client-s3';
import type { EdgebanConfig } from '../lambda/core/types';
import {
  type Check,
  couldNotCheck,
  type DoctorClients,
  type DoctorContext,
  errorName,
  fail,
  isEdgebans,
  ok,
} from './doctor-checks';

/** Every distribution the config names, once, in config order. */
function distributionIds(config: EdgebanConfig): string[] {
  const ids = [
    ...config.attach.distributionIds,
    ...config.logs.enableOn.filter((id) => !id.startsWith('arn:')),
    ...config.realtime.distributionIds,
  ];
  return [...new Set(ids)];
}

function usesLambdaEdge(d: DistributionConfig): boolean {
  const behaviors = [d.DefaultCacheBehavior, ...(d.CacheBehaviors?.Items ?? [])];
  return behaviors.some((b) => (b?.LambdaFunctionAssociations?.Quantity ?? 0) > 0);
}

function usesVpcOrigins(d: DistributionConfig): boolean {
  return (d.Origins?.Items ?? []).some((o) => o.VpcOriginConfig !== undefined);
}

/** What edgeban will do to one distribution, against what it holds now: one check per problem. */
function judgeDistribution(ctx: DoctorContext, id: string, d: DistributionConfig): Check[] {
  const check = `distribution:${id}`;
  const { config } = ctx;
  const problems: { status: 'warn' | 'fail'; detail: string; fix: string }[] = [];
  const webAcl = d.WebACLId ?? '';
  const attaching =
    config.attach.distributionIds.includes(id) && config.attach.mode === 'new-web-acl';
  if (attaching && webAcl !== '' && !isEdgebans(webAcl.split('/')[2])) {
    if (!config.attach.replaceExistingWebAcl) {
      problems.push({
        status: 'fail',
        detail: `has web ACL ${webAcl}, which edgeban refuses to replace`,
        fix: 'set attach.replaceExistingWebAcl to true (it is restored on stack deletion), or add edgeban\'s rules to that web ACL with attach.mode "rule-group"',
      });
    } else {
      problems.push({
        status: 'warn',
        detail: `has web ACL ${webAcl}; the deploy replaces it (restored on stack deletion)`,
        fix: 'make sure its rules are not needed while edgeban protects the distribution',
      });
    }
  }
  const logging = d.Logging;
  const enabling = config.logs.enableOn.includes(id);
  const legacyOn = logging?.Enabled === true;
  const features = config.logs.distributionFeatures;
  if (enabling && config.logs.cloudfrontDelivery === 'legacy') {
    if (
      legacyOn &&
      logging?.Bucket !== undefined &&
      !logging.Bucket.startsWith(`${config.logs.bucketName ?? ''}.`)
    ) {
      problems.push({
        status: 'warn',
        detail: `logs to ${logging.Bucket}${logging.Prefix ?? ''}; the deploy points them to edgeban's bucket (restored on stack deletion)`,
        fix: "copy the logs elsewhere from edgeban's bucket if another consumer reads them",
      });
    }
    if (usesLambdaEdge(d) && !features.includes('lambda-edge')) {
      problems.push({
        status: 'fail',
        detail: 'has Lambda@Edge functions, which a logging rewrite must be allowed to keep',
        fix: 'add "lambda-edge" to logs.distributionFeatures',
      });
    }
    if (usesVpcOrigins(d) && !features.includes('vpc-origins')) {
      problems.push({
        status: 'fail',
        detail: 'has VPC origins, which a logging rewrite must be allowed to keep',
        fix: 'add "vpc-origins" to logs.distributionFeatures',
      });
    }
  }
  if (enabling && config.logs.cloudfrontDelivery !== 'legacy' && legacyOn) {
    problems.push({
      status: 'warn',
      detail: `legacy logging is on (to ${logging?.Bucket ?? '?'}) besides the v2 delivery edgeban adds`,
      fix: "if it goes to edgeban's bucket and prefix too, switch it off, or every request counts twice",
    });
  }
  if (!enabling && !config.realtime.distributionIds.includes(id) && !legacyOn) {
    problems.push({
      status: 'warn',
      detail: 'is not logged: edgeban will see none of its requests',
      fix: 'add it to logs.enableOn (or realtime.distributionIds)',
    });
  }
  const summary = `web ACL ${webAcl === '' ? 'none' : webAcl}; legacy logging ${legacyOn ? `to ${logging?.Bucket}${logging?.Prefix ?? ''}` : 'off'}`;
  if (problems.length === 0) return [ok(check, summary)];
  return problems.map((p) => ({
    id: check,
    status: p.status,
    detail: `${id} ${p.detail}`,
    fix: p.fix,
  }));
}

/** Each distribution's current web ACL and logging, against what the deploy will do. */
export async function checkDistributions(c: DoctorClients, ctx: DoctorContext): Promise<Check[]> {
  const out: Check[] = [];
  for (const id of distributionIds(ctx.config)) {
    try {
      const res = await c.cloudfront.send(new GetDistributionConfigCommand({ Id: id }));
      out.push(...judgeDistribution(ctx, id, res.DistributionConfig ?? ({} as DistributionConfig)));
    } catch (err) {
      if (errorName(err) === 'NoSuchDistribution') {
        out.push(
          fail(
            `distribution:${id}`,
            `distribution ${id} does not exist in account ${ctx.account}`,
            'fix the id in the config (CloudFront console, the ID column)',
          ),
        );
      } else {
        out.push(couldNotCheck(`distribution:${id}`, 'cloudfront:GetDistributionConfig', err));
      }
    }
  }
  return out;
}

/** The log bucket: its Region, its ownership controls, its notifications. */
export async function checkLogBucket(c: DoctorClients, ctx: DoctorContext): Promise<Check[]> {
  const bucket = ctx.config.logs.bucketName;
  if (bucket === undefined) {
    return [ok('log-bucket', `the deploy creates the log bucket in ${ctx.region}`)];
  }
  const out: Check[] = [];
  try {
    const loc = await c.s3.send(new GetBucketLocationCommand({ Bucket: bucket }));
    // GetBucketLocation answers null (empty) for us-east-1 and "EU" for the oldest eu-west-1 buckets.
    const raw = loc.LocationConstraint ?? '';
    const region = raw === '' ? 'us-east-1' : raw === 'EU' ? 'eu-west-1' : raw;
    if (region !== ctx.region) {
      return [
        fail(
          'log-bucket',
          `bucket ${bucket} is in ${region}, the pipeline would deploy in ${ctx.region}`,
          `deploy (and run doctor) with AWS_REGION=${region}: the pipeline lives in the bucket's Region`,
        ),
      ];
    }
    out.push(ok('log-bucket', `bucket ${bucket} in ${region}`));
  } catch (err) {
    if (errorName(err) === 'NoSuchBucket') {
      return [
        fail(
          'log-bucket',
          `bucket ${bucket} does not exist`,
          'fix logs.bucketName, or leave it out to have the deploy create a bucket',
        ),
      ];
    }
    return [couldNotCheck('log-bucket', 's3:GetBucketLocation', err)];
  }
  out.push(await checkOwnership(c, ctx, bucket));
  out.push(await checkNotifications(c, bucket));
  return out;
}

/**
 * CloudFront legacy logging writes through the bucket ACL, so it needs ACLs
 * enabled: "BucketOwnerEnforced" disables them
 * (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging-legacy-s3.html,
 * "Permissions required to configure standard logging").
 */
async function checkOwnership(
  c: DoctorClients,
  ctx: DoctorContext,
  bucket: string,
): Promise<Check> {
  const id = 'log-bucket-ownership';
  const legacy =
    ctx.config.logs.cloudfrontDelivery === 'legacy' &&
    ctx.config.logs.enableOn.some((e) => !e.startsWith('arn:'));
  let ownership: string;
  try {
    const res = await c.s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket }));
    ownership = res.OwnershipControls?.Rules?.[0]?.ObjectOwnership ?? 'ObjectWriter';
  } catch (err) {
    // No ownership controls at all: ACLs are enabled (the pre-2023 default, ObjectWriter).
    if (errorName(err) === 'OwnershipControlsNotFoundError') ownership = 'ObjectWriter';
    else return couldNotCheck(id, 's3:GetBucketOwnershipControls', err);
  }
  if (legacy && ownership === 'BucketOwnerEnforced') {
    return fail(
      id,
      `bucket ${bucket} has ACLs disabled (BucketOwnerEnforced); CloudFront legacy logging cannot write to it`,
      `set its object ownership to BucketOwnerPreferred (aws s3api put-bucket-ownership-controls --bucket ${bucket} --ownership-controls Rules=[{ObjectOwnership=BucketOwnerPreferred}]), or use logs.cloudfrontDelivery "v2-w3c"`,
    );
  }
  return ok(id, `object ownership ${ownership}`);
}

/** Log objects reach ingest through EventBridge; the deploy switches it on and keeps the rest. */
async function checkNotifications(c: DoctorClients, bucket: string): Promise<Check> {
  const id = 'log-bucket-notifications';
  try {
    const n = await c.s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
    const others =
      (n.QueueConfigurations?.length ?? 0) +
      (n.TopicConfigurations?.length ?? 0) +
      (n.LambdaFunctionConfigurations?.length ?? 0);
    const kept = others === 0 ? '' : `; its ${others} other destination(s) are kept`;
    if (n.EventBridgeConfiguration !== undefined) {
      return ok(id, `EventBridge notifications on${kept}`);
    }
    return ok(id, `EventBridge notifications off: the deploy switches them on${kept}`);
  } catch (err) {
    return couldNotCheck(id, 's3:GetBucketNotification', err);
  }
}
