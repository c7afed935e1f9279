/**
 * DynamoDB cost of the real-time source (not a test: run
 * `npx tsx test/realtime/measure-cost.ts [requests] [batch]`): requests
 * spread like the bench's (about 22,000 clients, 20 heavy hitters with 20%
 * of the requests, 2% POST /login, 3% 404s) arrive at 1M an hour and are
 * handed to the consumer in batches of `batch` records (the event source
 * mapping's one-second window at that rate gives about 280 a batch).
 * Prints item writes and reads per million requests.
 */
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamRecord } from 'aws-lambda';
import { parseConfig } from '../../lambda/core/config';
import { realtimeFields } from '../../lambda/core/formats/realtime';
import { guardFor } from '../../lambda/core/guard';
import { handleRealtimeBatch } from '../../lambda/realtime/consume';
import { ensureTable } from '../../lambda/state/table';
import { startLocalCloud } from '../../local/cloud';
import { realtimeRecords } from '../../local/realtime-records';
import { seededRandom } from '../../local/rng';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const requests = Number(process.argv[2] ?? 20_000);
const batch = Number(process.argv[3] ?? 280);
const config = parseConfig({
  rules: [
    { name: 'flood', threshold: 2000, window: '5m' },
    { name: 'login', threshold: 20, window: '5m', method: 'POST', path: '/login' },
    { name: 'probes', threshold: 50, window: '1m', status: ['4xx'] },
  ],
});
const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
const rng = seededRandom(3);
const hits = Array.from({ length: requests }, (_, i) => {
  const heavy = rng() < 0.2;
  const n = heavy ? Math.floor(rng() * 20) : Math.floor(rng() * 22_000);
  const ip = heavy
    ? `198.51.100.${n + 1}`
    : `10${Math.floor(n / 250) % 9}.${n % 250}.7.${(n >> 3) % 250}`;
  const r = rng();
  return {
    ip,
    at: T0 + Math.floor((i * 3_600_000) / 1_000_000),
    method: r < 0.02 ? 'POST' : 'GET',
    path: r < 0.02 ? '/login' : '/',
    status: r > 0.97 ? 404 : 200,
  };
});
const data = realtimeRecords(hits, realtimeFields(config));

const cloud = await startLocalCloud();
const raw = DynamoDBDocumentClient.from(cloud.clients().dynamodb, {
  marshallOptions: { removeUndefinedValues: true },
});
const counts = { writes: 0, reads: 0 };
const ddb = new Proxy(raw, {
  get(target, prop, receiver) {
    if (prop !== 'send') return Reflect.get(target, prop, receiver);
    return (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name;
      if (name === 'BatchWriteCommand') {
        const items = Object.values(command.input.RequestItems as Record<string, unknown[]>);
        counts.writes += items.reduce((n, list) => n + list.length, 0);
      } else if (['PutCommand', 'UpdateCommand', 'DeleteCommand'].includes(name)) counts.writes++;
      else counts.reads++;
      return target.send(command as never);
    };
  },
});
try {
  await ensureTable(cloud.clients().dynamodb, 'cost');
  const deps = {
    ddb,
    tableName: 'cost',
    config,
    guard: guardFor([]),
    now: () => T0 + 3_600_000,
    notifyReconciler: async () => {},
  };
  for (let i = 0; i < data.length; i += batch) {
    const records: KinesisStreamRecord[] = data.slice(i, i + batch).map((d, k) => {
      const sequence = String(49_000_000_000n + BigInt(i + k));
      return {
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: 'p',
          sequenceNumber: sequence,
          data: Buffer.from(d).toString('base64'),
          approximateArrivalTimestamp: 0,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `shardId-000000000000:${sequence}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::123456789012:role/r',
        awsRegion: 'us-east-1',
        eventSourceARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/s',
      };
    });
    await handleRealtimeBatch(deps, { Records: records });
  }
} finally {
  await cloud.stop();
}
const per = (n: number): string => Math.round((n * 1_000_000) / requests).toLocaleString('en-US');
console.log(
  `${requests} requests in batches of ${batch}, three rules: ${per(counts.writes)} item writes and ` +
    `${per(counts.reads)} reads per million requests`,
);
