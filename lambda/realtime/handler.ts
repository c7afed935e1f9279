/**
 * Real-time Lambda: a batch of CloudFront real-time log records from the
 * Kinesis event source mapping in, partial batch failures out. Clients are
 * built and the environment is checked once, at init; the work is
 * {@link handleRealtimeBatch}. A batch that changed blocks sends one message
 * to the reconciler queue, as the ingest Lambda does, so the decision
 * reaches WAF at once rather than on the next minute's schedule.
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { METRIC_SERVICES } from '../shared/contract';
import { counterLambda } from '../shared/counter-lambda';
import { handleRealtimeBatch } from './consume';

const runtime = counterLambda(METRIC_SERVICES.realtime, 'realtime');

/** Handles one batch; Lambda retries from the first record reported failed. */
export async function handler(event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
  return runtime.run((deps) => handleRealtimeBatch(deps, event));
}
