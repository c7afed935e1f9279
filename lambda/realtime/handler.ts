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
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { parseConfig } from '../core/config';
import { Guard } from '../core/guard';
import { ENV, METRIC_SERVICES, METRICS } from '../shared/contract';
import { type CloudFrontRangeSet, CloudFrontRanges } from '../state/ranges';
import { handleRealtimeBatch } from './consume';

const logger = new Logger({ serviceName: METRIC_SERVICES.realtime });
const metrics = new Metrics({
  namespace: METRICS.namespace,
  serviceName: METRIC_SERVICES.realtime,
});

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

const tableName = env(ENV.tableName);
const config = (() => {
  try {
    return parseConfig(env(ENV.config));
  } catch (err) {
    throw new Error(`environment variable ${ENV.config}: ${(err as Error).message}`);
  }
})();
const queueUrl = env(ENV.reconcilerQueueUrl);

const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
const sqs = new SQSClient({});
const ranges = new CloudFrontRanges({
  onError: (err) =>
    logger.warn('CloudFront ranges not refreshed; using the cached or shipped ones', {
      error: String(err),
    }),
});

let guard: { set: CloudFrontRangeSet; guard: Guard } | null = null;

async function currentGuard(): Promise<Guard> {
  const set = await ranges.get();
  if (guard === null || guard.set !== set) {
    guard = {
      set,
      guard: new Guard({ allowlist: config.allowlist, cloudfrontRanges: set.ranges }),
    };
  }
  return guard.guard;
}

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
      try {
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: JSON.stringify({ source: 'realtime', at: new Date().toISOString() }),
          }),
        );
      } catch (err) {
        // The reconciler also runs every minute: a lost nudge only delays it.
        logger.error('could not notify the reconciler', { error: String(err) });
      }
    }
    return res;
  } finally {
    metrics.publishStoredMetrics();
  }
}
