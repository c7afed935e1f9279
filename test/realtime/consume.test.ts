import { randomUUID } from 'node:crypto';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import { realtimeFields } from '../../lambda/core/formats/realtime';
import { guardFor } from '../../lambda/core/guard';
import {
  chunkId,
  handleRealtimeBatch,
  type RealtimeDeps,
  shardOf,
  streamName,
} from '../../lambda/realtime/consume';
import { readPairSeries } from '../../lambda/state/counts';
import { readPairState } from '../../lambda/state/pairs';
import { padSequence, readShardLedger } from '../../lambda/state/shards';
import { ensureTable } from '../../lambda/state/table';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { realtimeRecords } from '../../local/realtime-records';
import type { Hit } from '../../local/scenario';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
const MINUTE = 60_000;
const ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/edgeban-realtime';
const config = parseConfig({
  rules: [{ name: 'flood', threshold: 20, window: '5m' }],
  block: { duration: '10m' },
});
const fields = realtimeFields(config);

let cloud: LocalCloud;
let raw: DynamoDBDocumentClient;

beforeAll(async () => {
  cloud = await startLocalCloud();
  raw = DynamoDBDocumentClient.from(cloud.clients().dynamodb, {
    marshallOptions: { removeUndefinedValues: true },
  });
});
afterAll(async () => {
  await cloud.stop();
});

/** A fresh table per test. */
async function table(): Promise<string> {
  const name = `rt-${randomUUID().slice(0, 8)}`;
  await ensureTable(cloud.clients().dynamodb, name);
  return name;
}

function hits(ip: string, n: number, minute = 0): Hit[] {
  return Array.from({ length: n }, (_, i) => ({ ip, at: T0 + minute * MINUTE + i * 100 }));
}

/** Records as Lambda delivers them: shard and sequence numbers of our choosing. */
function kinesisRecords(
  data: readonly string[],
  shardId = 'shardId-000000000000',
  base = 1000n,
): KinesisStreamRecord[] {
  return data.map((d, i) => {
    const sequence = (49_000_000_000_000_000_000n * 10n ** 30n + base + BigInt(i) * 7n).toString();
    return {
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: `p${i}`,
        sequenceNumber: sequence,
        data: Buffer.from(d).toString('base64'),
        approximateArrivalTimestamp: T0 / 1000,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `${shardId}:${sequence}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::123456789012:role/r',
      awsRegion: 'us-east-1',
      eventSourceARN: ARN,
    };
  });
}

function deps(
  tableName: string,
  ddb = raw,
  extra: Partial<RealtimeDeps> = {},
): RealtimeDeps & { nudges: number } {
  const d = {
    ddb,
    tableName,
    config,
    guard: guardFor(config.allowlist),
    now: () => T0 + 6 * MINUTE,
    nudges: 0,
    notifyReconciler: async () => {
      d.nudges++;
    },
    ...extra,
  };
  return d;
}

/** A document client whose `n`-th send (1-based) throws after reaching DynamoDB or before. */
function crashingAt(n: number, after: boolean): DynamoDBDocumentClient {
  let calls = 0;
  return new Proxy(raw, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver);
      return async (command: Parameters<typeof raw.send>[0]) => {
        calls++;
        if (calls === n && !after) throw new Error(`crash before call ${n}`);
        const res = await target.send(command as never);
        if (calls === n && after) throw new Error(`crash after call ${n}`);
        return res;
      };
    },
  });
}

async function total(tableName: string, key: string): Promise<number> {
  const s = await readPairSeries(
    raw,
    tableName,
    'flood',
    key,
    Math.floor(T0 / MINUTE) - 10,
    Math.floor(T0 / MINUTE) + 20,
  );
  return s.counts.reduce((a, b) => a + b, 0);
}

const event = (records: KinesisStreamRecord[]): KinesisStreamEvent => ({ Records: records });

describe('handleRealtimeBatch', () => {
  it('counts a batch, decides a block and tells the reconciler', async () => {
    const name = await table();
    const d = deps(name);
    const res = await handleRealtimeBatch(
      d,
      event(kinesisRecords(realtimeRecords(hits('192.0.2.7', 21), fields))),
    );
    expect(res.batchItemFailures).toEqual([]);
    expect(await total(name, '192.0.2.7')).toBe(21);
    const state = await readPairState(raw, name, 'flood', '192.0.2.7');
    expect(state.state.peak).toBe(21);
    expect(state.state.blocks).toHaveLength(1);
    expect(d.nudges).toBe(1);
  });

  it('counts a redelivered batch and its bisected halves once', async () => {
    const name = await table();
    const records = kinesisRecords(realtimeRecords(hits('192.0.2.8', 20), fields));
    const d = deps(name);
    await handleRealtimeBatch(d, event(records));
    await handleRealtimeBatch(d, event(records));
    await handleRealtimeBatch(d, event(records.slice(0, 10)));
    await handleRealtimeBatch(d, event(records.slice(10)));
    expect(await total(name, '192.0.2.8')).toBe(20);
    // 20 is not over the threshold: a double count would have blocked.
    expect((await readPairState(raw, name, 'flood', '192.0.2.8')).state.blocks).toEqual([]);
    const ledger = await readShardLedger(raw, name, 'edgeban-realtime', 'shardId-000000000000');
    expect(ledger.totals.records).toBe(20);
  });

  it('drops records repeated under a new sequence number by their request id', async () => {
    const name = await table();
    const data = realtimeRecords(hits('192.0.2.9', 15), fields);
    // CloudFront's producer retry: the same records again, later in the shard.
    const records = kinesisRecords([...data, ...data.slice(3, 9)]);
    const d = deps(name);
    await handleRealtimeBatch(d, event(records));
    expect(await total(name, '192.0.2.9')).toBe(15);
    const ledger = await readShardLedger(raw, name, 'edgeban-realtime', 'shardId-000000000000');
    expect(ledger.totals).toMatchObject({ records: 21, duplicates: 6, rejected: 0 });
  });

  it('counts rejected records without failing the batch', async () => {
    const name = await table();
    const data = realtimeRecords(hits('192.0.2.10', 5), fields);
    const records = kinesisRecords([...data, 'garbage\n', `${data[0]!.trimEnd()}\textra\n`]);
    const res = await handleRealtimeBatch(deps(name), event(records));
    expect(res.batchItemFailures).toEqual([]);
    const ledger = await readShardLedger(raw, name, 'edgeban-realtime', 'shardId-000000000000');
    expect(ledger.totals).toMatchObject({ records: 7, rejected: 2 });
    expect(await total(name, '192.0.2.10')).toBe(5);
  });

  it('counts exactly once whatever DynamoDB call a crash hits, through bisected retries', async () => {
    // 9 requests in chunks of 4 over a threshold of 8: a crash lands in every step of a
    // multi-chunk batch, the last chunk's decision included.
    const name = await table();
    const small = parseConfig({ rules: [{ name: 'flood', threshold: 8, window: '5m' }] });
    const clean = { calls: 0 };
    const counting = new Proxy(raw, {
      get(target, prop, receiver) {
        if (prop !== 'send') return Reflect.get(target, prop, receiver);
        return (command: Parameters<typeof raw.send>[0]) => {
          clean.calls++;
          return target.send(command as never);
        };
      },
    });
    const shard = (i: number) => `shardId-${String(i).padStart(12, '0')}`;
    await handleRealtimeBatch(
      deps(name, counting, { chunkRecords: 4, config: small }),
      event(kinesisRecords(realtimeRecords(hits('198.51.100.1', 9), fields), shard(999))),
    );
    expect((await readPairState(raw, name, 'flood', '198.51.100.1')).state.blocks).toHaveLength(1);
    expect(clean.calls).toBeGreaterThan(20);
    let run = 0;
    for (const after of [false, true]) {
      for (let n = 1; n <= clean.calls; n++) {
        // Each crash point gets its own client and shard, so the runs share one table.
        run++;
        const ip = `192.0.2.${run % 250}`;
        const key = run > 250 ? `198.51.100.${run % 250}` : ip;
        const records = kinesisRecords(realtimeRecords(hits(key, 9), fields), shard(run));
        const first = await handleRealtimeBatch(
          deps(name, crashingAt(n, after), { chunkRecords: 4, config: small }),
          event(records),
        );
        // As the event source mapping: retry from the reported record, bisected, then whole.
        const from = first.batchItemFailures[0]?.itemIdentifier;
        const at = records.findIndex((r) => r.kinesis.sequenceNumber === from);
        const rest = from === undefined ? [] : records.slice(Math.max(0, at));
        const d = deps(name, raw, { chunkRecords: 4, config: small });
        await handleRealtimeBatch(d, event(rest.slice(0, Math.ceil(rest.length / 2))));
        await handleRealtimeBatch(d, event(records));
        const label = `crash ${after ? 'after' : 'before'} call ${n}`;
        expect(await total(name, key), label).toBe(9);
        const state = await readPairState(raw, name, 'flood', key);
        expect([state.state.peak, state.state.blocks.length], label).toEqual([9, 1]);
      }
    }
  }, 60_000);

  it('reports where the retry must start: the unfinished chunk, else the first uncommitted record', async () => {
    const records = kinesisRecords(realtimeRecords(hits('192.0.2.12', 9), fields));
    for (let n = 1; n <= 20; n++) {
      const name = await table();
      const res = await handleRealtimeBatch(
        deps(name, crashingAt(n, false), { chunkRecords: 3 }),
        event(records),
      );
      const ledger = await readShardLedger(raw, name, 'edgeban-realtime', 'shardId-000000000000');
      const committed = records.filter((r) => padSequence(r.kinesis.sequenceNumber) <= ledger.upTo);
      const expected =
        ledger.chunk !== null && !ledger.chunk.done
          ? ledger.chunk.first
          : records[committed.length]?.kinesis.sequenceNumber;
      expect(res.batchItemFailures, `crash before call ${n}`).toEqual(
        expected === undefined ? [] : [{ itemIdentifier: expected }],
      );
    }
  });

  it('keeps shards apart: the same sequence numbers on two shards both count', async () => {
    const name = await table();
    const data = realtimeRecords(hits('192.0.2.13', 8), fields);
    const records = [
      ...kinesisRecords(data.slice(0, 4), 'shardId-000000000001'),
      ...kinesisRecords(data.slice(4), 'shardId-000000000002'),
    ];
    await handleRealtimeBatch(deps(name), event(records));
    expect(await total(name, '192.0.2.13')).toBe(8);
  });
});

describe('ids', () => {
  it('reads stream names and shard ids, and names chunks by range', () => {
    expect(streamName(ARN)).toBe('edgeban-realtime');
    expect(shardOf('shardId-000000000006:4959')).toBe('shardId-000000000006');
    expect(() => streamName('arn:aws:sqs:us-east-1:1:q')).toThrow(/not a Kinesis stream ARN/);
    expect(chunkId('s', 'a', '1', '2')).not.toBe(chunkId('s', 'a', '1', '3'));
    expect(chunkId('s', 'a', '1', '2')).toMatch(/^[0-9a-f]{16}$/);
  });

  it('pads sequence numbers so that string order is numeric order', () => {
    expect(padSequence('9') < padSequence('10')).toBe(true);
    expect(() => padSequence('012')).toThrow(/not a Kinesis sequence number/);
  });
});
