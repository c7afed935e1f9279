/**
 * The Lambda event source mapping on the local cloud: polls every shard of
 * a Kinesis stream and hands the handler the event shape Lambda sends,
 * with the mapping's delivery rules (Lambda Developer Guide, "Using Lambda
 * with Kinesis Data Streams"):
 * - one batch in flight per shard (ParallelizationFactor 1), records in
 *   shard order;
 * - a parent shard is read to its end before its children (after a split
 *   or merge);
 * - a partial batch response (ReportBatchItemFailures) makes the next
 *   batch start at the lowest reported sequence number;
 * - a batch that throws is retried, split in two on each failure
 *   (BisectBatchOnFunctionError), and after `maxRetries` goes to the
 *   on-failure destination (`onDiscard`).
 * `redeliveries` re-sends every successful batch (at-least-once delivery).
 */
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  ListShardsCommand,
  type Shard,
} from '@aws-sdk/client-kinesis';
import type {
  KinesisStreamBatchResponse,
  KinesisStreamEvent,
  KinesisStreamRecord,
} from 'aws-lambda';
import { LOCAL_ACCOUNT_ID } from './waf-emulator';

/** Options of {@link KinesisPoller}. */
export interface KinesisPollerOptions {
  readonly client: KinesisClient;
  readonly streamName: string;
  readonly streamArn: string;
  readonly region: string;
  /** The function: the real-time handler's batch entry point. */
  readonly handler: (event: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse>;
  /** @default 100 */
  readonly batchSize?: number;
  /**
   * Real milliseconds between polls of the stream.
   * @default 100
   */
  readonly intervalMs?: number;
  /** @default 3 */
  readonly maxRetries?: number;
  /** @default 0 */
  readonly redeliveries?: number;
  /** Records given up on (the on-failure destination). */
  readonly onDiscard?: (records: KinesisStreamRecord[], reason: string) => void;
  readonly onError?: (err: unknown) => void;
}

interface ShardState {
  readonly id: string;
  readonly parents: string[];
  iterator: string | undefined;
  /** GetRecords said the shard is closed and read to its end. */
  ended: boolean;
  /** Fetched, not yet acknowledged. */
  pending: KinesisStreamRecord[];
  /** Closed and read to its end, every record acknowledged or discarded. */
  finished: boolean;
  /** Records per batch now (halved on each failure). */
  limit: number;
  attempts: number;
}

/** Polls a stream's shards and invokes the handler as the event source mapping does. */
export class KinesisPoller {
  private readonly shards = new Map<string, ShardState>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<number> = Promise.resolve(0);
  private stopped = false;
  /** Batches handed to the handler, retries and redeliveries included. */
  invocations = 0;
  /** Records given up on. */
  discarded = 0;

  constructor(private readonly options: KinesisPollerOptions) {}

  /** Polls every `intervalMs` until {@link stop}. */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      void this.poll().catch((err) => this.options.onError?.(err));
    }, this.options.intervalMs ?? 100);
  }

  /** One pass over every shard, after any pass in progress. @returns records handled */
  poll(): Promise<number> {
    const next = this.round.catch(() => 0).then(() => (this.stopped ? 0 : this.pass()));
    this.round = next;
    return next;
  }

  /** Polls until a pass finds nothing to do. */
  async drain(maxPasses = 1000): Promise<void> {
    for (let i = 0; i < maxPasses; i++) {
      const handled = await this.poll();
      const busy = [...this.shards.values()].some((s) => s.pending.length > 0);
      if (handled === 0 && !busy) return;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.round.catch(() => undefined);
  }

  private async pass(): Promise<number> {
    await this.discover();
    let handled = 0;
    for (const shard of this.shards.values()) {
      if (shard.finished) continue;
      if (!shard.parents.every((p) => this.shards.get(p)?.finished ?? true)) continue;
      handled += await this.pollShard(shard);
    }
    return handled;
  }

  private async discover(): Promise<void> {
    const shards: Shard[] = [];
    let token: string | undefined;
    do {
      const res = await this.options.client.send(
        new ListShardsCommand(
          token === undefined ? { StreamName: this.options.streamName } : { NextToken: token },
        ),
      );
      shards.push(...(res.Shards ?? []));
      token = res.NextToken;
    } while (token !== undefined);
    for (const s of shards) {
      const id = s.ShardId ?? '';
      if (this.shards.has(id)) continue;
      const parents = [s.ParentShardId, s.AdjacentParentShardId].filter(
        (p): p is string => p !== undefined,
      );
      this.shards.set(id, {
        id,
        parents,
        iterator: undefined,
        ended: false,
        pending: [],
        finished: false,
        limit: this.options.batchSize ?? 100,
        attempts: 0,
      });
    }
  }

  private async pollShard(shard: ShardState): Promise<number> {
    const { client, streamName } = this.options;
    const batchSize = this.options.batchSize ?? 100;
    if (shard.pending.length < batchSize && !shard.ended) {
      if (shard.iterator === undefined) {
        const it = await client.send(
          new GetShardIteratorCommand({
            StreamName: streamName,
            ShardId: shard.id,
            ShardIteratorType: 'TRIM_HORIZON',
          }),
        );
        shard.iterator = it.ShardIterator;
      }
      const res = await client.send(
        new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: batchSize }),
      );
      for (const r of res.Records ?? []) shard.pending.push(this.toEvent(shard.id, r));
      // No next iterator: a closed shard read to its end.
      shard.iterator = res.NextShardIterator ?? undefined;
      shard.ended = shard.iterator === undefined;
    }
    if (shard.pending.length === 0) {
      if (shard.ended) shard.finished = true;
      return 0;
    }
    const batch = shard.pending.slice(0, Math.min(shard.limit, batchSize));
    await this.invoke(shard, batch);
    return batch.length;
  }

  private async invoke(shard: ShardState, batch: KinesisStreamRecord[]): Promise<void> {
    this.invocations++;
    let response: KinesisStreamBatchResponse | undefined;
    try {
      response = (await this.options.handler({ Records: batch })) ?? undefined;
    } catch (err) {
      this.options.onError?.(err);
      shard.attempts++;
      if (shard.attempts > (this.options.maxRetries ?? 3)) {
        this.discard(shard, batch, `function error: ${String(err)}`);
        return;
      }
      // BisectBatchOnFunctionError: the next try takes the first half.
      shard.limit = Math.max(1, Math.ceil(batch.length / 2));
      return;
    }
    const failed = response?.batchItemFailures ?? [];
    if (failed.length > 0) {
      // Resume at the lowest reported record; everything before it is acknowledged.
      const lowest = failed
        .map((f) => f.itemIdentifier)
        .reduce((a, b) => (BigInt(a) < BigInt(b) ? a : b));
      const at = shard.pending.findIndex((r) => r.kinesis.sequenceNumber === lowest);
      shard.attempts++;
      if (at > 0) {
        shard.pending.splice(0, at);
        shard.attempts = 0;
      } else if (shard.attempts > (this.options.maxRetries ?? 3)) {
        this.discard(shard, batch, 'partial batch failures');
      }
      return;
    }
    for (let i = 0; i < (this.options.redeliveries ?? 0); i++) {
      this.invocations++;
      await this.options.handler({ Records: batch }).catch((err) => this.options.onError?.(err));
    }
    shard.pending.splice(0, batch.length);
    shard.attempts = 0;
    shard.limit = this.options.batchSize ?? 100;
  }

  private discard(shard: ShardState, batch: KinesisStreamRecord[], reason: string): void {
    this.discarded += batch.length;
    this.options.onDiscard?.(batch, reason);
    shard.pending.splice(0, batch.length);
    shard.attempts = 0;
    shard.limit = this.options.batchSize ?? 100;
  }

  private toEvent(
    shardId: string,
    r: {
      SequenceNumber?: string;
      Data?: Uint8Array;
      PartitionKey?: string;
      ApproximateArrivalTimestamp?: Date;
    },
  ): KinesisStreamRecord {
    const sequence = r.SequenceNumber ?? '';
    return {
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: r.PartitionKey ?? '',
        sequenceNumber: sequence,
        data: Buffer.from(r.Data ?? new Uint8Array()).toString('base64'),
        approximateArrivalTimestamp: (r.ApproximateArrivalTimestamp?.getTime() ?? 0) / 1000,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `${shardId}:${sequence}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: `arn:aws:iam::${LOCAL_ACCOUNT_ID}:role/edgeban-realtime`,
      awsRegion: this.options.region,
      eventSourceARN: this.options.streamArn,
    };
  }
}
