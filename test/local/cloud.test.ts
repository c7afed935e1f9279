import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CopyObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { ListIPSetsCommand, WAFV2ServiceException } from '@aws-sdk/client-wafv2';
import type { S3EventRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeEventKey, type LocalCloud, startLocalCloud } from '../../local/cloud';

const OBJECT = Buffer.alloc(256 * 1024, 'x');

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud({ buckets: ['logs'], proxies: ['s3', 'wafv2'] });
  await cloud
    .clients()
    .s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'big.log', Body: OBJECT }));
});

afterAll(async () => {
  await cloud.stop();
});

afterEach(() => {
  cloud.proxies.s3?.clear();
  cloud.proxies.wafv2?.clear();
  cloud.waf.clearFaults();
});

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('startLocalCloud', () => {
  it('points endpoints at the proxies for proxied services only', () => {
    expect(cloud.endpoints.s3).toBe(cloud.proxies.s3?.endpoint);
    expect(cloud.endpoints.wafv2).toBe(cloud.proxies.wafv2?.endpoint);
    expect(cloud.proxies.dynamodb).toBeUndefined();
    expect(cloud.endpoints.dynamodb).toBe(cloud.direct.dynamodb);
    for (const url of Object.values(cloud.endpoints))
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('serves DynamoDB with tables active at once', async () => {
    const { dynamodb } = cloud.clients();
    await dynamodb.send(
      new CreateTableCommand({
        TableName: 'edgeban-state',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    const described = await dynamodb.send(new DescribeTableCommand({ TableName: 'edgeban-state' }));
    expect(described.Table?.TableStatus).toBe('ACTIVE');
    await dynamodb.send(
      new PutItemCommand({
        TableName: 'edgeban-state',
        Item: { pk: { S: 'key#192.0.2.7' }, sk: { S: 'rule#flood' }, n: { N: '3' } },
      }),
    );
    const got = await dynamodb.send(
      new GetItemCommand({
        TableName: 'edgeban-state',
        Key: { pk: { S: 'key#192.0.2.7' }, sk: { S: 'rule#flood' } },
      }),
    );
    expect(got.Item?.n).toEqual({ N: '3' });
  });

  it('reads an S3 object whole when no fault is set', async () => {
    const got = await cloud
      .clients()
      .s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'big.log' }));
    const body = Buffer.from(await got.Body!.transformToByteArray());
    expect(body.equals(OBJECT)).toBe(true);
  });

  it('breaks an S3 GetObject body mid-stream so the consumer sees an error', async () => {
    cloud.proxies.s3?.set({
      match: { method: 'GET', path: '/logs/' },
      resetAfterBytes: 4096,
      once: true,
    });
    const got = await cloud
      .clients()
      .s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'big.log' }));
    expect(got.ContentLength).toBe(OBJECT.length);
    await expect(got.Body!.transformToByteArray()).rejects.toThrow();
    // The rule was for one request: the next read is whole.
    const again = await cloud
      .clients()
      .s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'big.log' }));
    expect((await again.Body!.transformToByteArray()).length).toBe(OBJECT.length);
  });

  it('has the SDK retry S3 503s, and surfaces them when retries are off', async () => {
    cloud.proxies.s3?.set({ match: { method: 'GET' }, status: 503, times: 2 });
    const got = await cloud
      .clients()
      .s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'big.log' }));
    expect(got.$metadata.attempts).toBe(3);
    await got.Body!.transformToByteArray();

    cloud.proxies.s3?.set({ match: { method: 'GET' }, status: 503, once: true });
    const noRetry = cloud.clients({ maxAttempts: 1 });
    const err = await caught(
      noRetry.s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'big.log' })),
    );
    expect(err).toBeInstanceOf(S3ServiceException);
    expect((err as S3ServiceException).$metadata.httpStatusCode).toBe(503);
  });

  it('times out a request the proxy delays past the client timeout', async () => {
    cloud.proxies.s3?.set({ match: { method: 'GET' }, delayMs: 2_000, once: true });
    const impatient = cloud.clients({ maxAttempts: 1, requestTimeoutMs: 200 });
    const err = await caught(
      impatient.s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'big.log' })),
    );
    expect((err as Error).name).toBe('TimeoutError');
    expect(cloud.proxies.s3?.stats().faults.delay).toBeGreaterThanOrEqual(1);
  });

  it('puts WAF behind its proxy too, with 5xx retried by the SDK', async () => {
    cloud.proxies.wafv2?.set({ match: { target: 'ListIPSets' }, status: 500, once: true });
    const out = await cloud.clients().wafv2.send(new ListIPSetsCommand({ Scope: 'CLOUDFRONT' }));
    expect(out.$metadata.attempts).toBe(2);
    expect(cloud.waf.calls().filter((c) => c.operation === 'ListIPSets')).toHaveLength(1);
  });

  it('surfaces the emulator throttling through the proxy when retries are off', async () => {
    cloud.waf.setFaults({ throttleRate: 1 });
    const err = await caught(
      cloud.clients({ maxAttempts: 1 }).wafv2.send(new ListIPSetsCommand({ Scope: 'CLOUDFRONT' })),
    );
    expect(err).toBeInstanceOf(WAFV2ServiceException);
    expect((err as Error).name).toBe('ThrottlingException');
  });

  it('emits S3 event records for created objects, with the key URL-encoded', async () => {
    const records: S3EventRecord[] = [];
    const off = cloud.onObjectCreated((r) => records.push(r));
    const { s3 } = cloud.clients();
    const put = await s3.send(
      new PutObjectCommand({ Bucket: 'logs', Key: 'AWSLogs/a b=1.gz', Body: 'line\n' }),
    );
    const plain = await s3.send(
      new PutObjectCommand({ Bucket: 'logs', Key: 'plain.gz', Body: 'xy' }),
    );
    await s3.send(
      new CopyObjectCommand({ Bucket: 'logs', Key: 'copy.gz', CopySource: 'logs/plain.gz' }),
    );
    await expect.poll(() => records.length).toBe(3);
    off();
    const byKey = Object.fromEntries(records.map((r) => [r.s3.object.key, r]));
    expect(byKey['AWSLogs/a+b%3D1.gz']).toMatchObject({
      eventSource: 'aws:s3',
      eventName: 'ObjectCreated:Put',
      s3: {
        bucket: { name: 'logs', arn: 'arn:aws:s3:::logs' },
        object: { size: 5, eTag: put.ETag?.replace(/"/g, '') },
      },
    });
    expect(byKey['copy.gz']).toMatchObject({
      eventName: 'ObjectCreated:Copy',
      s3: { object: { size: 2, eTag: plain.ETag?.replace(/"/g, '') } },
    });
  });
});

describe('encodeEventKey', () => {
  it('encodes like S3 event notifications: space as +, slash kept, the rest %XX', () => {
    expect(
      encodeEventKey('AWSLogs/123/elasticloadbalancing/us-east-1/x_20240501T1000Z.log.gz'),
    ).toBe('AWSLogs/123/elasticloadbalancing/us-east-1/x_20240501T1000Z.log.gz');
    expect(encodeEventKey('a b+c=d:é')).toBe('a+b%2Bc%3Dd%3A%C3%A9');
    expect(decodeURIComponent(encodeEventKey('x y/z%w').replace(/\+/g, ' '))).toBe('x y/z%w');
  });
});

describe('LocalCloud.stop', () => {
  it('leaves nothing running: a process that starts and stops the cloud exits on its own', async () => {
    const script = fileURLToPath(new URL('./fixtures/cloud-lifecycle.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const code = await new Promise<number | string>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve('still running after stop()');
      }, 45_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c ?? -1);
      });
    });
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ key: 'a+b.log', tables: ['edgeban-state'] });
  });

  it('closes every port and can be called twice', async () => {
    const other = await startLocalCloud();
    await other.stop();
    await other.stop();
    for (const url of Object.values(other.direct)) {
      await expect(fetch(url)).rejects.toThrow();
    }
  });
});
