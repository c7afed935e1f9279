import { Validations } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Provider } from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import type { EdgebanFunction } from './edgeban-function';
import { acknowledgeCdkFunction, acknowledgeXray, wildcardResourceFinding } from './nag';

/**
 * The CDK provider framework in front of one of edgeban's custom resource
 * handlers, made the same way for each: its own log group with retention,
 * a role that may write only there (and invoke the handler), and the
 * cdk-nag acknowledgements of aws-cdk-lib's framework function. Construct
 * ids under `scope`: `FrameworkLogs`, `FrameworkRole`, `Provider`.
 * @param what the handler, for the role's description ("the attachment handler")
 */
export function providerFramework(
  scope: Construct,
  handler: EdgebanFunction,
  what: string,
): Provider {
  const frameworkLogs = new LogGroup(scope, 'FrameworkLogs', {
    retention: RetentionDays.ONE_MONTH,
  });
  const frameworkRole = new Role(scope, 'FrameworkRole', {
    assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
    description: `edgeban: CDK provider framework in front of ${what}`,
  });
  frameworkRole.addToPrincipalPolicy(
    new PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [frameworkLogs.logGroupArn],
    }),
  );
  const provider = new Provider(scope, 'Provider', {
    onEventHandler: handler.function,
    logGroup: frameworkLogs,
    frameworkOnEventRole: frameworkRole,
  });
  acknowledgeFramework(provider, frameworkRole, handler, what);
  return provider;
}

/** The provider framework's function is aws-cdk-lib's own code, not edgeban's. */
function acknowledgeFramework(
  provider: Provider,
  role: Role,
  handler: EdgebanFunction,
  what: string,
): void {
  acknowledgeCdkFunction(provider, 'the CDK provider framework function', [
    'dlq',
    'tracing',
    'memory',
  ]);
  acknowledgeXray(handler.role);
  Validations.of(handler.function).acknowledge(
    {
      id: 'AwsSolutions-L1',
      reason:
        'edgeban targets Node 22 (nodejs22.x, supported into 2027), the version its tests run on',
    },
    {
      id: 'Serverless-LambdaLatestVersion',
      reason:
        'edgeban targets Node 22 (nodejs22.x, supported into 2027), the version its tests run on',
    },
    {
      id: 'Serverless-LambdaDLQ',
      reason:
        'invoked synchronously by the provider framework, which reports its failure to CloudFormation',
    },
  );
  // The framework invokes the handler by its ARN and by `ARN:*` (its versions).
  Validations.of(role).acknowledge({
    id: wildcardResourceFinding(role, `${handler.function.functionArn}:*`),
    reason: `the provider framework may invoke any version of ${what}; the function itself is fixed`,
  });
}
