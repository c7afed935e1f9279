/**
 * Measures what ingest costs in DynamoDB and time, against the local cloud:
 * `npx tsx test/ingest/measure-cost.ts [--lines 1000000] [--objects 1] [--split time|mix]
 * [--rules default|bench]`.
 *
 * Generates the bench's deterministic CloudFront log, puts it into local S3
 * as one object or split into several (`time`: consecutive lines, as one
 * edge writes them; `mix`: lines dealt round-robin, every object spanning
 * the whole hour), ingests every object, and prints the DynamoDB items
 * written and reads made per million log lines, plus the ingest time as a
 * ratio to bare streaming gunzip of the same objects from the same S3.
 * Not a test: absolute times here are noise, the ratios and counts are the
 * figures.
 */

import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { generateText } from '../../bench/generate';
import { parseConfig } from '../../lambda/core/config';
import { Engine } from '../../lambda/core/engine';
import { guardFor } from '../../lambda/core/guard';
import { ingestObject, type ObjectRef } from '../../lambda/ingest/ingest';
import { ensureTable } from '../../lambda/state/table';
import { startLocalCloud } from '../../local/cloud';

const args = new Map<string, string>();
for (let i = 2; i + 1 < process.argv.length; i += 2)
  args.set(process.argv[i]!.slice(2), process.argv[i + 1]!);
const lines = Number(args.get('lines') ?? 1_000_000);
const objects = Number(args.get('objects') ?? 1);
const split = args.get('split') ?? 'time';
const rules = args.get('rules') ?? 'default';

const START = Date.UTC(2024, 4, 1, 10, 0, 0) / 1000;
const config = parseConfig(
  rules === 'bench'
    ? {
        rules: [
          { name: 'flood', threshold: 2000, window: '5m' },
          { name: 'login', threshold: 20, window: '5m', method: 'POST', path: '/login' },
          { name: 'probes', threshold: 50, window: '1m', status: ['4xx'] },
        ],
      }
    : {},
);

/** Counts what the document client sends, by kind. */
function metered(inner: DynamoDBDocumentClient) {
  const stats = { itemWrites: 0, batchWriteCalls: 0, queries: 0, gets: 0, batchGetKeys: 0 };
  const send = inner.send.bind(inner);
  const proxy = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver);
      return async (command: {
        constructor: { name: string };
        input: { RequestItems?: Record<string, unknown> };
      }) => {
        const name = command.constructor.name;
        if (name === 'BatchWriteCommand') {
          stats.batchWriteCalls++;
          for (const list of Object.values(command.input.RequestItems ?? {}))
            stats.itemWrites += (list as unknown[]).length;
        } else if (name === 'PutCommand' || name === 'UpdateCommand' || name === 'DeleteCommand')
          stats.itemWrites++;
        else if (name === 'QueryCommand') stats.queries++;
        else if (name === 'GetCommand') stats.gets++;
        else if (name === 'BatchGetCommand') {
          for (const r of Object.values(command.input.RequestItems ?? {}))
            stats.batchGetKeys += (r as { Keys: unknown[] }).Keys.length;
        }
        return send(command as never);
      };
    },
  });
  return { client: proxy, stats };
}

async function main(): Promise<void> {
  const text = [...generateText({ format: 'cloudfront', lines, seed: 1, start: START })].join('');
  const all = text.split('\n');
  const header = all.filter((l) => l.startsWith('#'));
  const rows = all.filter((l) => l !== '' && !l.startsWith('#'));
  const parts: string[][] = Array.from({ length: objects }, () => []);
  rows.forEach((row, i) => {
    const o =
      split === 'mix'
        ? i % objects
        : Math.min(objects - 1, Math.floor((i * objects) / rows.length));
    parts[o]!.push(row);
  });

  const cloud = await startLocalCloud({ buckets: ['logs'] });
  try {
    const { s3, dynamodb } = cloud.clients();
    await ensureTable(dynamodb, 'cost');
    const doc = DynamoDBDocumentClient.from(dynamodb, {
      marshallOptions: { removeUndefinedValues: true },
    });
    const { client, stats } = metered(doc);
    const refs: ObjectRef[] = [];
    let bytes = 0;
    for (let o = 0; o < objects; o++) {
      const body = gzipSync(`${header.join('\n')}\n${parts[o]!.join('\n')}\n`);
      bytes += body.length;
      const key = `bench/${o}.gz`;
      const res = await s3.send(new PutObjectCommand({ Bucket: 'logs', Key: key, Body: body }));
      refs.push({
        bucket: 'logs',
        key,
        etag: (res.ETag ?? '').replace(/"/g, ''),
        size: body.length,
      });
    }

    const gunzipStart = process.hrtime.bigint();
    for (const ref of refs) {
      const res = await s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
      await pipeline(
        res.Body as NodeJS.ReadableStream,
        createGunzip(),
        new Writable({ write: (_c, _e, cb) => cb() }),
      );
    }
    const gunzipMs = Number(process.hrtime.bigint() - gunzipStart) / 1e6;

    // The engine alone over the same S3 bodies: what of the ingest time is parsing and counting.
    const scanStart = process.hrtime.bigint();
    for (const ref of refs) {
      const res = await s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
      await new Engine(config).scan(res.Body as Readable);
    }
    const scanMs = Number(process.hrtime.bigint() - scanStart) / 1e6;

    const now = (START + 62 * 60) * 1000;
    const deps = {
      s3,
      ddb: client,
      tableName: 'cost',
      config,
      guard: guardFor(config.allowlist),
      now: () => now,
      notifyReconciler: async () => {},
    };
    let pairs = 0;
    let evaluated = 0;
    let requests = 0;
    const cpu0 = process.cpuUsage();
    const ingestStart = process.hrtime.bigint();
    for (const ref of refs) {
      const r = await ingestObject(deps, ref);
      if (r.duplicate) throw new Error('unexpected duplicate');
      pairs += r.pairs;
      evaluated += r.evaluated;
      requests += r.requests;
    }
    const ingestMs = Number(process.hrtime.bigint() - ingestStart) / 1e6;
    const cpu = process.cpuUsage(cpu0);

    const perMillion = (n: number): number => Math.round((n * 1e6) / lines);
    console.log(
      JSON.stringify(
        {
          lines,
          requests,
          objects,
          split,
          rules: config.rules.map((r) => r.name),
          gzipBytes: bytes,
          pairs,
          evaluatedPairs: evaluated,
          dynamodb: { ...stats },
          perMillionLines: {
            itemWrites: perMillion(stats.itemWrites),
            queries: perMillion(stats.queries),
            gets: perMillion(stats.gets),
            batchGetKeys: perMillion(stats.batchGetKeys),
          },
          gunzipMs: Math.round(gunzipMs),
          scanMs: Math.round(scanMs),
          scanToGunzip: Number((scanMs / gunzipMs).toFixed(1)),
          ingestMs: Math.round(ingestMs),
          ingestToGunzip: Number((ingestMs / gunzipMs).toFixed(1)),
          ingestCpuMs: Math.round((cpu.user + cpu.system) / 1000),
          linesPerSecond: Math.round(lines / (ingestMs / 1000)),
        },
        null,
        2,
      ),
    );
  } finally {
    await cloud.stop();
  }
}

main().catch((err) => {
  console.error(String(err));
  process.exitCode = 1;
});
