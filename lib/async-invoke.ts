import { Duration, type IAspect, Validations } from 'aws-cdk-lib';
import { CfnEventInvokeConfig, CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';

/**
 * Bounds on an asynchronous invoke. Lambda's own defaults keep an event
 * for 6 hours and retry a failed one twice
 * (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html):
 * a custom resource event CloudFormation gave up on after an hour, or a
 * stale scheduled run, could still act hours later. Throttled events are
 * retried until `maxEventAge`, so it leaves room for a new account's small
 * concurrency quota to free up.
 */
export const ASYNC_INVOKE = {
  maxEventAge: Duration.minutes(15),
  /** A crash before the custom resource framework answers CloudFormation gets one more try. */
  retryAttempts: 1,
} as const;

/**
 * Gives every Lambda function in its scope a bounded asynchronous invoke
 * configuration ({@link ASYNC_INVOKE}), unless the function has one:
 * custom resource handlers (CloudFormation invokes them asynchronously),
 * aws-cdk-lib's own provider functions, and anything an event source
 * invokes. Functions only ever invoked synchronously are unaffected.
 *
 * @example
 * Aspects.of(stack).add(new BoundedAsyncInvoke());
 */
export class BoundedAsyncInvoke implements IAspect {
  visit(node: IConstruct): void {
    if (!(node instanceof CfnFunction)) return;
    const owner = node.node.scope;
    if (owner === undefined) return;
    const id = owner === node.stack ? `${node.node.id}EventInvokeConfig` : 'EventInvokeConfig';
    if (owner.node.tryFindChild(id) !== undefined) return;
    const config = new CfnEventInvokeConfig(owner, id, {
      functionName: node.ref,
      qualifier: '$LATEST',
      maximumEventAgeInSeconds: ASYNC_INVOKE.maxEventAge.toSeconds(),
      maximumRetryAttempts: ASYNC_INVOKE.retryAttempts,
    });
    Validations.of(config).acknowledge({
      id: 'Serverless-LambdaAsyncFailureDestination',
      reason:
        "the only asynchronous invoker here is CloudFormation's custom resource event, whose failure CloudFormation reports and rolls back; other invokers are synchronous (SQS pollers, the provider framework)",
    });
  }
}
