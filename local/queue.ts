/**
 * An in-process queue with the SQS semantics the pipeline relies on, and
 * a consumer that invokes a handler the way Lambda's SQS event source
 * mapping does: batches of up to 10 records shaped exactly as `SQSEvent`,
 * partial batch failures (`batchItemFailures`), redelivery of failed
 * messages after a visibility timeout, a dead-letter list after
 * `maxReceiveCount` receives, and at-least-once delivery (optional
 * duplicates, for tests).
 *
 * A FIFO queue (`fifo: true`, a name ending in `.fifo`) plays what the
 * reconciler's queue relies on: messages of one group are delivered one
 * batch at a time and in order (a failed message comes back at the head of
 * its group, which waits for it), a message whose deduplication id was
 * sent within the deduplication interval is accepted but not delivered,
 * and a queue-level delivery delay (FIFO queues have no per-message delay).
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-key-terms.html
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
  /**
   * A FIFO queue: `send` takes a message group and a deduplication id.
   * @default false
   */
  readonly fifo?: boolean;
  /**
   * FIFO only: deduplication ids are the SHA-256 of the body when a send
   * gives none, as SQS's `ContentBasedDeduplication`.
   * @default false
   */
  readonly contentBasedDeduplication?: boolean;
  /**
   * FIFO only: how long a deduplication id is remembered, on the queue's clock.
   * @default 300000 (SQS's 5 minutes)
   */
  readonly deduplicationIntervalMs?: number;
  /**
   * Every message stays invisible this long after `send`, in real
   * milliseconds (SQS `DelaySeconds` on the queue).
   * @default 0
   */
  readonly deliveryDelayMs?: number;
}

/** What a FIFO `send` carries besides the body. */
export interface SendOptions {
  /** FIFO: the message group (required). */
  readonly groupId?: string;
  /** FIFO: the deduplication id (required unless content-based deduplication). */
  readonly deduplicationId?: string;
}

/** Options of {@link LocalQueue.subscribe}, as an event source mapping sets them. */
export interface ConsumerOptions {
  /**
   * Records per invocation (SQS allows 1 to 10 for a standard queue here).
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * Invocations at once (Lambda concurrency). A FIFO queue runs each message
   * group one batch at a time whatever this is.
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
  /** Order of `send`: FIFO groups deliver by it. */
  readonly sequence: number;
  /** FIFO: the message group and deduplication id. */
  readonly groupId?: string;
  readonly deduplicationId?: string;
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
  /** FIFO sends accepted but not delivered: their deduplication id was seen within the interval. */
  readonly deduplicated: number;
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
  private readonly fifo: boolean;
  private readonly contentBasedDeduplication: boolean;
  private readonly deduplicationIntervalMs: number;
  private readonly deliveryDelayMs: number;
  /** FIFO: deduplication id → the message it named and when it was sent (queue clock). */
  private readonly deduplication = new Map<string, { messageId: string; at: number }>();
  /** FIFO: groups with a message in flight or waiting to be redelivered. */
  private readonly busyGroups = new Map<string, number>();
  private sequence = 0;
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
    deduplicated: 0,
  };

  constructor(options: LocalQueueOptions) {
    const visibility = options.visibilityTimeoutMs ?? 30_000;
    const maxReceive = options.maxReceiveCount ?? 5;
    const duplicates = options.duplicates ?? 0;
    const fifo = options.fifo ?? false;
    const interval = options.deduplicationIntervalMs ?? 300_000;
    const delay = options.deliveryDelayMs ?? 0;
    const base = fifo ? options.name.replace(/\.fifo$/, '') : options.name;
    if (fifo && !options.name.endsWith('.fifo')) {
      throw new QueueError(`a FIFO queue name must end in .fifo, got ${options.name}`);
    }
    if (!/^[A-Za-z0-9_-]{1,75}$/.test(base) || options.name.length > 80) {
      throw new QueueError(`queue name must be 1 to 80 of [A-Za-z0-9_-], got ${options.name}`);
    }
    if (fifo && duplicates > 0) {
      throw new QueueError(
        `a FIFO queue delivers each message once: duplicates must be 0, got ${duplicates}`,
      );
    }
    if (!fifo && options.contentBasedDeduplication !== undefined) {
      throw new QueueError('contentBasedDeduplication is for FIFO queues only');
    }
    if (!Number.isFinite(interval) || interval < 0) {
      throw new QueueError(`deduplicationIntervalMs must be >= 0, got ${interval}`);
    }
    if (!Number.isFinite(delay) || delay < 0) {
      throw new QueueError(`deliveryDelayMs must be >= 0, got ${delay}`);
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
    this.fifo = fifo;
    this.contentBasedDeduplication = options.contentBasedDeduplication ?? false;
    this.deduplicationIntervalMs = interval;
    this.deliveryDelayMs = delay;
  }

  /**
   * Enqueues a message (and its duplicates, when configured). On a FIFO
   * queue a deduplication id seen within the interval is accepted and not
   * delivered, as SQS does.
   * @returns the message id (on a deduplicated send, the first message's)
   * @throws QueueError when the queue is stopped, or FIFO fields are missing or misplaced
   */
  send(body: string, options: SendOptions = {}): string {
    if (this.stopped) throw new QueueError('queue is stopped');
    const fifo = this.fifoFields(body, options);
    const sentAt = this.clock.now();
    if (fifo !== undefined) {
      for (const [id, seen] of this.deduplication) {
        if (sentAt - seen.at >= this.deduplicationIntervalMs) this.deduplication.delete(id);
      }
      const seen = this.deduplication.get(fifo.deduplicationId);
      if (seen !== undefined) {
        this.counters.deduplicated++;
        return seen.messageId;
      }
    }
    const messageId = randomUUID();
    if (fifo !== undefined) this.deduplication.set(fifo.deduplicationId, { messageId, at: sentAt });
    this.counters.sent++;
    for (let i = 0; i <= this.duplicates; i++) {
      const m: QueuedMessage = {
        messageId,
        body,
        sequence: ++this.sequence,
        ...fifo,
        sentAt,
        receiveCount: 0,
        firstReceiveAt: null,
      };
      if (this.deliveryDelayMs === 0) this.enqueue(m);
      else this.later(this.deliveryDelayMs, () => this.enqueue(m));
    }
    this.schedulePump();
    return messageId;
  }

  /** Checks the FIFO fields of a send and fills in a content-based deduplication id. */
  private fifoFields(
    body: string,
    options: SendOptions,
  ): { groupId: string; deduplicationId: string } | undefined {
    if (!this.fifo) {
      if (options.groupId !== undefined || options.deduplicationId !== undefined) {
        throw new QueueError('groupId and deduplicationId are for FIFO queues only');
      }
      return undefined;
    }
    const { groupId } = options;
    if (groupId === undefined || !/^[\x21-\x7e]{1,128}$/.test(groupId)) {
      throw new QueueError(
        `a FIFO send needs a groupId of 1 to 128 printable characters, got ${groupId}`,
      );
    }
    let deduplicationId = options.deduplicationId;
    if (deduplicationId === undefined && this.contentBasedDeduplication) {
      deduplicationId = createHash('sha256').update(body).digest('hex');
    }
    if (deduplicationId === undefined || !/^[\x21-\x7e]{1,128}$/.test(deduplicationId)) {
      throw new QueueError(
        `a FIFO send needs a deduplicationId of 1 to 128 printable characters (or content-based deduplication), got ${deduplicationId}`,
      );
    }
    return { groupId, deduplicationId };
  }

  /** Puts a message among the ready ones: at the end, or on a FIFO queue back in send order. */
  private enqueue(m: QueuedMessage): void {
    let i = this.ready.length;
    // A standard queue redelivers after later messages; a FIFO group keeps its order.
    while (this.fifo && i > 0 && this.ready[i - 1]!.sequence > m.sequence) i--;
    this.ready.splice(i, 0, m);
    this.schedulePump();
    this.checkIdle();
  }

  /** Runs `fn` after `ms` real milliseconds, counted in `depth` until then. */
  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.stopped) return;
      fn();
    }, ms);
    this.timers.add(timer);
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
        if (ids.has(m.messageId) || this.groupBusy(m, batch)) {
          i++;
          continue;
        }
        ids.add(m.messageId);
        batch.push(m);
        this.ready.splice(i, 1);
      }
      if (batch.length === 0) break;
      for (const m of batch) this.holdGroup(m, 1);
      this.running++;
      void this.invoke(handler, batch);
    }
  }

  /**
   * FIFO: whether `m` must wait: its group has a message in flight or
   * waiting to be redelivered, or an earlier message of its group is not in
   * this batch (order within a group).
   */
  private groupBusy(m: QueuedMessage, batch: readonly QueuedMessage[]): boolean {
    if (m.groupId === undefined) return false;
    if ((this.busyGroups.get(m.groupId) ?? 0) > 0) return true;
    const first = this.ready.find((x) => x.groupId === m.groupId);
    return first !== m && !batch.includes(first!);
  }

  private holdGroup(m: QueuedMessage, delta: number): void {
    if (m.groupId === undefined) return;
    const n = (this.busyGroups.get(m.groupId) ?? 0) + delta;
    if (n <= 0) this.busyGroups.delete(m.groupId);
    else this.busyGroups.set(m.groupId, n);
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
        ...(m.groupId === undefined
          ? {}
          : {
              MessageGroupId: m.groupId,
              MessageDeduplicationId: m.deduplicationId,
              SequenceNumber: String(m.sequence).padStart(20, '0'),
            }),
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
      else this.holdGroup(m, -1);
    }
    this.running--;
    this.schedulePump();
    this.checkIdle();
  }

  private fail(m: QueuedMessage): void {
    this.counters.failed++;
    if (this.stopped) {
      this.holdGroup(m, -1);
      return;
    }
    if (m.receiveCount >= this.maxReceiveCount) {
      this.holdGroup(m, -1);
      this.dead.push(m);
      this.counters.deadLettered++;
      return;
    }
    // A FIFO group waits for its failed message: it stays held until redelivery.
    this.later(this.visibilityTimeoutMs, () => {
      this.counters.redelivered++;
      this.holdGroup(m, -1);
      this.enqueue(m);
    });
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
