import { createServer } from 'node:net';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Io, run } from '../../cli/main';
import { LOCAL_CREDENTIALS, type LocalCloud, startLocalCloud } from '../../local/cloud';
import { albFile, burst, cloudFrontFile, tempLogs } from './logs';

let cloud: LocalCloud;
const saved = { ...process.env };

async function edgeban(args: string[], endpoint = cloud.endpoints.s3) {
  process.env.AWS_ENDPOINT_URL_S3 = endpoint;
  process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION = 'us-east-1';
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), tty: false };
  const code = await run(args, io);
  return { code, out, err };
}

const FILES: Record<string, string> = {
  'cf/E2QWRUHAPOMQZL.2024-05-01-10.a1b2c3d4.gz': cloudFrontFile(
    burst('198.51.100.7', '2024-05-01T10:04', 15),
  ),
  'alb/123456789012_elasticloadbalancing_us-east-1_app.my-lb.50dc6c495c0c9188_20240501T1005Z_192.0.2.1_x.log':
    albFile(burst('198.51.100.7', '2024-05-01T10:05', 10)),
  'alb/ELBAccessLogTestFile': 'Enable AccessLog for ELB: my-lb at 2024-05-01T10:00:00.000Z\n',
};

beforeAll(async () => {
  cloud = await startLocalCloud({ buckets: ['logs'], proxies: ['s3'] });
  const { s3 } = cloud.clients();
  const { gzipSync } = await import('node:zlib');
  for (const [key, text] of Object.entries(FILES)) {
    await s3.send(
      new PutObjectCommand({
        Bucket: 'logs',
        Key: key,
        Body: key.endsWith('.gz') ? gzipSync(text) : text,
      }),
    );
  }
});

afterAll(async () => {
  process.env = saved;
  await cloud?.stop();
});

describe('edgeban replay s3://', () => {
  it('streams every object under a prefix and decides as a local replay does', async () => {
    const r = await edgeban(['replay', '--json', '--threshold', '20', 's3://logs/']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.summary).toEqual({
      files: 3,
      lines: 25,
      requests: 25,
      rejected: 0,
      skippedFiles: 1,
      damagedFiles: 0,
    });
    expect(doc.problems).toEqual([
      { file: 's3://logs/alb/ELBAccessLogTestFile', kind: 'skipped', reason: 'not an access log' },
    ]);
    const local = await edgeban(['replay', '--json', '--threshold', '20', tempLogs(FILES)]);
    expect(doc.decisions).toEqual(JSON.parse(local.out).decisions);
    expect(doc.decisions).toHaveLength(1);
  });

  it('reads only the given prefix, and an empty prefix is 0 files', async () => {
    const cf = JSON.parse(
      (await edgeban(['replay', '--json', '--threshold', '5', 's3://logs/cf/'])).out,
    );
    expect(cf.summary.files).toBe(1);
    const none = await edgeban(['replay', '--json', '--threshold', '5', 's3://logs/nothing-here/']);
    expect(none.code).toBe(0);
    expect(JSON.parse(none.out).summary.files).toBe(0);
  });

  it('keeps the lines before a connection reset mid-object and lists the object as damaged', async () => {
    const big = cloudFrontFile(burst('203.0.113.9', '2024-05-01T11:00', 3000));
    await cloud
      .clients()
      .s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'big/a.log', Body: big }));
    cloud.proxies.s3!.set({
      match: { method: 'GET', path: '/logs/big/a.log' },
      resetAfterBytes: 100_000,
    });
    try {
      const r = await edgeban(['replay', '--json', '--threshold', '5', 's3://logs/big/']);
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.out);
      expect(doc.summary.damagedFiles).toBe(1);
      expect(doc.summary.requests).toBeGreaterThan(100);
      expect(doc.summary.requests).toBeLessThan(3000);
      expect(doc.problems[0]).toMatchObject({ file: 's3://logs/big/a.log', kind: 'damaged' });
    } finally {
      cloud.proxies.s3!.clear();
    }
  });

  it('exits 2 when the bucket does not exist', async () => {
    const r = await edgeban(['replay', '--threshold', '5', 's3://no-such-bucket/x']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('edgeban: no such bucket: no-such-bucket\n');
  });

  it('exits 3 when the endpoint is unreachable', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const r = await edgeban(
      ['replay', '--threshold', '5', 's3://logs/'],
      `http://127.0.0.1:${port}`,
    );
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/^edgeban: cannot reach S3/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });
});
