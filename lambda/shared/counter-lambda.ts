/**
 * The init both counting Lambdas (ingest, real-time) share: Powertools
 * logger and metrics under the function's service, the environment checked
 * once, the DynamoDB and SQS clients, and the guard kept current. A batch
 * that changed blocks wakes the reconciler once, whatever it held.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Guard } from '../core/guard';
import type { EdgebanConfig } from '../core/types';
import { ENV, METRICS } from './contract';
import type { ReconcileTriggerSource } from './reconcile-trigger';
import { configFromEnv, guardSource, requireEnv, wakeReconciler } from './runtime';

/** What a counting handler passes on to its batch function. */
export interface CounterDeps {
  readonly ddb: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly config: EdgebanConfig;
  readonly guard: Guard;
  readonly now: () => number;
  readonly notifyReconciler: () => Promise<void>;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * Builds a counting Lambda's runtime at init (call it at module scope).
 * @param service the Powertools service name, the metrics' `service` dimension
 * @param source who wakes the reconciler, for its log
 * @returns `run`, which hands one batch function the dependencies, wakes
 *   the reconciler when the batch changed blocks and publishes the metrics
 */
export function counterLambda(service: string, source: ReconcileTriggerSource) {
  const logger = new Logger({ serviceName: service });
  const metrics = new Metrics({ namespace: METRICS.namespace, serviceName: service });
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

  async function run<R>(batch: (deps: CounterDeps) => Promise<R>): Promise<R> {
    // One reconciler message per batch is enough: it reads every active block.
    let changed = false;
    try {
      const res = await batch({
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
      });
      if (changed) {
        await wakeReconciler(sqs, queueUrl, source, (err) =>
          logger.error('could not notify the reconciler', { error: String(err) }),
        );
      }
      return res;
    } finally {
      metrics.publishStoredMetrics();
    }
  }

  return { logger, run };
}
