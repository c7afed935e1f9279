/**
 * The deployed path into ingest, S3 → EventBridge → input transformer →
 * SQS, played on the local pipeline: S3's "Object Created" event (the shape
 * of https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)
 * goes through the input transformer exactly as the synthesized stack
 * declares it (its InputPathsMap and InputTemplate, read from the
 * template), and the message that comes out is what the ingest queue gets.
 * Keys hold a space, `+`, `%` and non-ASCII characters, written in each way
 * S3 might put them in `detail.object.key` (AWS does not document which).
 */

import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import { SimulatedClock } from '../../local/clock';
import { type LocalPipeline, startPipeline } from '../../local/pipeline';
import { cloudFrontLog, type Hit } from '../../local/scenario';
import { synth } from '../infra/app';
import { burst, MINUTE, T0 } from './env';

interface InputTransformer {
  readonly InputPathsMap: Record<string, string>;
  readonly InputTemplate: string;
}

/** The input transformer of the rule that sends S3 object events to the ingest queue. */
function synthesizedTransformer(): InputTransformer {
  const { pipeline } = synth();
  const rules = Object.values(pipeline.findResources('AWS::Events::Rule')).filter((r) =>
    JSON.stringify(r.Properties?.EventPattern?.source ?? []).includes('aws.s3'),
  );
  expect(rules).toHaveLength(1);
  const targets = rules[0]?.Properties.Targets as { InputTransformer?: InputTransformer }[];
  const transformer = targets[0]?.InputTransformer;
  expect(typeof transformer?.InputTemplate).toBe('string');
  return transformer as InputTransformer;
}

/** A value of the event at an input path (`$.detail.object.key`). */
function atPath(event: unknown, path: string): unknown {
  let node = event;
  for (const part of path.replace(/^\$\.?/, '').split('.')) {
    node = (node as Record<string, unknown> | undefined)?.[part];
  }
  return node;
}

/**
 * Applies an input transformer the way EventBridge does
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html):
 * a `<name>` inside a JSON string takes the value's text, one outside a
 * string takes the value as JSON.
 */
function transform(t: InputTransformer, event: unknown): string {
  const values = new Map(Object.entries(t.InputPathsMap).map(([k, p]) => [k, atPath(event, p)]));
  let out = '';
  let inString = false;
  for (let i = 0; i < t.InputTemplate.length; i++) {
    const ch = t.InputTemplate[i] as string;
    if (ch === '<') {
      const end = t.InputTemplate.indexOf('>', i);
      const name = t.InputTemplate.slice(i + 1, end);
      if (end > i && values.has(name)) {
        const value = values.get(name);
        const json = JSON.stringify(value);
        out += inString && typeof value === 'string' ? json.slice(1, -1) : json;
        i = end;
        continue;
      }
    }
    if (ch === '"' && t.InputTemplate[i - 1] !== '\\') inString = !inString;
    out += ch;
  }
  return out;
}

/** S3's EventBridge event for a new object (ev-events.html, "Object created"). */
function objectCreated(bucket: string, key: string, etag: string, size: number): unknown {
  return {
    version: '0',
    id: '17793124-05d4-b198-2fde-7ededc63b103',
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '111122223333',
    time: '2024-05-01T10:05:00Z',
    region: 'us-east-1',
    resources: [`arn:aws:s3:::${bucket}`],
    detail: {
      version: '0',
      bucket: { name: bucket },
      object: { key, size, etag, sequencer: '00617F08299329D189' },
      'request-id': 'N4N7GDK58NMKJ12R',
      requester: '123456789012',
      'source-ip-address': '1.2.3.4',
      reason: 'PutObject',
    },
  };
}

const percent = (key: string) => key.split('/').map(encodeURIComponent).join('/');
const form = (key: string) => percent(key).replace(/%20/g, '+');

/** Object keys and the way `detail.object.key` carries each. */
const CASES: { key: string; carried: (key: string) => string; ip: string }[] = [
  { key: 'cf/E2EXAMPLE.2024-05-01-10.a b.gz', carried: (k) => k, ip: '192.0.2.11' },
  { key: 'cf/E2EXAMPLE.2024-05-01-10.a+b.gz', carried: (k) => k, ip: '192.0.2.12' },
  { key: 'cf/E2EXAMPLE.2024-05-01-10.100%.gz', carried: (k) => k, ip: '192.0.2.13' },
  { key: 'cf/E2EXAMPLE.2024-05-01-10.grüße 日本.gz', carried: (k) => k, ip: '192.0.2.14' },
  { key: 'cf/E2EXAMPLE.2024-05-01-10.b c+d%e ü.gz', carried: percent, ip: '192.0.2.15' },
  { key: 'cf/E2EXAMPLE.2024-05-01-10.f g+h%i ü.gz', carried: form, ip: '192.0.2.16' },
];

const SOURCE_BUCKET = 'edgeban-eventbridge-logs';

describe('the EventBridge path through the synthesized input transformer', () => {
  let pipeline: LocalPipeline;
  let transformer: InputTransformer;

  beforeAll(async () => {
    transformer = synthesizedTransformer();
    pipeline = await startPipeline({
      config: parseConfig({ rules: [{ name: 'flood', threshold: 100, window: '5m' }] }),
      clock: new SimulatedClock(T0 + 5 * MINUTE),
      sleep: async () => {},
      visibilityTimeoutMs: 10,
    });
    // A bucket the pipeline's S3 notifications do not cover: only the
    // EventBridge messages below reach ingest.
    await pipeline.cloud.clients().s3.send(new CreateBucketCommand({ Bucket: SOURCE_BUCKET }));
  }, 60_000);

  afterAll(async () => {
    await pipeline?.stop();
  });

  it('ingests every object whatever its key holds, once', async () => {
    const s3 = pipeline.cloud.clients().s3;
    for (const c of CASES) {
      const hits: Hit[] = [];
      for (let m = 0; m < 5; m++) hits.push(...burst(c.ip, m, 30));
      const body = gzipSync(cloudFrontLog(hits));
      const put = await s3.send(
        new PutObjectCommand({ Bucket: SOURCE_BUCKET, Key: c.key, Body: body }),
      );
      const etag = (put.ETag ?? '').replace(/"/g, '');
      const event = objectCreated(SOURCE_BUCKET, c.carried(c.key), etag, body.length);
      const message = transform(transformer, event);
      // The message is the S3 notification shape ingest reads, marked as EventBridge's.
      expect(JSON.parse(message).Records[0]).toMatchObject({
        eventSource: 'edgeban:eventbridge',
        eventName: 'ObjectCreated:PutObject',
        s3: { bucket: { name: SOURCE_BUCKET }, object: { key: c.carried(c.key), eTag: etag } },
      });
      pipeline.ingestQueue.send(message);
      // At-least-once: a second delivery of the same message counts nothing more.
      pipeline.ingestQueue.send(message);
    }
    await pipeline.settle();

    const ledger = await pipeline.ledger();
    expect(ledger.objects).toBe(CASES.length);
    expect(ledger.skipped).toBe(0);
    expect(ledger.requests).toBe(CASES.length * 150);
    expect(pipeline.wafAddresses().IPV4).toEqual(CASES.map((c) => `${c.ip}/32`));
  });
});
