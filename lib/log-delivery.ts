import {
  App,
  ArnFormat,
  Aws,
  CfnRule,
  Duration,
  Fn,
  Names,
  RemovalPolicy,
  Stack,
  Token,
  Validations,
} from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  CfnDelivery,
  CfnDeliveryDestination,
  CfnDeliverySource,
  LogGroup,
  RetentionDays,
} from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import {
  AwsCustomResource,
  AwsCustomResourcePolicy,
  PhysicalResourceId,
} from 'aws-cdk-lib/custom-resources';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { loggedDistributions } from '../lambda/core/config';
import type { EdgebanConfig } from '../lambda/core/types';
import { AttachProvider } from './attach-provider';
import { EdgeBanError } from './errors';
import { acknowledgeCdkFunction, wildcardResourceFinding } from './nag';

/**
 * Where CloudFront standard logging v2 is set up: "When calling the
 * CloudWatch API to enable standard logging, you must specify the US East
 * (N. Virginia) Region (us-east-1), even if you want to enable cross Region
 * delivery to another destination."
 * https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging.html
 */
export const CLOUDFRONT_DELIVERY_REGION = 'us-east-1';

/** The service principal of CloudWatch vended log delivery (CloudFront v2 included). */
export const VENDED_LOG_DELIVERY = 'delivery.logs.amazonaws.com';

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

/**
 * The S3 suffix path of a v2 delivery: one folder per distribution and hour,
 * so the key names the distribution as legacy log names do.
 */
export const V2_SUFFIX_PATH = '{DistributionId}/{yyyy}/{MM}/{dd}/{HH}';

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
      // CloudFront checks its ACL grant when logging goes on: after the bucket
      // policy (the bucket itself is referenced already).
      if (bucket.policy !== undefined) resource.node.addDependency(bucket.policy);
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

/**
 * The bucket-policy statements of CloudWatch vended log delivery to S3, as
 * AWS documents them ("Logs sent to Amazon S3", AWS-logs-infrastructure-V2-S3:
 * `AWSLogDeliveryAclCheck` and `AWSLogDeliveryWrite`, each conditioned on
 * `aws:SourceAccount` and on `aws:SourceArn` of the form
 * `arn:aws:logs:<source region>:<account>:*`). CloudFront v2 deliveries
 * live in us-east-1 whatever the bucket's region, so that is the source
 * region. Stating them in the template keeps a redeploy from dropping the
 * statements AWS would otherwise append on first delivery.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-infrastructure-V2-S3.html
 */
export function vendedLogDeliveryStatements(bucket: IBucket, prefix: string): PolicyStatement[] {
  const conditions = {
    StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
    ArnLike: {
      'aws:SourceArn': `arn:${Aws.PARTITION}:logs:${CLOUDFRONT_DELIVERY_REGION}:${Aws.ACCOUNT_ID}:*`,
    },
  };
  return [
    new PolicyStatement({
      sid: 'AWSLogDeliveryAclCheck',
      principals: [new ServicePrincipal(VENDED_LOG_DELIVERY)],
      actions: ['s3:GetBucketAcl'],
      resources: [bucket.bucketArn],
      conditions,
    }),
    new PolicyStatement({
      sid: 'AWSLogDeliveryWrite',
      principals: [new ServicePrincipal(VENDED_LOG_DELIVERY)],
      actions: ['s3:PutObject'],
      resources: [bucket.arnForObjects(v2KeyPattern(prefix))],
      conditions: {
        ...conditions,
        StringEquals: {
          's3:x-amz-acl': 'bucket-owner-full-control',
          'aws:SourceAccount': Aws.ACCOUNT_ID,
        },
      },
    }),
  ];
}

/** The prefix as the folder of a v2 destination ARN (`bucket/<folder>`), '' for none. */
function v2Folder(prefix: string): string {
  return prefix.replace(/\/+$/, '');
}

/**
 * Where v2 delivery writes: under `<prefix>/` when the destination names a
 * prefix, else under `AWSLogs/<account>/CloudFront/`, which CloudFront
 * prepends itself (standard-logging.html, "Example paths to access logs").
 */
function v2KeyPattern(prefix: string): string {
  const folder = v2Folder(prefix);
  return folder === '' ? `AWSLogs/${Aws.ACCOUNT_ID}/CloudFront/*` : `${folder}/*`;
}

/** Properties of {@link CloudFrontV2Delivery}. */
interface CloudFrontV2DeliveryProps {
  readonly distributions: readonly string[];
  readonly bucket: IBucket;
  readonly prefix: string;
  readonly format: 'w3c' | 'json';
  /** Made before the deliveries when in the same stack (the bucket and its policy). @default - nothing */
  readonly after?: IBucket;
}

/**
 * CloudFront standard logging v2 to S3: a delivery destination for the
 * bucket and prefix, and per distribution a delivery source (`ACCESS_LOGS`)
 * and a delivery. All in us-east-1 (see {@link CLOUDFRONT_DELIVERY_REGION}).
 * The distribution's own config is not touched: no `UpdateDistribution`,
 * and its legacy logging, if any, goes on as it was.
 */
class CloudFrontV2Delivery extends Construct {
  constructor(scope: Construct, id: string, props: CloudFrontV2DeliveryProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const folder = v2Folder(props.prefix);
    const destination = new CfnDeliveryDestination(this, 'Destination', {
      // Names: `[\w-]{1,60}`, unique in the account and Region.
      name: Names.uniqueResourceName(this, { maxLength: 60, separator: '-' }),
      destinationResourceArn:
        folder === '' ? props.bucket.bucketArn : `${props.bucket.bucketArn}/${folder}`,
      outputFormat: props.format,
    });
    for (const d of props.distributions) {
      // CloudFront takes one delivery source per distribution ("This
      // ResourceId has already been used in another Delivery Source").
      const source = new CfnDeliverySource(this, `Source${d}`, {
        name: `edgeban-${d}`,
        resourceArn: stack.formatArn({
          service: 'cloudfront',
          region: '',
          resource: 'distribution',
          resourceName: d,
        }),
        logType: 'ACCESS_LOGS',
      });
      const delivery = new CfnDelivery(this, `Delivery${d}`, {
        // A name, not a reference: the dependency below orders them.
        deliverySourceName: source.name,
        deliveryDestinationArn: destination.attrArn,
        s3SuffixPath: V2_SUFFIX_PATH,
      });
      delivery.addDependency(source);
      // CloudWatch Logs checks the bucket policy when the delivery is made.
      if (props.after !== undefined) {
        delivery.node.addDependency(props.after);
        if (props.after.policy !== undefined) delivery.node.addDependency(props.after.policy);
      }
    }
    if (Token.isUnresolved(stack.region)) {
      assertRegion(
        stack,
        'EdgebanCloudFrontDeliveryRegion',
        Fn.conditionEquals(Aws.REGION, CLOUDFRONT_DELIVERY_REGION),
        `edgeban logs.cloudfrontDelivery v2: deploy this stack in ${CLOUDFRONT_DELIVERY_REGION} (CloudFront v2 log delivery is set up there), or give the app a region`,
      );
    }
  }
}

/** This construct when its stack can hold the v2 resources, else a us-east-1 stack next to it. */
function deliveryScope(scope: Construct): Construct {
  const stack = Stack.of(scope);
  if (Token.isUnresolved(stack.region) || stack.region === CLOUDFRONT_DELIVERY_REGION) {
    return scope;
  }
  const app = App.of(scope);
  if (app === undefined) {
    throw new EdgeBanError(
      `logs.cloudfrontDelivery v2 needs a us-east-1 stack for its CloudWatch delivery: put the pipeline stack in an App or pass cloudFrontDeliveryScope, got a stack in ${stack.region} outside an App`,
    );
  }
  const id = `${stack.node.id}LogDelivery`;
  const existing = app.node.tryFindChild(id);
  if (existing instanceof Stack) return existing;
  const account = stack.account;
  return new Stack(app, id, {
    description: 'edgeban: CloudFront standard logging v2 to the edgeban bucket (us-east-1)',
    env: {
      ...(Token.isUnresolved(account) ? {} : { account }),
      region: CLOUDFRONT_DELIVERY_REGION,
    },
    // The destination names the bucket of the pipeline stack, in another region.
    crossRegionReferences: true,
  });
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

/** A template rule (once per stack) that fails the deployment early with `description`. */
function assertRegion(
  stack: Stack,
  id: string,
  assert: ReturnType<typeof Fn.conditionEquals>,
  description: string,
): void {
  if (stack.node.tryFindChild(id) !== undefined) return;
  new CfnRule(stack, id, { assertions: [{ assert, assertDescription: description }] });
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
