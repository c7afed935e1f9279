import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import { Engine } from '../../lambda/core/engine';
import { realtimeFields } from '../../lambda/core/formats/realtime';
import { guardFor } from '../../lambda/core/guard';
import { readShardLedger } from '../../lambda/state/shards';
import { SimulatedClock } from '../../local/clock';
import { type LocalPipeline, type PipelineOptions, startPipeline } from '../../local/pipeline';
import { realtimeRecords } from '../../local/realtime-records';
import { cloudFrontLog, type Hit } from '../../local/scenario';
import { burst, MINUTE, T0 } from './env';

const started: LocalPipeline[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop()));
});

const RAW = {
  rules: [{ name: 'flood', threshold: 100, window: '5m' }],
  block: { duration: '10m', factor: 2, maxDuration: '1d', forgetAfter: '1d' },
  realtime: { distributionIds: ['E2QWRUHAPOMQZL'] },
};
const config = parseConfig(RAW);
const FIELDS = realtimeFields(config);

async function pipelineAt(
  startMs: number,
  extra: Partial<PipelineOptions> = {},
): Promise<LocalPipeline> {
  const pipeline = await startPipeline({
    config,
    clock: new SimulatedClock(startMs),
    sleep: async () => {},
    visibilityTimeoutMs: 10,
    ...extra,
  });
  started.push(pipeline);
  return pipeline;
}

function minutes(ip: string, from: number, to: number, perMinute: number): Hit[] {
  const out: Hit[] = [];
  for (let m = from; m < to; m++) out.push(...burst(ip, m, perMinute));
  return out;
}

async function put(pipeline: LocalPipeline, records: readonly string[]): Promise<void> {
  const kinesis = pipeline.cloud.kinesis;
  if (kinesis === undefined) throw new Error('no real-time source');
  await kinesis.put(records);
}

/** Records committed over every shard's ledger. */
async function committed(
  pipeline: LocalPipeline,
): Promise<{ records: number; duplicates: number }> {
  const kinesis = pipeline.cloud.kinesis!;
  const shards = await kinesis.client.send(
    new (await import('@aws-sdk/client-kinesis')).ListShardsCommand({
      StreamName: kinesis.streamName,
    }),
  );
  let records = 0;
  let duplicates = 0;
  for (const s of shards.Shards ?? []) {
    const l = await readShardLedger(
      pipeline.ddb,
      pipeline.tableName,
      kinesis.streamName,
      s.ShardId ?? '',
    );
    records += l.totals.records;
    duplicates += l.totals.duplicates;
  }
  return { records, duplicates };
}

describe('the real-time source on the local pipeline', () => {
  it('puts an attack sent as Kinesis records into the IP set', async () => {
    const pipeline = await pipelineAt(T0 + 5 * MINUTE);
    await put(
      pipeline,
      realtimeRecords(
        [
          ...minutes('192.0.2.7', 0, 5, 30),
          ...minutes('2001:db8:1::5', 0, 5, 30),
          ...minutes('198.51.100.9', 0, 5, 10),
        ],
        FIELDS,
      ),
    );
    await pipeline.settle();
    expect(pipeline.wafAddresses()).toEqual({ IPV4: ['192.0.2.7/32'], IPV6: ['2001:db8:1::/64'] });
    const runs = pipeline.runs.filter((r) => r.trigger === 'message');
    // The decision reached the reconciler through the queue, not the schedule.
    expect(runs.length).toBeGreaterThan(0);
  });

  it('counts duplicated records and redelivered batches once', async () => {
    const pipeline = await pipelineAt(T0 + 5 * MINUTE, {
      realtime: { redeliveries: 2, batchSize: 38 },
    });
    const at100 = realtimeRecords(minutes('192.0.2.20', 0, 5, 20), FIELDS, 'a');
    const at101 = realtimeRecords(
      [...minutes('192.0.2.21', 0, 5, 20), ...burst('192.0.2.21', 4, 1)],
      FIELDS,
      'b',
    );
    // Each record twice: CloudFront's producer retries write a record again under a new sequence number.
    const records = [...at100, ...at101].flatMap((r) => [r, r]);
    await put(pipeline, records);
    await pipeline.settle();
    expect(pipeline.wafAddresses().IPV4).toEqual(['192.0.2.21/32']);
    const decisions = await pipeline.decisions();
    expect(decisions.map((d) => [d.key, d.peak])).toEqual([['192.0.2.21', 101]]);
    // Duplicates are dropped inside a batch; the batch size (38, even) keeps every pair together.
    expect(await committed(pipeline)).toEqual({ records: 402, duplicates: 201 });
    expect(pipeline.poller!.invocations).toBeGreaterThanOrEqual(3 * Math.ceil(402 / 38));
  });

  it('loses and doubles nothing when a shard splits mid-attack', async () => {
    const pipeline = await pipelineAt(T0 + 5 * MINUTE, { realtime: { shards: 1, batchSize: 50 } });
    const hits = [...minutes('192.0.2.30', 0, 5, 21), ...minutes('192.0.2.31', 0, 5, 20)];
    const records = realtimeRecords(hits, FIELDS);
    const half = Math.floor(records.length / 2);
    await put(pipeline, records.slice(0, half));
    await pipeline.poller!.poll();
    await pipeline.cloud.kinesis!.split('shardId-000000000000');
    await put(pipeline, records.slice(half));
    expect((await pipeline.cloud.kinesis!.openShards()).length).toBe(2);
    await pipeline.settle();
    const decisions = await pipeline.decisions();
    expect(decisions.map((d) => [d.key, d.peak])).toEqual([['192.0.2.30', 105]]);
    expect(await committed(pipeline)).toEqual({ records: records.length, duplicates: 0 });
    expect(pipeline.wafAddresses().IPV4).toEqual(['192.0.2.30/32']);
  });

  it('equals replay when real-time and standard logs feed different distributions in one run', async () => {
    const pipeline = await pipelineAt(T0 + 6 * MINUTE);
    // 192.0.2.40 is over the threshold only with both distributions' requests together.
    const realtimeHits = [
      ...minutes('192.0.2.40', 0, 3, 20),
      ...minutes('198.51.100.5', 1, 5, 30),
      ...minutes('2001:db8:9::1', 0, 4, 20),
    ];
    const standardHits = [
      ...minutes('192.0.2.40', 2, 5, 20),
      ...minutes('203.0.113.9', 0, 5, 18),
      ...minutes('2001:db8:9::2', 0, 4, 8),
    ];
    await put(pipeline, realtimeHits.length > 0 ? realtimeRecords(realtimeHits, FIELDS) : []);
    await pipeline.upload(
      'cloudfront/E1STANDARD0001.2024-05-01-10.0001.gz',
      gzipSync(cloudFrontLog([...standardHits].sort((a, b) => a.at - b.at))),
    );
    await pipeline.settle();

    // Replay over the same requests, all as standard logs.
    const engine = new Engine(config, { guard: guardFor(config.allowlist) });
    const all = [...realtimeHits, ...standardHits].sort((a, b) => a.at - b.at);
    const { Readable } = await import('node:stream');
    await engine.scan(Readable.from([Buffer.from(cloudFrontLog(all))]));
    const replay = engine.decisions().map((d) => [d.key, d.rule, d.peak, d.firstExceeded]);
    const live = (await pipeline.decisions()).map((d) => [d.key, d.rule, d.peak, d.firstExceeded]);
    expect(live).toEqual(replay);
    expect(replay.map((d) => d[0]).sort()).toEqual([
      '192.0.2.40',
      '198.51.100.5',
      '2001:db8:9::/64',
    ]);
    expect(pipeline.wafAddresses()).toEqual({
      IPV4: ['192.0.2.40/32', '198.51.100.5/32'],
      IPV6: ['2001:db8:9::/64'],
    });
  });
});
