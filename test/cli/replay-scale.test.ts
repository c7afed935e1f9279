/**
 * `replay s3://` at scale against s3rver: a few hundred CloudFront, ALB
 * and name-less objects, read with bounded concurrency, and `--since` /
 * `--until` by key time and by log time. The oracle of every range run is
 * a plain replay of exactly the requests inside the range.
 */

import { Readable } from 'node:stream';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Source } from '../../cli/inputs';
import { type Io, run } from '../../cli/main';
import { runReplay } from '../../cli/replay';
import { parseConfig } from '../../lambda/core/config';
import { LOCAL_CREDENTIALS, type LocalCloud, startLocalCloud } from '../../local/cloud';
import { seededRandom } from '../../local/rng';
import { albFile, burst, cloudFrontFile, type Hit, tempLogs } from './logs';

const BUCKET = 'scale';
const DAY = '2024-05-01';
const DIST = 'E2QWRUHAPOMQZL';
const ALB_PREFIX = '123456789012_elasticloadbalancing_us-east-1_app.my-lb.50dc6c495c0c9188';

/** One object of the bucket, with the hits it holds. */
interface TestObject {
  readonly key: string;
  readonly body: Buffer;
  readonly hits: readonly Hit[];
  /** What its key says: a CloudFront hour or an ALB interval end, in minutes of the day. */
  readonly keyed: { kind: 'cloudfront'; hour: number } | { kind: 'alb'; end: number } | null;
}

const pad = (n: number) => String(n).padStart(2, '0');
const atMinute = (minuteOfDay: number, second: number) =>
  `${DAY}T${pad(Math.floor(minuteOfDay / 60))}:${pad(minuteOfDay % 60)}:${pad(second)}Z`;
const ms = (iso: string) => Date.parse(iso);

/**
 * The bucket: 12 CloudFront hours x 12 objects, 96 five-minute ALB
 * objects, 60 objects whose names carry no time, and a few bad ones.
 * Attackers: A in range (CloudFront and ALB), B before it (keyed
 * CloudFront), C after it (name-less), D in range (name-less), E across
 * the range start (ALB).
 */
function buildBucket(): TestObject[] {
  const random = seededRandom(7);
  const background = (from: number, to: number, n: number): Hit[] =>
    Array.from({ length: n }, () => {
      const minute = from + Math.floor(random() * (to - from));
      const v6 = random() < 0.1;
      const host = 1 + Math.floor(random() * 200);
      return {
        ip: v6 ? `2001:db8:9::${host.toString(16)}` : `203.0.113.${host}`,
        at: atMinute(minute, Math.floor(random() * 60)),
      };
    });
  const objects: TestObject[] = [];
  const gz = (text: string) => gzipSync(text);

  for (let hour = 5; hour < 17; hour++) {
    for (let part = 0; part < 12; part++) {
      const hits = background(hour * 60, hour * 60 + 60, 8);
      if (hour === 10 && part === 3) hits.push(...burst('198.51.100.7', `${DAY}T10:30`, 40));
      if (hour === 7 && part === 5) hits.push(...burst('198.51.100.8', `${DAY}T07:15`, 50));
      objects.push({
        key: `cf/${DIST}.${DAY}-${pad(hour)}.p${pad(part)}abcd.gz`,
        body: gz(cloudFrontFile(hits)),
        hits,
        keyed: { kind: 'cloudfront', hour },
      });
    }
  }
  // Damaged (truncated gzip): one before the range, one inside it.
  for (const hour of [7, 10]) {
    const hits = background(hour * 60, hour * 60 + 60, 200);
    const body = gz(cloudFrontFile(hits)).subarray(0, 1500);
    objects.push({
      key: `cf/${DIST}.${DAY}-${pad(hour)}.zzbroken.gz`,
      body,
      hits: hits.slice(0, completeRows(body)),
      keyed: { kind: 'cloudfront', hour },
    });
  }

  for (let end = 8 * 60 + 5; end < 16 * 60; end += 5) {
    const hits = background(end - 5, end, 6);
    if (end === 11 * 60 + 5) hits.push(...burst('198.51.100.7', `${DAY}T11:02`, 30));
    if (end === 10 * 60) hits.push(...burst('198.51.100.10', `${DAY}T09:58`, 25));
    if (end === 10 * 60 + 5) hits.push(...burst('198.51.100.10', `${DAY}T10:01`, 10));
    const stamp = `${DAY.replaceAll('-', '')}T${pad(Math.floor(end / 60))}${pad(end % 60)}Z`;
    objects.push({
      key: `alb/${ALB_PREFIX}_${stamp}_192.0.2.1_${pad(end % 97)}x.log.gz`,
      body: gz(albFile(hits)),
      hits,
      keyed: { kind: 'alb', end },
    });
  }
  objects.push({
    key: 'alb/ELBAccessLogTestFile',
    body: Buffer.from('Enable AccessLog for ELB: my-lb at 2024-05-01T10:00:00.000Z\n'),
    hits: [],
    keyed: null,
  });

  for (let part = 0; part < 60; part++) {
    const hits = background(6 * 60 + part * 10, 6 * 60 + part * 10 + 10, 10);
    if (part === 50) hits.push(...burst('198.51.100.9', `${DAY}T14:20`, 50));
    if (part === 34) hits.push(...burst('2001:db8:1::5', `${DAY}T11:45`, 30));
    let text = cloudFrontFile(hits);
    if (part === 20) {
      // One rejected line (an invalid client) in a name-less object: no longer a hit.
      const bad = hits.findIndex((h) => h.ip.startsWith('203.0.113.'));
      text = text.replace(`\t${hits[bad]!.ip}\t`, `\t${hits[bad]!.ip}.999\t`);
      hits.splice(bad, 1);
    }
    objects.push({ key: `misc/part-${pad(part)}.log`, body: Buffer.from(text), hits, keyed: null });
  }
  return objects;
}

/** Rows before the break of a truncated gzip: what the engine reads of it. */
function completeRows(truncated: Buffer): number {
  const text = gunzipSync(truncated, { finishFlush: constants.Z_SYNC_FLUSH }).toString();
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#')).length;
}

const OBJECTS = buildBucket();
let cloud: LocalCloud;
const saved = { ...process.env };

async function edgeban(args: string[]): Promise<{ code: number; out: string; err: string }> {
  process.env.AWS_ENDPOINT_URL_S3 = cloud.endpoints.s3;
  process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION = 'us-east-1';
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), tty: false };
  const code = await run(args, io);
  return { code, out, err };
}

async function replayJson(args: string[]) {
  const r = await edgeban(['replay', '--json', '--clients', '--threshold', '20', ...args]);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out);
}

/** A plain local replay of exactly these hits, in one CloudFront file. */
async function oracle(hits: readonly Hit[]) {
  const dir = tempLogs({ 'only.log': cloudFrontFile([...hits]) });
  return replayJson([dir]);
}

const inRange = (hits: readonly Hit[], since: string, until: string) =>
  hits.filter((h) => ms(h.at) >= ms(since) && ms(h.at) < ms(until));

beforeAll(async () => {
  cloud = await startLocalCloud({ buckets: [BUCKET], proxies: ['s3'] });
  const { s3 } = cloud.clients();
  for (let i = 0; i < OBJECTS.length; i += 16) {
    await Promise.all(
      OBJECTS.slice(i, i + 16).map((o) =>
        s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: o.key, Body: o.body })),
      ),
    );
  }
}, 120_000);

afterAll(async () => {
  process.env = saved;
  await cloud?.stop();
});

describe('edgeban replay s3:// at scale', () => {
  it('holds a few hundred objects', () => {
    expect(OBJECTS.length).toBeGreaterThanOrEqual(300);
  });

  it('gives the same document with 8 downloads at once as one after another', async () => {
    // Slow down the first listed objects so that later downloads finish first.
    cloud.proxies.s3?.set({
      match: { method: 'GET', path: /_20240501T08[0-4]\dZ_/ },
      delayMs: 150,
    });
    try {
      const sequential = await replayJson(['--concurrency', '1', `s3://${BUCKET}/`]);
      const parallel = await replayJson(['--concurrency', '8', `s3://${BUCKET}/`]);
      expect(parallel).toEqual(sequential);
      expect(sequential.summary).toEqual({
        files: OBJECTS.length,
        lines: sequential.summary.lines,
        requests: sequential.summary.requests,
        rejected: 1,
        skippedFiles: 1,
        damagedFiles: 2,
      });
      expect(
        sequential.problems.map((p: { file: string; kind: string }) => [p.kind, p.file]),
      ).toEqual([
        ['skipped', `s3://${BUCKET}/alb/ELBAccessLogTestFile`],
        ['damaged', `s3://${BUCKET}/cf/${DIST}.${DAY}-07.zzbroken.gz`],
        ['damaged', `s3://${BUCKET}/cf/${DIST}.${DAY}-10.zzbroken.gz`],
        ['rejected', `s3://${BUCKET}/misc/part-20.log`],
      ]);
      expect(sequential.decisions.map((d: { key: string }) => d.key)).toEqual([
        '198.51.100.8',
        '198.51.100.10',
        '198.51.100.7',
        '2001:db8:1::/64',
        '198.51.100.9',
      ]);
    } finally {
      cloud.proxies.s3?.set([]);
    }
  });

  it('decides as a local replay of the same files does', async () => {
    const files: Record<string, Buffer> = {};
    for (const o of OBJECTS) files[o.key] = o.body;
    const local = await replayJson([tempLogs(files)]);
    const s3 = await replayJson([`s3://${BUCKET}/`]);
    expect(s3.summary).toEqual(local.summary);
    expect(s3.clients).toEqual(local.clients);
    expect(s3.decisions).toEqual(local.decisions);
    expect(s3.problems.map((p: { file: string }) => p.file.replace(`s3://${BUCKET}/`, ''))).toEqual(
      local.problems.map((p: { file: string }) => p.file.replace(/^.*?edgeban-cli-[^/]+\//, '')),
    );
  });
});

describe('edgeban replay --since / --until', () => {
  const SINCE = `${DAY}T10:00:00Z`;
  const UNTIL = `${DAY}T12:00:00Z`;

  /** The documented key spans: a CloudFront hour; [end - 2h, end + 5m) for ALB. */
  function readByKey(o: TestObject): boolean {
    if (o.keyed === null) return true;
    const since = ms(SINCE) / 60_000 - ms(`${DAY}T00:00:00Z`) / 60_000;
    const until = since + 120;
    if (o.keyed.kind === 'cloudfront') {
      return o.keyed.hour * 60 < until && o.keyed.hour * 60 + 60 > since;
    }
    return o.keyed.end - 120 < until && o.keyed.end + 5 > since;
  }

  it('skips objects by the time in their key and counts only requests in the range', async () => {
    const doc = await replayJson(['--since', SINCE, '--until', UNTIL, `s3://${BUCKET}/`]);
    const read = OBJECTS.filter(readByKey);
    const hitsRead = read.flatMap((o) => o.hits);
    const wanted = inRange(hitsRead, SINCE, UNTIL);
    expect(doc.summary).toEqual({
      files: read.length,
      lines: wanted.length + 1,
      requests: wanted.length,
      rejected: 1,
      skippedFiles: 1,
      damagedFiles: 1,
      objectsOutOfRange: OBJECTS.length - read.length,
      requestsOutOfRange: hitsRead.length - wanted.length,
    });
    expect(doc.summary.objectsOutOfRange).toBeGreaterThan(100);
    // The damaged object of 07:00 was never read; the one of 10:00 was.
    expect(doc.problems.map((p: { file: string }) => p.file)).toEqual([
      `s3://${BUCKET}/alb/ELBAccessLogTestFile`,
      `s3://${BUCKET}/cf/${DIST}.${DAY}-10.zzbroken.gz`,
      `s3://${BUCKET}/misc/part-20.log`,
    ]);
    const expected = await oracle(
      inRange(
        OBJECTS.flatMap((o) => o.hits),
        SINCE,
        UNTIL,
      ),
    );
    expect(doc.clients).toEqual(expected.clients);
    expect(doc.decisions).toEqual(expected.decisions);
    // A and D are in the range; B before it, C after it; E only crosses its start.
    expect(doc.decisions.map((d: { key: string }) => d.key)).toEqual([
      '198.51.100.7',
      '2001:db8:1::/64',
    ]);
  });

  it('filters objects whose names carry no time by the time of each request', async () => {
    const misc = OBJECTS.filter((o) => o.key.startsWith('misc/'));
    const hits = misc.flatMap((o) => o.hits);
    for (const [since, until, keys] of [
      ['2024-05-01T11:00', '2024-05-01T15:00', ['2001:db8:1::/64', '198.51.100.9']],
      ['2024-05-01T11:00', '2024-05-01T14:20', ['2001:db8:1::/64']],
      ['2024-05-01T14:00+02:00', '2024-05-01T16:30:45+02:00', ['198.51.100.9']],
    ] as const) {
      const doc = await replayJson([
        '--since',
        since,
        '--until',
        until,
        '--concurrency',
        '3',
        `s3://${BUCKET}/misc/`,
      ]);
      const utcSince = since.includes('+') ? `${DAY}T12:00:00Z` : `${since}:00Z`;
      const utcUntil = until.includes('+') ? `${DAY}T14:30:00Z` : `${until}:00Z`;
      const wanted = inRange(hits, utcSince, utcUntil);
      expect(doc.summary).toMatchObject({
        files: misc.length,
        requests: wanted.length,
        objectsOutOfRange: 0,
        requestsOutOfRange: hits.length - wanted.length,
      });
      expect(doc.decisions.map((d: { key: string }) => d.key)).toEqual(keys);
      const expected = await oracle(wanted);
      expect(doc.clients).toEqual(expected.clients);
      expect(doc.decisions).toEqual(expected.decisions);
    }
  });

  it('takes a date as its midnight, UTC', async () => {
    const doc = await replayJson(['--since', '2024-05-02', `s3://${BUCKET}/`]);
    // Only the rejected line is left: it has no time to filter by.
    expect(doc.summary).toMatchObject({ requests: 0, lines: 1, rejected: 1 });
    expect(doc.summary.objectsOutOfRange).toBe(OBJECTS.filter((o) => o.keyed !== null).length);
  });

  it('rejects a bad time, and a range that ends before it starts, with exit 2', async () => {
    const bad = await edgeban(['replay', '--threshold', '5', '--since', 'yesterday', 's3://x/']);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe(
      'edgeban: --since must be a date or an ISO time like 2024-05-01 or 2024-05-01T10:30Z, got yesterday\n',
    );
    const feb30 = await edgeban(['replay', '--threshold', '5', '--until', '2024-02-30', 's3://x/']);
    expect(feb30.code).toBe(2);
    const backwards = await edgeban([
      'replay',
      '--threshold',
      '5',
      '--since',
      '2024-05-01T12:00Z',
      '--until',
      '2024-05-01T11:00Z',
      's3://x/',
    ]);
    expect(backwards.code).toBe(2);
    expect(backwards.err).toMatch(/^edgeban: --since must be before --until/);
  });
});

describe('runReplay downloads', () => {
  /** Remote sources that record how many downloads run at once. */
  function counted(n: number) {
    const state = { open: 0, max: 0, opened: [] as number[] };
    const sources: Source[] = Array.from({ length: n }, (_, i) => ({
      name: `s3://b/${i}.log`,
      size: 100,
      remote: true,
      async open() {
        state.open++;
        state.max = Math.max(state.max, state.open);
        state.opened.push(i);
        await new Promise((r) => setImmediate(r));
        const body = Readable.from([
          Buffer.from(
            cloudFrontFile(burst(`198.51.100.${(i % 5) + 1}`, `${DAY}T10:0${i % 10}`, 3)),
          ),
        ]);
        body.on('close', () => state.open--);
        return body;
      },
    }));
    return { state, sources };
  }

  const config = parseConfig({ rules: [{ name: 'flood', threshold: 5, window: '5m' }] });

  it('keeps at most `concurrency` downloads in flight, and one with concurrency 1', async () => {
    const four = counted(40);
    const a = await runReplay(four.sources, config, { concurrency: 4, clients: true });
    expect(four.state.max).toBe(4);
    const one = counted(40);
    const b = await runReplay(one.sources, config, { concurrency: 1, clients: true });
    expect(one.state.max).toBe(1);
    expect(one.state.opened).toEqual([...Array(40).keys()]);
    expect(a.document).toEqual(b.document);
    expect(a.document.summary.files).toBe(40);
    expect(a.document.decisions.length).toBeGreaterThan(0);
  });

  it('reports objects, bytes and lines to the progress bar, with the same document', async () => {
    const big = cloudFrontFile(
      Array.from({ length: 20_000 }, (_, i) => ({
        ip: `203.0.113.${(i % 200) + 1}`,
        at: atMinute(600 + (i % 60), i % 60),
      })),
    );
    const sources = (): Source[] =>
      ['a', 'b'].map((name) => ({
        name: `s3://b/${name}.gz`,
        size: Buffer.byteLength(big),
        remote: true,
        open: async () => Readable.from([gzipSync(big)]),
      }));
    const seen = {
      start: [] as number[][],
      bytes: 0,
      files: [] as number[][],
      lines: [] as number[],
    };
    const progress = {
      start: (total: number, files: number) => seen.start.push([total, files]),
      bytes: (n: number) => {
        seen.bytes += n;
      },
      file: (done: number, lines: number) => seen.files.push([done, lines]),
      lines: (total: number) => seen.lines.push(total),
      stop: () => {},
    };
    const shown = await runReplay(sources(), config, { progress });
    const plain = await runReplay(sources(), config);
    expect(shown.document).toEqual(plain.document);
    expect(seen.start).toEqual([[2 * Buffer.byteLength(big), 2]]);
    expect(seen.bytes).toBe(2 * gzipSync(big).length);
    expect(seen.files).toEqual([
      [1, 20_000],
      [2, 40_000],
    ]);
    // While reading: every 8192 requests, counting on from the objects before.
    expect(seen.lines).toEqual([8192, 16384, 28192, 36384]);
  });
});
