/**
 * Real-time Lambda: a batch of CloudFront real-time log records from the
 * Kinesis event source mapping in, partial batch failures out. Clients are
 * built and the environment is checked once, at init; the work is
 * {@link handleRealtimeBatch}. A batch that changed blocks sends one message
 * to the reconciler queue, as the ingest Lambda does, so the decision
 * reaches WAF at once rather than on the next minute's schedule.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { ENV, METRIC_SERVICES, METRICS } from '../shared/contract';
import { configFromEnv, guardSource, requireEnv, wakeReconciler } from '../shared/runtime';
import { handleRealtimeBatch } from './consume';

const logger = new Logger({ serviceName: METRIC_SERVICES.realtime });
const metrics = new Metrics({
  namespace: METRICS.namespace,
  serviceName: METRIC_SERVICES.realtime,
});

const tableName = requireEnv(ENV.tableName);
const config = configFromEnv();
const queueUrl = requireEnv(ENV.reconcilerQueueUrl);

const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
const sqs = new SQSClient({});
const currentGuard = guardSource(config, (err) =>
  logger.warn('CloudFront ranges not refreshed; using the cached or shipped ones', {
    error: String(err),
  }),
);

/** Handles one batch; Lambda retries from the first record reported failed. */
export async function handler(event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
  let changed = false;
  try {
    const res = await handleRealtimeBatch(
      {
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
      },
      event,
    );
    if (changed) {
      await wakeReconciler(sqs, queueUrl, 'realtime', (err) =>
        logger.error('could not notify the reconciler', { error: String(err) }),
      );
    }
    return res;
  } finally {
    metrics.publishStoredMetrics();
  }
}
