/**
 * An in-process queue with the SQS semantics the pipeline relies on, and
 * a consumer that invokes a handler the way Lambda's SQS event source
 * mapping does: batches of up to 10 records shaped exactly as `SQSEvent`,
 * partial batch failures (`batchItemFailures`), redelivery of failed
 * messages after a visibility timeout, a dead-letter list after
 * `maxReceiveCount` receives, and at-least-once delivery (optional
 * duplicates, for tests).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { type Clock, realClock } from './clock';
import { LOCAL_ACCOUNT_ID } from './waf-emulator';

/** A Lambda-style SQS handler: a partial batch response, or nothing when all succeeded. */
export type SqsBatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;

/** Options of {@link LocalQueue}. */
export interface LocalQueueOptions {
  /** Queue name, used in the ARN. */
  readonly name: string;
  /**
   * How long a failed message stays invisible before it is delivered again,
   * in real milliseconds.
   * @default 30000
   */
  readonly visibilityTimeoutMs?: number;
  /**
   * Receives after which a message that still fails moves to the dead-letter list.
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * Extra deliveries of every message (at-least-once: the same messageId is
   * delivered again, possibly concurrently, after it succeeded).
   * @default 0
   */
  readonly duplicates?: number;
  /**
   * Clock of the `SentTimestamp` and `ApproximateFirstReceiveTimestamp` attributes.
   * @default - the real clock
   */
  readonly clock?: Clock;
  /** @default 'us-east-1' */
  readonly region?: string;
}

/** Options of {@link LocalQueue.subscribe}, as an event source mapping sets them. */
export interface ConsumerOptions {
  /**
   * Records per invocation (SQS allows 1 to 10 for a standard queue here).
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * Invocations at once (Lambda concurrency; 1 for a reserved concurrency of 1).
   * @default 1
   */
  readonly concurrency?: number;
  /** Told when an invocation throws (the whole batch is then retried). */
  readonly onError?: (err: unknown, event: SQSEvent) => void;
}

/** A message held by the queue. */
export interface QueuedMessage {
  readonly messageId: string;
  readonly body: string;
  /** Epoch ms of `send`, on the queue's clock. */
  readonly sentAt: number;
  /** Deliveries so far (of this copy). */
  receiveCount: number;
  /** Epoch ms of the first delivery, on the queue's clock. */
  firstReceiveAt: number | null;
}

/** Counters of a queue. */
export interface QueueStats {
  /** `send` calls. */
  readonly sent: number;
  /** Records delivered to the handler, redeliveries and duplicates included. */
  readonly delivered: number;
  /** Handler invocations. */
  readonly invocations: number;
  /** Records that failed (listed in `batchItemFailures`, or of a batch that threw). */
  readonly failed: number;
  /** Records redelivered after their visibility timeout. */
  readonly redelivered: number;
  /** Messages moved to the dead-letter list. */
  readonly deadLettered: number;
}

/** Base error of this module. */
export class QueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueError';
  }
}

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

/**
 * The queue. Send with {@link send}; attach one consumer with
 * {@link subscribe}; {@link drain} waits until nothing is left to deliver.
 *
 * @example
 * const queue = new LocalQueue({ name: 'ingest', visibilityTimeoutMs: 100 });
 * queue.subscribe((event) => handleIngestBatch(deps, event), { concurrency: 2 });
 * queue.send(JSON.stringify({ Records: [record] }));
 * await queue.drain();
 */
export class LocalQueue {
  /** ARN of the queue, as `eventSourceARN`. */
  readonly arn: string;
  private readonly region: string;
  private readonly visibilityTimeoutMs: number;
  private readonly maxReceiveCount: number;
  private readonly duplicates: number;
  private readonly clock: Clock;
  private readonly ready: QueuedMessage[] = [];
  private readonly inFlight = new Set<QueuedMessage>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly dead: QueuedMessage[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private handler: SqsBatchHandler | null = null;
  private consumer: Required<Omit<ConsumerOptions, 'onError'>> & Pick<ConsumerOptions, 'onError'> =
    { batchSize: 10, concurrency: 1 };
  private running = 0;
  private pumpScheduled = false;
  private stopped = false;
  private counters = {
    sent: 0,
    delivered: 0,
    invocations: 0,
    failed: 0,
    redelivered: 0,
    deadLettered: 0,
  };

  constructor(options: LocalQueueOptions) {
    const visibility = options.visibilityTimeoutMs ?? 30_000;
    const maxReceive = options.maxReceiveCount ?? 5;
    const duplicates = options.duplicates ?? 0;
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(options.name)) {
      throw new QueueError(`queue name must be 1 to 80 of [A-Za-z0-9_-], got ${options.name}`);
    }
    if (!Number.isFinite(visibility) || visibility < 0) {
      throw new QueueError(`visibilityTimeoutMs must be >= 0, got ${visibility}`);
    }
    if (!Number.isInteger(maxReceive) || maxReceive < 1) {
      throw new QueueError(`maxReceiveCount must be an integer >= 1, got ${maxReceive}`);
    }
    if (!Number.isInteger(duplicates) || duplicates < 0) {
      throw new QueueError(`duplicates must be an integer >= 0, got ${duplicates}`);
    }
    this.region = options.region ?? 'us-east-1';
    this.arn = `arn:aws:sqs:${this.region}:${LOCAL_ACCOUNT_ID}:${options.name}`;
    this.visibilityTimeoutMs = visibility;
    this.maxReceiveCount = maxReceive;
    this.duplicates = duplicates;
    this.clock = options.clock ?? realClock;
  }

  /**
   * Enqueues a message (and its duplicates, when configured).
   * @returns the message id
   */
  send(body: string): string {
    if (this.stopped) throw new QueueError('queue is stopped');
    const messageId = randomUUID();
    const sentAt = this.clock.now();
    this.counters.sent++;
    for (let i = 0; i <= this.duplicates; i++) {
      this.ready.push({ messageId, body, sentAt, receiveCount: 0, firstReceiveAt: null });
    }
    this.schedulePump();
    return messageId;
  }

  /**
   * Attaches the consumer (one per queue) and starts delivering.
   * @throws QueueError when a consumer is already attached or an option is out of range
   */
  subscribe(handler: SqsBatchHandler, options: ConsumerOptions = {}): void {
    if (this.handler !== null) throw new QueueError('queue already has a consumer');
    const batchSize = options.batchSize ?? 10;
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) {
      throw new QueueError(`batchSize must be an integer from 1 to 10, got ${batchSize}`);
    }
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new QueueError(`concurrency must be an integer >= 1, got ${concurrency}`);
    }
    this.handler = handler;
    this.consumer = { batchSize, concurrency, onError: options.onError };
    this.schedulePump();
  }

  /** Messages waiting, in flight, or waiting out a visibility timeout. */
  get depth(): number {
    return this.ready.length + this.inFlight.size + this.timers.size;
  }

  /** Messages that failed `maxReceiveCount` times, oldest first. */
  deadLetters(): readonly QueuedMessage[] {
    return [...this.dead];
  }

  stats(): QueueStats {
    return { ...this.counters };
  }

  /**
   * Resolves when nothing is waiting, in flight, or due for redelivery.
   * Needs a consumer when messages are waiting.
   */
  drain(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops delivering: pending redeliveries are cancelled, waiting messages
   * dropped, and `drain` resolves once the invocations in flight end.
   */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.ready.length = 0;
    this.checkIdle();
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.handler === null || this.stopped) return;
    this.pumpScheduled = true;
    // Messages sent in the same turn share a batch, as a poller would see them.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const handler = this.handler;
    if (handler === null || this.stopped) return;
    while (this.running < this.consumer.concurrency && this.ready.length > 0) {
      const batch: QueuedMessage[] = [];
      const ids = new Set<string>();
      // A batch never holds two copies of one message: item failures name messages by id.
      for (let i = 0; i < this.ready.length && batch.length < this.consumer.batchSize; ) {
        const m = this.ready[i]!;
        if (ids.has(m.messageId)) {
          i++;
          continue;
        }
        ids.add(m.messageId);
        batch.push(m);
        this.ready.splice(i, 1);
      }
      this.running++;
      void this.invoke(handler, batch);
    }
  }

  private record(m: QueuedMessage, now: number): SQSRecord {
    return {
      messageId: m.messageId,
      receiptHandle: Buffer.from(`${m.messageId}#${m.receiveCount}#${randomUUID()}`).toString(
        'base64',
      ),
      body: m.body,
      attributes: {
        ApproximateReceiveCount: String(m.receiveCount),
        SentTimestamp: String(m.sentAt),
        SenderId: LOCAL_ACCOUNT_ID,
        ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt ?? now),
      },
      messageAttributes: {},
      md5OfBody: md5(m.body),
      eventSource: 'aws:sqs',
      eventSourceARN: this.arn,
      awsRegion: this.region,
    };
  }

  private async invoke(handler: SqsBatchHandler, batch: QueuedMessage[]): Promise<void> {
    const now = this.clock.now();
    for (const m of batch) {
      m.receiveCount++;
      m.firstReceiveAt ??= now;
      this.inFlight.add(m);
    }
    const event: SQSEvent = { Records: batch.map((m) => this.record(m, now)) };
    this.counters.invocations++;
    this.counters.delivered += batch.length;
    let failed: Set<string>;
    try {
      const response = await handler(event);
      failed = failedIds(response, batch);
    } catch (err) {
      this.consumer.onError?.(err, event);
      failed = new Set(batch.map((m) => m.messageId));
    }
    for (const m of batch) {
      this.inFlight.delete(m);
      if (failed.has(m.messageId)) this.fail(m);
    }
    this.running--;
    this.schedulePump();
    this.checkIdle();
  }

  private fail(m: QueuedMessage): void {
    this.counters.failed++;
    if (this.stopped) return;
    if (m.receiveCount >= this.maxReceiveCount) {
      this.dead.push(m);
      this.counters.deadLettered++;
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.stopped) return;
      this.counters.redelivered++;
      this.ready.push(m);
      this.schedulePump();
      this.checkIdle();
    }, this.visibilityTimeoutMs);
    this.timers.add(timer);
  }

  private checkIdle(): void {
    if (this.depth !== 0 && !(this.stopped && this.inFlight.size === 0)) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

/**
 * The messages a handler's response marks failed. As Lambda does, a
 * response naming an id that is not in the batch (or an empty id) fails
 * the whole batch.
 */
function failedIds(
  response: SQSBatchResponse | undefined,
  batch: readonly QueuedMessage[],
): Set<string> {
  const all = new Set(batch.map((m) => m.messageId));
  const items = response?.batchItemFailures ?? [];
  const failed = new Set<string>();
  for (const item of items) {
    const id = item?.itemIdentifier;
    if (typeof id !== 'string' || !all.has(id)) return all;
    failed.add(id);
  }
  return failed;
}
