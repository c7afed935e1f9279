import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import {
  AwsCustomResource,
  AwsCustomResourcePolicy,
  PhysicalResourceId,
} from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { EdgebanConfig } from '../lambda/core/types';
import { AttachProvider } from './attach-provider';
import { acknowledgeCdkFunction } from './nag';

/** Properties of {@link LogDelivery}. */
export interface LogDeliveryProps {
  /** The parsed config: `logs.enableOn` and `logs.prefix` say what logs where. */
  readonly config: EdgebanConfig;
  /** The bucket the logs go to. */
  readonly bucket: IBucket;
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
    const distributions = config.logs.enableOn.filter((t) => !t.startsWith('arn:'));
    const albs = config.logs.enableOn.filter((t) => t.startsWith('arn:'));
    if (distributions.length > 0) this.legacyCloudFront(distributions, bucket, prefix);
    if (albs.length > 0) this.alb(albs, bucket, prefix);
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
      if (bucket.policy !== undefined) resource.node.addDependency(bucket.policy);
      resource.node.addDependency(bucket);
    }
  }

  /** ALB access logs, through the load balancer's attributes. */
  private alb(albs: readonly string[], bucket: IBucket, prefix: string): void {
    const stack = Stack.of(this);
    const policy = bucket.policy;
    // ALB prefixes have no trailing slash; ALB adds `/AWSLogs/...` itself.
    const albPrefix = prefix.replace(/\/+$/, '');
    const logs = new LogGroup(this, 'AlbLoggingLogs', {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new Role(this, 'AlbLoggingRole', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: 'edgeban: switches ALB access logging to the edgeban bucket',
    });
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logs.logGroupArn],
      }),
    );
    const attributes = (enabled: boolean) => [
      { Key: 'access_logs.s3.enabled', Value: String(enabled) },
      ...(enabled
        ? [
            { Key: 'access_logs.s3.bucket', Value: bucket.bucketName },
            { Key: 'access_logs.s3.prefix', Value: albPrefix },
          ]
        : []),
    ];
    for (const arn of albs) {
      const lbId = arn.slice(arn.lastIndexOf('/') + 1);
      const call = (enabled: boolean) => ({
        service: 'ElasticLoadBalancingV2',
        action: 'modifyLoadBalancerAttributes',
        parameters: { LoadBalancerArn: arn, Attributes: attributes(enabled) },
        physicalResourceId: PhysicalResourceId.of(`${arn}|logging`),
      });
      const resource = new AwsCustomResource(this, `AlbLogging${lbId}`, {
        resourceType: 'Custom::EdgebanAlbLogging',
        onCreate: call(true),
        onUpdate: call(true),
        // Logging goes off with the stack: the bucket may be gone next.
        onDelete: call(false),
        policy: AwsCustomResourcePolicy.fromStatements([
          new PolicyStatement({
            actions: ['elasticloadbalancing:ModifyLoadBalancerAttributes'],
            resources: [arn],
          }),
        ]),
        role,
        logGroup: logs,
        memorySize: 256,
        timeout: Duration.minutes(2),
        installLatestAwsSdk: false,
      });
      // ELB writes a test object when logging goes on: the policy must be there.
      if (policy !== undefined) resource.node.addDependency(policy);
    }
    acknowledgeAwsCustomResource(stack);
  }
}

/** AwsCustomResource's singleton function is aws-cdk-lib's own code. */
function acknowledgeAwsCustomResource(stack: Stack): void {
  const id = `AWS${AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`;
  const fn = stack.node.tryFindChild(id);
  if (fn !== undefined)
    acknowledgeCdkFunction(fn, 'the AwsCustomResource function', ['dlq', 'tracing']);
}
