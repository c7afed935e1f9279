/**
 * Custom resource handler (behind the CDK provider framework) for the
 * CloudFront web ACL attachment, CloudFront logging and S3 → EventBridge
 * switches; see `resources.ts`. Clients are built once, at init.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { S3Client } from '@aws-sdk/client-s3';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { onEvent, type ResourceResult } from './resources';

const logger = new Logger({ serviceName: 'edgeban-attach' });
// CloudFront's API is global; its endpoint signs in us-east-1.
const cloudfront = new CloudFrontClient({ region: 'us-east-1' });
// CloudFront's web ACLs (scope CLOUDFRONT) live in us-east-1.
const wafv2 = new WAFV2Client({ region: 'us-east-1' });
const s3 = new S3Client({});

export async function handler(event: CloudFormationCustomResourceEvent): Promise<ResourceResult> {
  logger.info('event', {
    requestType: event.RequestType,
    kind: event.ResourceProperties.Kind,
    logicalResourceId: event.LogicalResourceId,
  });
  return onEvent(event, {
    cloudfront,
    wafv2,
    s3,
    log: (message, extra) => logger.info(message, extra ?? {}),
  });
}
