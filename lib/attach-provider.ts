import { CustomResource, Duration, Stack, Validations } from 'aws-cdk-lib';
import { type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { KINDS } from '../lambda/attach/resources';
import { EdgebanFunction } from './edgeban-function';
import { wildcardResourceFinding } from './nag';
import { providerFramework } from './provider-framework';

/** Resource type names of the custom resources, as CloudFormation shows them. */
export const RESOURCE_TYPES = {
  [KINDS.distributionWebAcl]: 'Custom::EdgebanDistributionWebAcl',
  [KINDS.distributionLogging]: 'Custom::EdgebanDistributionLogging',
  [KINDS.bucketEventBridge]: 'Custom::EdgebanBucketEventBridge',
  [KINDS.distributionRealtimeLogs]: 'Custom::EdgebanDistributionRealtimeLogs',
} as const;

const ID = 'EdgebanAttachProvider';

/**
 * The one custom resource provider per stack for the attachment handler
 * (`lambda/attach`): the handler function, the CDK provider framework in
 * front of it, and a helper to add resources. Callers grant the handler
 * exactly what each resource needs with {@link AttachProvider.grant}.
 */
export class AttachProvider extends Construct {
  /** The stack's provider, made on first use. */
  static of(scope: Construct): AttachProvider {
    const stack = Stack.of(scope);
    const existing = stack.node.tryFindChild(ID);
    return existing instanceof AttachProvider ? existing : new AttachProvider(stack, ID);
  }

  private readonly handler: EdgebanFunction;
  private readonly provider: Provider;

  private constructor(scope: Construct, id: string) {
    super(scope, id);
    this.handler = new EdgebanFunction(this, 'Handler', {
      entry: 'attach/handler.ts',
      description: 'edgeban: web ACL on CloudFront distributions, their logging, S3 to EventBridge',
      memorySize: 256,
      // Up to five read-modify-write rounds of CloudFront calls with backoff,
      // and up to about 110 s of waiting for a new web ACL to reach
      // CloudFront (lambda/attach/distribution.ts, `Retries`).
      timeout: Duration.minutes(5),
    });
    this.provider = providerFramework(this, this.handler, 'the attachment handler');
  }

  /** The handler's role, for acknowledgements of what it is granted. */
  get handlerRole(): IRole {
    return this.handler.role;
  }

  /** Lets the handler make these calls. */
  grant(statement: PolicyStatement): void {
    this.handler.role.addToPrincipalPolicy(statement);
  }

  /**
   * Lets the handler set the web ACL of these distributions with
   * CloudFront's AssociateDistributionWebACL / DisassociateDistributionWebACL
   * (see `lambda/attach/web-acl.ts`), reading each config for its web ACL
   * and ETag. AssociateDistributionWebACL also authorizes
   * `cloudfront:GetVpcOrigin` for a distribution with VPC origins (Service
   * Authorization Reference for CloudFront); which VPC origins a
   * distribution uses is only known at deploy time, so that read-only
   * action is granted on this account's VPC origins.
   */
  grantDistributionWebAcl(distributionIds: readonly string[]): void {
    const stack = Stack.of(this);
    this.grant(
      new PolicyStatement({
        actions: [
          'cloudfront:AssociateDistributionWebACL',
          'cloudfront:DisassociateDistributionWebACL',
          'cloudfront:GetDistributionConfig',
        ],
        resources: distributionIds.map((id) =>
          stack.formatArn({
            service: 'cloudfront',
            region: '',
            resource: 'distribution',
            resourceName: id,
          }),
        ),
      }),
    );
    const anyVpcOrigin = stack.formatArn({
      service: 'cloudfront',
      region: '',
      resource: 'vpcorigin',
      resourceName: '*',
    });
    this.grant(
      new PolicyStatement({ actions: ['cloudfront:GetVpcOrigin'], resources: [anyVpcOrigin] }),
    );
    Validations.of(this.handler.role).acknowledge({
      id: wildcardResourceFinding(this, anyVpcOrigin),
      reason:
        'AssociateDistributionWebACL reads the VPC origins of the distribution, known only at deploy time; read-only, this account only',
    });
  }

  /** A custom resource of `kind` handled here. */
  resource(
    scope: Construct,
    id: string,
    kind: keyof typeof RESOURCE_TYPES,
    properties: Record<string, string | boolean>,
  ): CustomResource {
    return new CustomResource(scope, id, {
      serviceToken: this.provider.serviceToken,
      resourceType: RESOURCE_TYPES[kind],
      properties: { Kind: kind, ...properties },
    });
  }
}
