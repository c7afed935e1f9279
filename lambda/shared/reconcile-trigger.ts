/**
 * How anything asks the reconciler to run: one message on its SQS FIFO
 * queue, in one message group, so runs happen one at a time by design
 * (never by reserved concurrency, which a new account cannot grant).
 *
 * Coalescing: an attack that changes blocks every second must not start a
 * run every second. Ingest's messages carry a deduplication id per
 * {@link RECONCILE_TRIGGER.coalesceSeconds} bucket of time, and the queue
 * delays every message by that same time. The first message of bucket k
 * is sent at or after the bucket's start, so it becomes visible at or
 * after the bucket's end; every later change of bucket k was written
 * before then, so the run that message starts reads it. A change in
 * bucket k+1 has a new id and its own message. Every change thus reaches
 * WAF within two buckets (plus the run), and ingest starts at most one
 * run per bucket.
 *
 * - Messages with the same deduplication id within 5 minutes are accepted
 *   but not delivered: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-key-terms.html
 * - FIFO queues take a delay per queue only, never per message:
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html
 * - Lambda supports no batching window on FIFO sources:
 *   https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
 *
 * Plain data, no AWS SDK: the ingest Lambda, the operator CLI, the local
 * pipeline and the CDK app all read it.
 */

export const RECONCILE_TRIGGER = {
  /** The one message group every trigger goes through. */
  groupId: 'edgeban-reconcile',
  /** Width of a coalescing bucket, and the queue's delivery delay, in seconds. */
  coalesceSeconds: 5,
} as const;

/** Who asked for a run. */
export type ReconcileTriggerSource = 'ingest' | 'realtime' | 'cli' | 'widget' | 'schedule';

/** The fields of an SQS `SendMessage` that asks for a run. */
export interface ReconcileTriggerMessage {
  readonly MessageBody: string;
  readonly MessageGroupId: string;
  readonly MessageDeduplicationId: string;
}

/**
 * The message ingest (or the real-time source) sends after a batch changed blocks: deduplicated per
 * coalescing bucket of `nowMs` (its clock is the Lambda's, which AWS keeps
 * in sync). The queue must delay messages by at least `bucketMs`.
 * @param bucketMs bucket width; the deployed queue's delay is the default
 */
export function coalescedTrigger(
  source: ReconcileTriggerSource,
  nowMs: number,
  bucketMs: number = RECONCILE_TRIGGER.coalesceSeconds * 1000,
): ReconcileTriggerMessage {
  const bucket = Math.floor(nowMs / bucketMs);
  return {
    MessageBody: JSON.stringify({ source, at: new Date(nowMs).toISOString() }),
    MessageGroupId: RECONCILE_TRIGGER.groupId,
    MessageDeduplicationId: `bucket-${bucket}`,
  };
}

/**
 * A message never deduplicated against another: for a person's command,
 * whose machine's clock may disagree with AWS's (a skewed bucket id could
 * match a bucket whose run has already gone).
 * @param id unique per command, e.g. a random UUID
 */
export function uniqueTrigger(
  source: ReconcileTriggerSource,
  nowMs: number,
  id: string,
): ReconcileTriggerMessage {
  return {
    MessageBody: JSON.stringify({ source, at: new Date(nowMs).toISOString() }),
    MessageGroupId: RECONCILE_TRIGGER.groupId,
    MessageDeduplicationId: `${source}-${id}`,
  };
}
