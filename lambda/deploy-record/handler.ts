/**
 * Custom resource handler (behind the CDK provider framework) that records
 * each deploy and rollback of the stack that owns the IP sets; see
 * `record.ts`. Clients are built once per Region and kept for the
 * function's life.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { type DeployRecordResult, onDeployEvent } from './record';

const logger = new Logger({ serviceName: 'edgeban-deploy-record' });
const documentClients = new Map<string, DynamoDBDocumentClient>();
const cloudformationClients = new Map<string, CloudFormationClient>();

function ddb(region: string): DynamoDBDocumentClient {
  let client = documentClients.get(region);
  if (client === undefined) {
    client = DynamoDBDocumentClient.from(new DynamoDBClient({ region }));
    documentClients.set(region, client);
  }
  return client;
}

function cloudformation(region: string): CloudFormationClient {
  let client = cloudformationClients.get(region);
  if (client === undefined) {
    client = new CloudFormationClient({ region });
    cloudformationClients.set(region, client);
  }
  return client;
}

export async function handler(
  event: CloudFormationCustomResourceEvent,
): Promise<DeployRecordResult> {
  logger.info('event', {
    requestType: event.RequestType,
    logicalResourceId: event.LogicalResourceId,
  });
  return onDeployEvent(event, {
    ddb,
    cloudformation,
    now: () => Date.now(),
    log: (level, message, extra) =>
      level === 'error' ? logger.error(message, extra ?? {}) : logger.info(message, extra ?? {}),
  });
}
