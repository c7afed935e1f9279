/**
 * Test fixtures for ingest: the local cloud (s3rver and dynalite on
 * 127.0.0.1, real SDK v3 clients), a fresh state table per test, and small
 * writers of CloudFront and ALB log lines.
 */
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { parseConfig } from '../../lambda/core/config';
import { guardFor } from '../../lambda/core/guard';
import type { EdgebanConfig } from '../../lambda/core/types';
import type { IngestDeps, ObjectRef } from '../../lambda/ingest/ingest';
import { ensureTable } from '../../lambda/state/table';
import { encodeEventKey, type LocalCloud, startLocalCloud } from '../../local/cloud';
import { CF_LEGACY_FIELDS } from '../fixtures/logs';

export const BUCKET = 'logs';

/** 2024-05-01T10:00:00Z as an epoch minute. */
export const T0 = Date.UTC(2024, 4, 1, 10, 0, 0) / 60000;

/** One request of a test log. */
export interface Hit {
  readonly ip: string;
  /** Epoch minute. */
  readonly minute: number;
  /** Second within the minute. @default 7 */
  readonly second?: number;
  readonly method?: string;
  readonly path?: string;
  readonly status?: number;
}

function iso(h: Hit): string {
  return new Date((h.minute * 60 + (h.second ?? 7)) * 1000).toISOString();
}

/** A 19-column file, as older distributions write it. */
const CF_FIELDS = CF_LEGACY_FIELDS.slice(0, 19);

/** A CloudFront legacy log (W3C, `#Fields` header, 19 columns). */
export function cloudFrontLog(hits: readonly Hit[]): string {
  const rows = hits.map((h) => {
    const t = iso(h);
    return [
      t.slice(0, 10),
      t.slice(11, 19),
      'FRA56-P1',
      '2048',
      h.ip,
      h.method ?? 'GET',
      'd1234abcd.cloudfront.net',
      h.path ?? '/',
      String(h.status ?? 200),
      '-',
      'Mozilla/5.0',
      '-',
      '-',
      'Miss',
      'r4nd0m==',
      'www.example.com',
      'https',
      '180',
      '0.012',
    ].join('\t');
  });
  return `#Version: 1.0\n#Fields: ${CF_FIELDS.join(' ')}\n${rows.join('\n')}\n`;
}

/** An ALB access log line per hit. */
export function albLog(hits: readonly Hit[]): string {
  return hits
    .map((h) => {
      const t = iso(h).replace('.000Z', '.123456Z');
      return (
        `https ${t} app/web/50dc6c495c0c9188 ${h.ip}:4711 10.0.1.5:80 0.001 0.002 0.000 ` +
        `${h.status ?? 200} ${h.status ?? 200} 120 512 ` +
        `"${h.method ?? 'GET'} https://www.example.com:443${h.path ?? '/'} HTTP/1.1" "curl/8.5.0" ` +
        'ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 ' +
        'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/73e2d6bc24d8a067 ' +
        `"Root=1-6630f2a0-0123456789abcdef01234567" "www.example.com" "-" 0 ${t} ` +
        '"forward" "-" "-" "10.0.1.5:80" "200" "-" "-"\n'
      );
    })
    .join('');
}

/** `n` hits of `ip` in `minute`. */
export function burst(ip: string, minute: number, n: number, extra: Partial<Hit> = {}): Hit[] {
  return Array.from({ length: n }, (_, i) => ({ ip, minute, second: i % 60, ...extra }));
}

/** A config with the given rules (raw `edgeban` form). */
export function config(raw: Record<string, unknown> = {}): EdgebanConfig {
  return parseConfig(raw);
}

/** The local cloud and a fresh table, as ingest needs them. */
export interface TestEnv {
  readonly cloud: LocalCloud;
  readonly ddb: DynamoDBDocumentClient;
  /** Fresh table name per call of {@link TestEnv.table}. */
  table(): Promise<string>;
  /** Uploads a log (gzipped unless `plain`) and returns its ref as an event would carry it. */
  put(key: string, text: string | Buffer, plain?: boolean): Promise<ObjectRef>;
  stop(): Promise<void>;
}

export async function startEnv(options: { proxies?: boolean } = {}): Promise<TestEnv> {
  const cloud = await startLocalCloud({
    buckets: [BUCKET],
    proxies: options.proxies === true ? ['s3', 'dynamodb'] : false,
  });
  const { s3, dynamodb } = cloud.clients();
  const ddb = DynamoDBDocumentClient.from(dynamodb, {
    marshallOptions: { removeUndefinedValues: true },
  });
  return {
    cloud,
    ddb,
    async table() {
      const name = `edgeban-${randomUUID().slice(0, 8)}`;
      await ensureTable(dynamodb, name);
      return name;
    },
    async put(key, text, plain = false) {
      const body = Buffer.isBuffer(text) ? text : plain ? Buffer.from(text) : gzipSync(text);
      const res = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
      return { bucket: BUCKET, key, etag: (res.ETag ?? '').replace(/"/g, ''), size: body.length };
    },
    stop: () => cloud.stop(),
  };
}

/** Ingest dependencies for a table, with a fixed clock and a notification counter. */
export function deps(
  env: TestEnv,
  tableName: string,
  cfg: EdgebanConfig,
  nowMs: number,
  extra: Partial<IngestDeps> = {},
): IngestDeps & { notified: () => number } {
  let notified = 0;
  return {
    s3: env.cloud.clients().s3,
    ddb: env.ddb,
    tableName,
    config: cfg,
    guard: guardFor(cfg.allowlist),
    now: () => nowMs,
    notifyReconciler: async () => {
      notified++;
    },
    notified: () => notified,
    ...extra,
  };
}

/** An SQS event carrying S3 notifications for the refs, one message each. */
export function sqsEvent(messages: (ObjectRef[] | string)[]): SQSEvent {
  return {
    Records: messages.map((m, i) => ({
      messageId: `msg-${i}`,
      receiptHandle: `rh-${i}`,
      body:
        typeof m === 'string'
          ? m
          : JSON.stringify({
              Records: m.map((ref) => ({
                eventVersion: '2.1',
                eventSource: 'aws:s3',
                eventName: 'ObjectCreated:Put',
                s3: {
                  bucket: { name: ref.bucket },
                  object: { key: encodeEventKey(ref.key), eTag: ref.etag, size: ref.size ?? 0 },
                },
              })),
            }),
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: '0',
        SenderId: 'AIDAEXAMPLE',
        ApproximateFirstReceiveTimestamp: '0',
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:edgeban-ingest',
      awsRegion: 'us-east-1',
    })),
  };
}
