import { ArnFormat, Aws, Fn, Stack, Token, Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { loggedDistributions } from '../lambda/core/config';
import type { EdgebanConfig } from '../lambda/core/types';
import { albAccessLogging } from './alb-logging';
import { AttachProvider } from './attach-provider';
import { assertRegion, CloudFrontV2Delivery, deliveryScope } from './cloudfront-v2-delivery';
import { EdgeBanError } from './errors';
import { wildcardResourceFinding } from './nag';

/**
 * Regions whose buckets CloudFront legacy logging does not deliver to: the
 * opt-in Regions ("Don't choose an Amazon S3 bucket in any of the following
 * Regions, because CloudFront doesn't deliver standard logs to buckets in
 * these Regions", standard-logging-legacy-s3.html#access-logs-choosing-s3-bucket;
 * standard logging v2 can: "You can also use S3 buckets in the opt-in AWS
 * Regions", standard-logging.html#send-logs-s3). The list is aws-cdk-lib's
 * region facts (`isOptInRegion`), so a newer opt-in Region that aws-cdk-lib
 * knows is refused too.
 */
export const LEGACY_LOGGING_REFUSED_REGIONS: readonly string[] = RegionInfo.regions
  .filter((r) => r.isOptInRegion)
  .map((r) => r.name)
  .sort();

export {
  CLOUDFRONT_DELIVERY_REGION,
  V2_SUFFIX_PATH,
  VENDED_LOG_DELIVERY,
  vendedLogDeliveryStatements,
} from './cloudfront-v2-delivery';

/** Properties of {@link LogDelivery}. */
export interface LogDeliveryProps {
  /** The parsed config: `logs.enableOn` and `logs.prefix` say what logs where. */
  readonly config: EdgebanConfig;
  /** The bucket the logs go to. */
  readonly bucket: IBucket;
  /**
   * Where the CloudWatch resources of CloudFront v2 delivery go: a construct
   * in a us-east-1 stack.
   * @default - this stack when it is in us-east-1 (or has no region: a
   *   template rule then asserts us-east-1), else a `<stack id>LogDelivery`
   *   stack in us-east-1 made next to it
   */
  readonly cloudFrontDeliveryScope?: Construct;
}

/**
 * `logs.enableOn`: switches access logging on for CloudFront distributions
 * and ALBs, to the log bucket under `logs.prefix`.
 *
 * Give it the id `Default` under the construct that used to hold these
 * resources: CDK leaves `Default` out of logical ids, so the resources keep
 * theirs.
 */
export class LogDelivery extends Construct {
  constructor(scope: Construct, id: string, props: LogDeliveryProps) {
    super(scope, id);
    const { config, bucket } = props;
    const prefix = config.logs.prefix;
    const distributions = loggedDistributions(config.logs);
    const albs = config.logs.enableOn.filter((t) => t.startsWith('arn:'));
    if (distributions.length > 0) {
      if (config.logs.cloudfrontDelivery === 'legacy') {
        checkLegacyRegion(this);
        this.legacyCloudFront(distributions, bucket, prefix);
        grantDistributionRewrite(AttachProvider.of(this), config);
      } else {
        const format = config.logs.cloudfrontDelivery === 'v2-json' ? 'json' : 'w3c';
        const scope = props.cloudFrontDeliveryScope ?? deliveryScope(this);
        new CloudFrontV2Delivery(scope, 'CloudFrontLogDelivery', {
          distributions,
          bucket,
          prefix,
          format,
          ...(scope === this ? { after: bucket } : {}),
        });
      }
    }
    if (albs.length > 0) albAccessLogging(this, albs, bucket, prefix);
  }

  /** CloudFront legacy logging through the attachment handler. */
  private legacyCloudFront(
    distributions: readonly string[],
    bucket: IBucket,
    prefix: string,
  ): void {
    const stack = Stack.of(this);
    const provider = AttachProvider.of(this);
    provider.grant(
      new PolicyStatement({
        actions: ['cloudfront:GetDistributionConfig', 'cloudfront:UpdateDistribution'],
        resources: distributions.map((d) =>
          stack.formatArn({
            service: 'cloudfront',
            region: '',
            resource: 'distribution',
            resourceName: d,
          }),
        ),
      }),
    );
    // CloudFront grants its log delivery account write access in the
    // bucket ACL, with the caller's rights.
    provider.grant(
      new PolicyStatement({
        actions: ['s3:GetBucketAcl', 's3:PutBucketAcl'],
        resources: [bucket.bucketArn],
      }),
    );
    for (const d of distributions) {
      const resource = provider.resource(this, `Logging${d}`, 'DistributionLogging', {
        DistributionId: d,
        // CloudFront legacy logging names the bucket by its global endpoint.
        Bucket: `${bucket.bucketName}.s3.amazonaws.com`,
        Prefix: prefix,
      });
      // CloudFront checks its ACL grant when logging goes on: after the bucket
      // policy (the bucket itself is referenced already).
      if (bucket.policy !== undefined) resource.node.addDependency(bucket.policy);
    }
  }
}

/**
 * Legacy logging into an opt-in Region's bucket fails `cdk synth` when the
 * Region is known, and the deployment (a template rule) when it is not.
 */
function checkLegacyRegion(scope: Construct): void {
  const stack = Stack.of(scope);
  const region = stack.region;
  if (!Token.isUnresolved(region)) {
    if (LEGACY_LOGGING_REFUSED_REGIONS.includes(region)) {
      throw new EdgeBanError(
        `logs.cloudfrontDelivery must be "v2-w3c" or "v2-json" for a log bucket in the opt-in Region ${region} (CloudFront legacy logging does not deliver to opt-in Regions), got "legacy"`,
      );
    }
    return;
  }
  assertRegion(
    stack,
    'EdgebanLegacyLoggingRegion',
    Fn.conditionNot(Fn.conditionContains([...LEGACY_LOGGING_REFUSED_REGIONS], Aws.REGION)),
    'edgeban logs.cloudfrontDelivery "legacy": CloudFront legacy logging does not deliver to buckets in opt-in Regions; set logs.cloudfrontDelivery to "v2-w3c" or "v2-json"',
  );
}

/**
 * `logs.distributionFeatures`: what a full `UpdateDistribution` of a
 * distribution that uses them needs on top of CloudFront's own actions.
 *
 * - Lambda@Edge: `lambda:GetFunction`, `lambda:EnableReplication*`,
 *   `lambda:DisableReplication*` on the function versions (us-east-1), and
 *   `iam:CreateServiceLinkedRole` for the replicator role ("IAM permissions
 *   required to associate Lambda@Edge functions with CloudFront
 *   distributions", lambda-edge-permissions.html).
 * - VPC origins: `cloudfront:GetVpcOrigin` (a dependent action of
 *   UpdateDistribution in the Service Authorization Reference,
 *   list_amazoncloudfront.html).
 *
 * The function and VPC origin names are the distribution's, unknown here:
 * the grants name every function version in us-east-1 and every VPC origin
 * of this account, and only when the config says the distributions use them.
 */
export function grantDistributionRewrite(provider: AttachProvider, config: EdgebanConfig): void {
  const features = config.logs.distributionFeatures;
  const stack = Stack.of(provider);
  if (features.includes('lambda-edge')) {
    const versions = stack.formatArn({
      service: 'lambda',
      region: 'us-east-1',
      resource: 'function',
      resourceName: '*:*',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    provider.grant(
      new PolicyStatement({
        actions: ['lambda:GetFunction', 'lambda:EnableReplication*', 'lambda:DisableReplication*'],
        resources: [versions],
      }),
    );
    const replicator = stack.formatArn({
      service: 'iam',
      region: '',
      resource: 'role',
      resourceName:
        'aws-service-role/replicator.lambda.amazonaws.com/AWSServiceRoleForLambdaReplicator',
    });
    provider.grant(
      new PolicyStatement({
        actions: ['iam:CreateServiceLinkedRole'],
        resources: [replicator],
        conditions: { StringLike: { 'iam:AWSServiceName': 'replicator.lambda.amazonaws.com' } },
      }),
    );
    Validations.of(provider.handlerRole).acknowledge(
      {
        id: wildcardResourceFinding(provider, versions),
        reason:
          'logs.distributionFeatures has lambda-edge: CloudFront checks these Lambda@Edge permissions on the function versions a distribution already uses when its whole config is written back for legacy logging; their names are only in the distribution',
      },
      {
        id: 'AwsSolutions-IAM5[Action::lambda:EnableReplication*]',
        reason:
          'AWS documents the action as lambda:EnableReplication* for Lambda@Edge associations (lambda-edge-permissions.html)',
      },
      {
        id: 'AwsSolutions-IAM5[Action::lambda:DisableReplication*]',
        reason:
          'AWS documents the action as lambda:DisableReplication* for Lambda@Edge associations (lambda-edge-permissions.html)',
      },
    );
  }
  if (features.includes('vpc-origins')) {
    const origins = stack.formatArn({
      service: 'cloudfront',
      region: '',
      resource: 'vpcorigin',
      resourceName: '*',
    });
    provider.grant(
      new PolicyStatement({ actions: ['cloudfront:GetVpcOrigin'], resources: [origins] }),
    );
    Validations.of(provider.handlerRole).acknowledge({
      id: wildcardResourceFinding(provider, origins),
      reason:
        'logs.distributionFeatures has vpc-origins: UpdateDistribution checks cloudfront:GetVpcOrigin on the VPC origins a distribution already uses, whose ids are only in the distribution; read-only, this account only',
    });
  }
}
