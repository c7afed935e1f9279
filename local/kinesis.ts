/**
 * Kinesis Data Streams on the local cloud: kinesalite (in memory) on
 * 127.0.0.1 and an SDK v3 client for it. The client must speak HTTP/1.1:
 * SDK v3's Kinesis client defaults to an HTTP/2 handler, which kinesalite
 * does not serve, so it gets a `NodeHttpHandler`. kinesalite has no
 * on-demand capacity mode, so local streams are provisioned.
 */
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
  SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import kinesalite from 'kinesalite';
import { closeServer, listenLoopback } from './loopback';
import { LOCAL_ACCOUNT_ID } from './waf-emulator';

/** Base error of this module. */
export class LocalKinesisError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalKinesisError';
  }
}

/** Options of {@link startLocalKinesis}. */
export interface LocalKinesisOptions {
  /** @default 'edgeban-realtime' */
  readonly streamName?: string;
  /** @default 1 */
  readonly shards?: number;
  /** @default 'us-east-1' */
  readonly region?: string;
}

/** A running kinesalite with one stream. */
export interface LocalKinesis {
  readonly endpoint: string;
  readonly client: KinesisClient;
  readonly streamName: string;
  readonly streamArn: string;
  readonly region: string;
  /**
   * Puts records as CloudFront does (PutRecords, a random partition key each).
   * @returns their sequence numbers and shards, in order
   */
  put(records: readonly (string | Buffer)[]): Promise<{ sequence: string; shardId: string }[]>;
  /** Splits an open shard at the middle of its hash key range and waits for the stream to be active. */
  split(shardId: string): Promise<void>;
  /** Open shards' ids. */
  openShards(): Promise<string[]>;
  close(): Promise<void>;
}

/** PutRecords takes at most 500 records a call (Kinesis API reference). */
const PUT_RECORDS_MAX = 500;

/** Builds a Kinesis client for a local endpoint: HTTP/1.1, local credentials. */
export function localKinesisClient(endpoint: string, region = 'us-east-1'): KinesisClient {
  return new KinesisClient({
    region,
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    requestHandler: new NodeHttpHandler({ connectionTimeout: 2_000, requestTimeout: 30_000 }),
  });
}

async function waitActive(client: KinesisClient, streamName: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const res = await client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    if (res.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new LocalKinesisError(`stream ${streamName} did not become active`);
}

let partition = 0;

/** Starts kinesalite on a free loopback port and creates a provisioned stream. */
export async function startLocalKinesis(options: LocalKinesisOptions = {}): Promise<LocalKinesis> {
  const streamName = options.streamName ?? 'edgeban-realtime';
  const region = options.region ?? 'us-east-1';
  const server = kinesalite({
    createStreamMs: 0,
    deleteStreamMs: 0,
    updateStreamMs: 0,
    shardLimit: 100,
  });
  const port = await listenLoopback(server, 0);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = localKinesisClient(endpoint, region);
  try {
    await client.send(
      new CreateStreamCommand({ StreamName: streamName, ShardCount: options.shards ?? 1 }),
    );
    await waitActive(client, streamName);
  } catch (err) {
    client.destroy();
    await closeServer(server);
    throw err;
  }
  const streamArn = `arn:aws:kinesis:${region}:${LOCAL_ACCOUNT_ID}:stream/${streamName}`;
  return {
    endpoint,
    client,
    streamName,
    streamArn,
    region,
    async put(records) {
      const out: { sequence: string; shardId: string }[] = [];
      for (let i = 0; i < records.length; i += PUT_RECORDS_MAX) {
        const slice = records.slice(i, i + PUT_RECORDS_MAX);
        const res = await client.send(
          new PutRecordsCommand({
            StreamName: streamName,
            Records: slice.map((r) => ({
              Data: typeof r === 'string' ? Buffer.from(r) : r,
              PartitionKey: `p${partition++}`,
            })),
          }),
        );
        if ((res.FailedRecordCount ?? 0) > 0) {
          throw new LocalKinesisError(`${res.FailedRecordCount} records were not put`);
        }
        for (const r of res.Records ?? []) {
          out.push({ sequence: r.SequenceNumber ?? '', shardId: r.ShardId ?? '' });
        }
      }
      return out;
    },
    async split(shardId) {
      const res = await client.send(new ListShardsCommand({ StreamName: streamName }));
      const shard = res.Shards?.find((s) => s.ShardId === shardId);
      if (shard?.HashKeyRange === undefined) throw new LocalKinesisError(`no shard ${shardId}`);
      const lo = BigInt(shard.HashKeyRange.StartingHashKey ?? '0');
      const hi = BigInt(shard.HashKeyRange.EndingHashKey ?? '0');
      await client.send(
        new SplitShardCommand({
          StreamName: streamName,
          ShardToSplit: shardId,
          NewStartingHashKey: ((lo + hi) / 2n + 1n).toString(),
        }),
      );
      await waitActive(client, streamName);
    },
    async openShards() {
      const res = await client.send(new ListShardsCommand({ StreamName: streamName }));
      return (res.Shards ?? [])
        .filter((s) => s.SequenceNumberRange?.EndingSequenceNumber === undefined)
        .map((s) => s.ShardId ?? '');
    },
    async close() {
      client.destroy();
      await closeServer(server);
    },
  };
}
