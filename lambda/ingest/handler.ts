/**
 * Ingest Lambda: an SQS batch of S3 object-created events in, partial batch
 * failures out. Clients are built and the environment is checked once, at
 * init; the work is {@link handleIngestBatch}.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { ENV, METRICS } from '../shared/contract';
import { configFromEnv, guardSource, requireEnv, wakeReconciler } from '../shared/runtime';
import { ingestBudget } from './admission';
import { handleIngestBatch } from './ingest';

const logger = new Logger({ serviceName: 'edgeban-ingest' });
const metrics = new Metrics({ namespace: METRICS.namespace, serviceName: 'edgeban-ingest' });

const tableName = requireEnv(ENV.tableName);
const config = configFromEnv();
const queueUrl = requireEnv(ENV.reconcilerQueueUrl);
// Lambda sets the function's memory in MB; objects run at once as they fit in it.
// https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
const memoryMb = Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
const memoryBudget = Number.isFinite(memoryMb) && memoryMb > 0 ? ingestBudget(memoryMb) : undefined;

const s3 = new S3Client({});
const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
const sqs = new SQSClient({});
const currentGuard = guardSource(config, (err) =>
  logger.warn('CloudFront ranges not refreshed; using the cached or shipped ones', {
    error: String(err),
  }),
);

/** Handles one SQS batch; the records that failed are retried by SQS. */
export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  // One reconciler message per batch is enough: it reads every active block.
  let changed = false;
  try {
    const res = await handleIngestBatch(
      {
        s3,
        ddb,
        tableName,
        config,
        guard: await currentGuard(),
        now: Date.now,
        notifyReconciler: async () => {
          changed = true;
        },
        logger,
        metrics,
        ...(memoryBudget === undefined ? {} : { memoryBudget }),
      },
      event,
    );
    if (changed) {
      await wakeReconciler(sqs, queueUrl, 'ingest', (err) =>
        logger.error('could not notify the reconciler', { error: String(err) }),
      );
    }
    return res;
  } finally {
    metrics.publishStoredMetrics();
  }
}
