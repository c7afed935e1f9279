import { App, Aws, CfnRule, Fn, Names, Stack, Token } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnDelivery, CfnDeliveryDestination, CfnDeliverySource } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { EdgeBanError } from './errors';

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
 * The S3 suffix path of a v2 delivery: one folder per distribution and hour,
 * so the key names the distribution as legacy log names do.
 */
export const V2_SUFFIX_PATH = '{DistributionId}/{yyyy}/{MM}/{dd}/{HH}';

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
export interface CloudFrontV2DeliveryProps {
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
export class CloudFrontV2Delivery extends Construct {
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
export function deliveryScope(scope: Construct): Construct {
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

/** A template rule (once per stack) that fails the deployment early with `description`. */
export function assertRegion(
  stack: Stack,
  id: string,
  assert: ReturnType<typeof Fn.conditionEquals>,
  description: string,
): void {
  if (stack.node.tryFindChild(id) !== undefined) return;
  new CfnRule(stack, id, { assertions: [{ assert, assertDescription: description }] });
}
