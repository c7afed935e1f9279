import { CustomResource, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { EdgebanFunction } from './edgeban-function';
import { acknowledgeCdkFunction, acknowledgeXray, wildcardResourceFinding } from './nag';

/** The resource type of an ALB's access logging, as CloudFormation shows it. */
export const ALB_LOGGING_TYPE = 'Custom::EdgebanAlbLogging';

/**
 * ALB access logs to the bucket and prefix, by the `lambda/alb-logging`
 * handler: on delete each ALB gets back the access-log attributes it had
 * before (not just logging off). The resources are made directly in
 * `scope`, under the ids they had when an AwsCustomResource switched
 * logging (`AlbLogging<id>`, `AlbLoggingRole`, `AlbLoggingLogs`).
 *
 * CloudFormation refuses a new ServiceToken for an existing custom
 * resource ("Modifying service token is not allowed",
 * aws-cloudformation/cloudformation-coverage-roadmap#802): a stack made
 * with the AwsCustomResource version must drop `logs.enableOn`'s ALBs in
 * one deploy and add them back in the next.
 */
export function albAccessLogging(
  scope: Construct,
  albs: readonly string[],
  bucket: IBucket,
  prefix: string,
): void {
  const handler = new EdgebanFunction(scope, 'AlbLoggingHandler', {
    entry: 'alb-logging/handler.ts',
    description:
      'edgeban: ALB access logs to the edgeban bucket; their previous setting back on delete',
    memorySize: 256,
    timeout: Duration.minutes(1),
  });
  // DescribeLoadBalancerAttributes takes no resource-level permissions (Service
  // Authorization Reference, Elastic Load Balancing V2: no resource type).
  handler.role.addToPrincipalPolicy(
    new PolicyStatement({
      actions: ['elasticloadbalancing:DescribeLoadBalancerAttributes'],
      resources: ['*'],
    }),
  );
  handler.role.addToPrincipalPolicy(
    new PolicyStatement({
      actions: ['elasticloadbalancing:ModifyLoadBalancerAttributes'],
      resources: [...albs],
    }),
  );
  const frameworkLogs = new LogGroup(scope, 'AlbLoggingLogs', {
    retention: RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const frameworkRole = new Role(scope, 'AlbLoggingRole', {
    assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
    description: 'edgeban: CDK provider framework in front of the ALB access logging handler',
  });
  frameworkRole.addToPrincipalPolicy(
    new PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [frameworkLogs.logGroupArn],
    }),
  );
  const provider = new Provider(scope, 'AlbLoggingProvider', {
    onEventHandler: handler.function,
    logGroup: frameworkLogs,
    frameworkOnEventRole: frameworkRole,
  });
  // ALB prefixes have no trailing slash; ALB adds `/AWSLogs/...` itself.
  const albPrefix = prefix.replace(/\/+$/, '');
  for (const arn of albs) {
    const lbId = arn.slice(arn.lastIndexOf('/') + 1);
    // `AlbLogging<id>/Resource`: the path, and so the logical id, of the
    // AwsCustomResource this replaces.
    const resource = new CustomResource(new Construct(scope, `AlbLogging${lbId}`), 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: ALB_LOGGING_TYPE,
      properties: { LoadBalancerArn: arn, Bucket: bucket.bucketName, Prefix: albPrefix },
    });
    // ELB writes a test object when logging goes on: the policy must be there.
    if (bucket.policy !== undefined) resource.node.addDependency(bucket.policy);
  }
  acknowledge(provider, frameworkRole, handler);
}

function acknowledge(provider: Provider, frameworkRole: Role, handler: EdgebanFunction): void {
  acknowledgeCdkFunction(provider, 'the CDK provider framework function', [
    'dlq',
    'tracing',
    'memory',
  ]);
  acknowledgeXray(handler.role);
  const runtime =
    'edgeban targets Node 22 (nodejs22.x, supported into 2027), the version its tests run on';
  Validations.of(handler.function).acknowledge(
    { id: 'AwsSolutions-L1', reason: runtime },
    { id: 'Serverless-LambdaLatestVersion', reason: runtime },
    {
      id: 'Serverless-LambdaDLQ',
      reason:
        'invoked synchronously by the provider framework, which reports its failure to CloudFormation',
    },
  );
  Validations.of(handler.role).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'elasticloadbalancing:DescribeLoadBalancerAttributes has no resource-level permissions; the statement holds that read-only action alone, the writes name each ALB',
  });
  Validations.of(frameworkRole).acknowledge({
    id: wildcardResourceFinding(frameworkRole, `${handler.function.functionArn}:*`),
    reason:
      'the provider framework may invoke any version of the ALB logging handler; the function itself is fixed',
  });
}
