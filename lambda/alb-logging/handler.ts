/**
 * Custom resource handler (behind the CDK provider framework) for ALB
 * access logging; see `resource.ts`. The client is built once, at init.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { onEvent, type ResourceResult } from './resource';

const logger = new Logger({ serviceName: 'edgeban-alb-logging' });
const elbv2 = new ElasticLoadBalancingV2Client({});

export async function handler(event: CloudFormationCustomResourceEvent): Promise<ResourceResult> {
  logger.info('event', {
    requestType: event.RequestType,
    logicalResourceId: event.LogicalResourceId,
  });
  return onEvent(event, { elbv2, log: (message, extra) => logger.info(message, extra ?? {}) });
}
