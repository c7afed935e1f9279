import { gzipSync } from 'node:zlib';
import { GetObjectCommand, NoSuchKey, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { DeleteCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyPairState } from '../../lambda/core/decide';
import {
  handleIngestBatch,
  horizonMinute,
  type IngestMetrics,
  ingestObject,
  ObjectReadError,
  type ObjectReport,
  parseS3EventBody,
} from '../../lambda/ingest/ingest';
import { METRICS } from '../../lambda/shared/contract';
import { activeKey, INGEST_STATUS_KEY, ledgerKey } from '../../lambda/shared/schema';
import { readPairSeries } from '../../lambda/state/counts';
import { readPairState, unblockKeyPairs, writePairState } from '../../lambda/state/pairs';
import {
  albLog,
  BUCKET,
  burst,
  cloudFrontLog,
  config,
  deps,
  sqsEvent,
  startEnv,
  T0,
  type TestEnv,
} from './env';

let env: TestEnv;
beforeAll(async () => {
  env = await startEnv({ proxies: true });
});
afterAll(async () => {
  await env?.stop();
});

const HOUR = 3600;
const flood = config({ rules: [{ name: 'flood', threshold: 10, window: '5m' }] });
/** The pipeline clock of most tests: ten minutes after T0. */
const NOW = (T0 + 10) * 60_000;

async function scanTable(table: string, prefix: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const res = await env.ddb.send(
      new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }),
    );
    for (const item of res.Items ?? []) if (String(item.pk).startsWith(prefix)) out.push(item);
    start = res.LastEvaluatedKey;
  } while (start !== undefined);
  return out;
}

function report(r: Awaited<ReturnType<typeof ingestObject>>): ObjectReport {
  if (r.duplicate) throw new Error('unexpected duplicate');
  return r;
}

describe('ingestObject', () => {
  it('counts a client spread over objects and formats as the sum, firing only past the threshold', async () => {
    const table = await env.table();
    const d = deps(env, table, flood, NOW);
    const a = await env.put(
      'cf/a.gz',
      cloudFrontLog([...burst('192.0.2.7', T0, 4), ...burst('198.51.100.9', T0, 5)]),
    );
    const b = await env.put(
      'alb/b.log',
      albLog([...burst('192.0.2.7', T0 + 1, 4), ...burst('198.51.100.9', T0 + 2, 5)]),
      true,
    );
    expect(report(await ingestObject(d, a)).format).toBe('cloudfront');
    expect(report(await ingestObject(d, b)).format).toBe('alb');
    // 8 and 10 requests so far: neither is over 10.
    expect(await scanTable(table, 'PAIR#')).toEqual([]);
    expect(d.notified()).toBe(0);

    const c = await env.put('cf/c.gz', cloudFrontLog(burst('192.0.2.7', T0 + 2, 3)));
    const r = report(await ingestObject(d, c));
    expect(r.decisions).toBe(1);
    const pair = await readPairState(env.ddb, table, 'flood', '192.0.2.7');
    expect(pair.state.peak).toBe(11);
    expect(pair.state.firstExceeded).toBe((T0 + 2) * 60);
    expect(pair.state.blocks).toEqual([
      { offence: 1, start: NOW / 1000, until: NOW / 1000 + 4 * HOUR },
    ]);
    expect((await readPairState(env.ddb, table, 'flood', '198.51.100.9')).version).toBe(0);
    const active = await scanTable(table, 'ACTIVE');
    expect(active).toHaveLength(1);
    expect(active[0]).toMatchObject({
      ...activeKey('192.0.2.7', 'flood'),
      key: '192.0.2.7',
      rule: 'flood',
      source: 'rule',
      until: NOW / 1000 + 4 * HOUR,
      offences: 1,
      peak: 11,
      window: 5,
      firstExceeded: (T0 + 2) * 60,
    });
    const history = await scanTable(table, 'HIST#192.0.2.7');
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({
      kind: 'block',
      rule: 'flood',
      key: '192.0.2.7',
      at: NOW / 1000,
    });
    expect(d.notified()).toBe(1);
    const status = await scanTable(table, INGEST_STATUS_KEY.pk);
    expect(status[0]).toMatchObject({ newestMinute: T0 + 2 });
  });

  it('puts late and out-of-order objects in their minutes and fires when they complete a window', async () => {
    const table = await env.table();
    const d = deps(env, table, flood, NOW);
    // Newest first: minute T0+4, then an object with minutes out of order (T0+3, T0, T0+1).
    await ingestObject(
      d,
      await env.put('late/2.gz', cloudFrontLog(burst('203.0.113.5', T0 + 4, 6))),
    );
    expect((await readPairState(env.ddb, table, 'flood', '203.0.113.5')).version).toBe(0);
    const late = await env.put(
      'late/1.gz',
      cloudFrontLog([
        ...burst('203.0.113.5', T0 + 3, 1),
        ...burst('203.0.113.5', T0, 2),
        ...burst('203.0.113.5', T0 + 1, 2),
      ]),
    );
    await ingestObject(d, late);
    const s = await readPairSeries(env.ddb, table, 'flood', '203.0.113.5', T0 - 10, T0 + 10);
    expect(s.minutes).toEqual([T0, T0 + 1, T0 + 3, T0 + 4]);
    expect(s.counts).toEqual([2, 2, 1, 6]);
    const pair = await readPairState(env.ddb, table, 'flood', '203.0.113.5');
    expect(pair.state.peak).toBe(11);
    expect(pair.state.firstExceeded).toBe((T0 + 4) * 60);
  });

  it('counts requests past the live horizon as stale, and all of them without the horizon', async () => {
    const now = (T0 + 24 * 60 + 5 + 3) * 60_000;
    // Longest window 5m + horizon 24h before now: minute T0+3 is the first that counts.
    expect(horizonMinute(flood, now)).toBe(T0 + 3);
    const hits = [...burst('192.0.2.50', T0 + 2, 6), ...burst('192.0.2.50', T0 + 3, 6)];
    const table = await env.table();
    const r = report(
      await ingestObject(
        deps(env, table, flood, now),
        await env.put('h/1.gz', cloudFrontLog(hits)),
      ),
    );
    expect(r.requests).toBe(12);
    expect(r.stale).toBe(6);
    expect(r.decisions).toBe(0);
    const s = await readPairSeries(env.ddb, table, 'flood', '192.0.2.50', T0, T0 + 10);
    expect(s.minutes).toEqual([T0 + 3]);

    const table2 = await env.table();
    const all = report(
      await ingestObject(
        deps(env, table2, flood, now, { horizon: false }),
        await env.put('h/2.gz', cloudFrontLog(hits)),
      ),
    );
    expect(all.stale).toBe(0);
    expect(all.decisions).toBe(1);
  });

  it('counts an object delivered three times once', async () => {
    const table = await env.table();
    const d = deps(env, table, flood, NOW);
    const ref = await env.put('dup/a.gz', cloudFrontLog(burst('192.0.2.9', T0, 7)));
    expect((await ingestObject(d, ref)).duplicate).toBe(false);
    expect(await ingestObject(d, ref)).toEqual({ duplicate: true });
    expect(await ingestObject(d, ref)).toEqual({ duplicate: true });
    const s = await readPairSeries(env.ddb, table, 'flood', '192.0.2.9', T0, T0);
    expect(s.counts).toEqual([7]);
    expect(await scanTable(table, 'OBJ#')).toHaveLength(1);
  });

  it('counts three racing deliveries of an object once and blocks once', async () => {
    const table = await env.table();
    const d = deps(env, table, flood, NOW);
    const ref = await env.put('race/a.gz', cloudFrontLog(burst('192.0.2.10', T0, 12)));
    await Promise.all([ingestObject(d, ref), ingestObject(d, ref), ingestObject(d, ref)]);
    const s = await readPairSeries(env.ddb, table, 'flood', '192.0.2.10', T0, T0);
    expect(s.counts).toEqual([12]);
    const pair = await readPairState(env.ddb, table, 'flood', '192.0.2.10');
    expect(pair.state.peak).toBe(12);
    expect(pair.state.blocks).toHaveLength(1);
    expect(await scanTable(table, 'HIST#')).toHaveLength(1);
    expect(await scanTable(table, 'ACTIVE')).toHaveLength(1);
  });

  it('loses nothing when another writer changes the pair state between its read and its write', async () => {
    const table = await env.table();
    const earlier = {
      offence: 1,
      start: NOW / 1000 - 2 * 24 * HOUR,
      until: NOW / 1000 - 44 * HOUR,
    };
    let raced = false;
    // A client that lets a concurrent writer store the pair's state first.
    const racy = {
      send: async (command: unknown) => {
        if (
          !raced &&
          command instanceof PutCommand &&
          String(command.input.Item?.pk).startsWith('PAIR#')
        ) {
          raced = true;
          const other = {
            ...emptyPairState(),
            peak: 30,
            firstExceeded: earlier.start - 60,
            blocks: [earlier],
          };
          expect(await writePairState(env.ddb, table, 'flood', '192.0.2.11', other, 0)).toBe(1);
        }
        return env.ddb.send(command as PutCommand);
      },
    } as unknown as typeof env.ddb;
    const d = deps(env, table, flood, NOW, { ddb: racy });
    await ingestObject(d, await env.put('cc/a.gz', cloudFrontLog(burst('192.0.2.11', T0, 15))));
    expect(raced).toBe(true);
    const pair = await readPairState(env.ddb, table, 'flood', '192.0.2.11');
    expect(pair.version).toBe(2);
    // The other writer's block stays, its peak stays (higher), and ours escalates from it.
    expect(pair.state.peak).toBe(30);
    expect(pair.state.firstExceeded).toBe(earlier.start - 60);
    expect(pair.state.blocks).toEqual([
      earlier,
      { offence: 2, start: NOW / 1000, until: NOW / 1000 + 8 * HOUR },
    ]);
  });

  it('does not leave an ACTIVE item behind when an unblock lands between the state and ACTIVE writes', async () => {
    const table = await env.table();
    let unblocked = false;
    const racy = {
      send: async (command: unknown) => {
        if (!unblocked && command instanceof PutCommand && command.input.Item?.pk === 'ACTIVE') {
          unblocked = true;
          // The operator's unblock: pair states first, then the ACTIVE item goes.
          await unblockKeyPairs(env.ddb, table, flood, '192.0.2.15', NOW / 1000, 'alice');
          await env.ddb.send(
            new DeleteCommand({ TableName: table, Key: activeKey('192.0.2.15', 'flood') }),
          );
        }
        return env.ddb.send(command as PutCommand);
      },
    } as unknown as typeof env.ddb;
    const d = deps(env, table, flood, NOW, { ddb: racy });
    await ingestObject(d, await env.put('ub/a.gz', cloudFrontLog(burst('192.0.2.15', T0, 15))));
    expect(unblocked).toBe(true);
    expect(await scanTable(table, 'ACTIVE')).toEqual([]);
    const pair = await readPairState(env.ddb, table, 'flood', '192.0.2.15');
    expect(pair.state.blocks).toEqual([{ offence: 1, start: NOW / 1000, until: NOW / 1000 }]);
    expect(pair.state.countFrom).toBe(NOW / 1000);
  });

  it('repairs the ACTIVE item on redelivery after a crash between the state and ACTIVE writes', async () => {
    const table = await env.table();
    const crashing = {
      send: async (command: unknown) => {
        if (command instanceof PutCommand && command.input.Item?.pk === 'ACTIVE') {
          throw new Error('Lambda timed out');
        }
        return env.ddb.send(command as PutCommand);
      },
    } as unknown as typeof env.ddb;
    const ref = await env.put('crash/a.gz', cloudFrontLog(burst('192.0.2.16', T0, 15)));
    const first = deps(env, table, flood, NOW, { ddb: crashing });
    await expect(ingestObject(first, ref)).rejects.toThrow('Lambda timed out');
    expect((await readPairState(env.ddb, table, 'flood', '192.0.2.16')).state.blocks).toHaveLength(
      1,
    );
    expect(await scanTable(table, 'OBJ#')).toEqual([]);

    const again = deps(env, table, flood, NOW + 5000);
    const r = report(await ingestObject(again, ref));
    expect(r.decisions).toBe(0);
    expect(await scanTable(table, 'ACTIVE')).toHaveLength(1);
    expect(await scanTable(table, 'HIST#')).toHaveLength(1);
    expect(again.notified()).toBe(1);
    const pair = await readPairState(env.ddb, table, 'flood', '192.0.2.16');
    expect(pair.state.blocks).toEqual([
      { offence: 1, start: NOW / 1000, until: NOW / 1000 + 4 * HOUR },
    ]);
  });

  it('skips and records an object that is not an access log', async () => {
    const table = await env.table();
    const logged: { message: string; extra?: Record<string, unknown> }[] = [];
    const logger = {
      info: (message: string, extra?: Record<string, unknown>) => logged.push({ message, extra }),
      warn: () => {},
      error: () => {},
    };
    const d = deps(env, table, flood, NOW, { logger });
    const ref = await env.put(
      'AWSLogs/ELBAccessLogTestFile',
      'Enable AccessLog for ELB: web at 2024-05-01T10:00:00.000Z\n',
      true,
    );
    const r = report(await ingestObject(d, ref));
    expect(r.skipped).not.toBeNull();
    expect(r.pairs).toBe(0);
    const ledger = await scanTable(table, 'OBJ#');
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({
      ...ledgerKey(BUCKET, ref.key, ref.etag),
      skipped: r.skipped,
      lines: 0,
    });
    expect(await scanTable(table, 'CNT#')).toEqual([]);
    expect(logged.some((l) => l.extra?.reason === r.skipped && l.extra?.key === ref.key)).toBe(
      true,
    );
    expect(await ingestObject(d, ref)).toEqual({ duplicate: true });
  });

  it('records an object that is gone or was replaced since its event as skipped', async () => {
    const table = await env.table();
    const s3 = new S3Client({ region: 'us-east-1' });
    const mock = mockClient(s3);
    mock
      .on(GetObjectCommand, { Key: 'gone.gz' })
      .rejects(new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} }))
      .on(GetObjectCommand, { Key: 'replaced.gz' })
      .rejects(
        new S3ServiceException({
          name: 'PreconditionFailed',
          $fault: 'client',
          message: 'At least one of the pre-conditions you specified did not hold',
          $metadata: { httpStatusCode: 412 },
        }),
      );
    const d = deps(env, table, flood, NOW, { s3 });
    const gone = report(await ingestObject(d, { bucket: BUCKET, key: 'gone.gz', etag: 'e1' }));
    expect(gone.skipped).toBe('object no longer exists');
    const replaced = report(
      await ingestObject(d, { bucket: BUCKET, key: 'replaced.gz', etag: 'e2' }),
    );
    expect(replaced.skipped).toBe('object was replaced (ETag changed)');
    expect(mock.commandCalls(GetObjectCommand)[1]?.args[0].input.IfMatch).toBe('"e2"');
    expect(await scanTable(table, 'OBJ#')).toHaveLength(2);
  });

  it('reads an alternate decoding of the key when the first finds nothing, also behind a 403', async () => {
    const table = await env.table();
    const body = gzipSync(cloudFrontLog(burst('192.0.2.21', T0, 3)));
    const real = await env.put('alt/a+b %.gz', body);
    const s3 = new S3Client({ region: 'us-east-1' });
    const mock = mockClient(s3);
    const denied = () =>
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        message: 'Access Denied',
        $metadata: { httpStatusCode: 403 },
      });
    // Without s3:ListBucket a key that does not exist is a 403.
    mock
      .on(GetObjectCommand, { Key: 'alt/first.gz' })
      .rejects(denied())
      .on(GetObjectCommand, { Key: 'alt/second.gz' })
      .rejects(new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} }))
      .on(GetObjectCommand, { Key: real.key })
      .callsFake((input) => env.cloud.clients().s3.send(new GetObjectCommand(input)));
    const d = deps(env, table, flood, NOW, { s3 });
    const r = report(
      await ingestObject(d, {
        ...real,
        key: 'alt/first.gz',
        alternateKeys: ['alt/second.gz', real.key],
      }),
    );
    expect(r.requests).toBe(3);
    expect(mock.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Key)).toEqual([
      'alt/first.gz',
      'alt/second.gz',
      real.key,
    ]);
    // The ledger names the object by the event's first decoding: a redelivery is a duplicate.
    expect(
      await ingestObject(d, { ...real, key: 'alt/first.gz', alternateKeys: [real.key] }),
    ).toEqual({ duplicate: true });
  });

  it('throws a 403 that no decoding of the key explains, so the message is retried', async () => {
    const table = await env.table();
    const s3 = new S3Client({ region: 'us-east-1' });
    mockClient(s3)
      .on(GetObjectCommand, { Key: 'deny/a.gz' })
      .rejects(
        new S3ServiceException({
          name: 'AccessDenied',
          $fault: 'client',
          message: 'Access Denied',
          $metadata: { httpStatusCode: 403 },
        }),
      )
      .on(GetObjectCommand, { Key: 'deny/b.gz' })
      .rejects(new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} }));
    const d = deps(env, table, flood, NOW, { s3 });
    await expect(
      ingestObject(d, {
        bucket: BUCKET,
        key: 'deny/a.gz',
        alternateKeys: ['deny/b.gz'],
        etag: 'e',
      }),
    ).rejects.toThrow('Access Denied');
    expect(await scanTable(table, 'OBJ#')).toEqual([]);
  });

  it('counts the lines of a damaged gzip object before the break and records it', async () => {
    const table = await env.table();
    const whole = gzipSync(cloudFrontLog(burst('192.0.2.12', T0, 2000)));
    const ref = await env.put('dmg/a.gz', whole.subarray(0, Math.floor(whole.length * 0.6)));
    const r = report(await ingestObject(deps(env, table, flood, NOW), ref));
    expect(r.damaged).toMatch(/gzip/);
    expect(r.requests).toBeGreaterThan(0);
    expect(r.requests).toBeLessThan(2000);
    const s = await readPairSeries(env.ddb, table, 'flood', '192.0.2.12', T0, T0);
    expect(s.counts).toEqual([r.requests]);
    expect((await scanTable(table, 'OBJ#'))[0]).toMatchObject({ damaged: r.damaged });
  });

  it('fails an object whose download breaks, recording nothing, and counts it once on retry', async () => {
    const table = await env.table();
    const d = deps(env, table, flood, NOW);
    const body = gzipSync(cloudFrontLog(burst('192.0.2.13', T0, 3000)));
    const ref = await env.put('reset/a.gz', body);
    env.cloud.proxies.s3?.set({
      match: { method: 'GET', path: `/${BUCKET}/reset/` },
      resetAfterBytes: 2000,
      once: true,
    });
    await expect(ingestObject(d, ref)).rejects.toBeInstanceOf(ObjectReadError);
    expect(await scanTable(table, 'OBJ#')).toEqual([]);
    expect(await scanTable(table, 'CNT#')).toEqual([]);
    const r = report(await ingestObject(d, ref));
    expect(r.requests).toBe(3000);
    expect(r.damaged).toBeNull();
    const s = await readPairSeries(env.ddb, table, 'flood', '192.0.2.13', T0, T0);
    expect(s.counts).toEqual([3000]);
  });

  it('reports lines, rejections, objects, decisions and lag as metrics', async () => {
    const table = await env.table();
    const seen = new Map<string, number>();
    const metrics: IngestMetrics = {
      addMetric: (name, _unit, value) => seen.set(name, (seen.get(name) ?? 0) + value),
    };
    const text = `${cloudFrontLog(burst('192.0.2.14', T0 + 1, 11)).trimEnd()}\nnot a log line\n`;
    await ingestObject(deps(env, table, flood, NOW, { metrics }), await env.put('m/a.gz', text));
    expect(Object.fromEntries(seen)).toEqual({
      [METRICS.objects]: 1,
      [METRICS.lines]: 12,
      [METRICS.rejected]: 1,
      [METRICS.stale]: 0,
      [METRICS.decisions]: 1,
      [METRICS.lagSeconds]: NOW / 1000 - (T0 + 2) * 60,
    });
  });
});

describe('parseS3EventBody', () => {
  it('decodes form-encoded keys', () => {
    const body = JSON.stringify({
      Records: [
        {
          eventName: 'ObjectCreated:Put',
          s3: {
            bucket: { name: 'b' },
            object: { key: 'AWSLogs/a+b%2Bc%C3%A9.gz', eTag: 'e1', size: 3 },
          },
        },
      ],
    });
    expect(parseS3EventBody(body)).toEqual([
      { bucket: 'b', key: 'AWSLogs/a b+cé.gz', etag: 'e1', size: 3 },
    ]);
  });

  it('accepts the S3 test event as no objects', () => {
    expect(
      parseS3EventBody(
        JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'b' }),
      ),
    ).toEqual([]);
  });

  it('refuses what is not an S3 notification', () => {
    expect(() => parseS3EventBody('{')).toThrow(/not JSON/);
    expect(() => parseS3EventBody('{"hello":1}')).toThrow(/no Records/);
  });
});

describe('handleIngestBatch', () => {
  it('reports only the records that failed', async () => {
    const table = await env.table();
    const d = deps(env, table, flood, NOW);
    const good = await env.put('batch/a b.gz', cloudFrontLog(burst('192.0.2.20', T0, 3)));
    const missingBucket = { bucket: 'no-such-bucket', key: 'x.gz', etag: 'abc' };
    const event = sqsEvent([
      [good],
      [missingBucket],
      JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent' }),
      'garbage',
    ]);
    const res = await handleIngestBatch(d, event);
    expect(res.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['msg-1', 'msg-3']);
    const s = await readPairSeries(env.ddb, table, 'flood', '192.0.2.20', T0, T0);
    expect(s.counts).toEqual([3]);
  });
});
