/**
 * Figures of the local pipeline (not a test: run `npx tsx test/e2e/measure.ts [lines]`):
 * - put-object-to-IP-set latency on the real clock, as `--serve` runs it
 *   (PutObject through local S3 until the address is in the emulator's set;
 *   the schedule is off, so only the ingest's message can get it there);
 * - WAF calls per reconcile, from the emulator's call log, without and
 *   with 50% lock conflicts;
 * - ingest throughput of one big generated object through local S3 and
 *   DynamoDB, as a ratio to bare streaming gunzip of the same file.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { writeBenchFile } from '../../bench/generate';
import { BENCH_CONFIG } from '../../bench/measure';
import { parseConfig } from '../../lambda/core/config';
import { realClock, SimulatedClock } from '../../local/clock';
import { localClients } from '../../local/cloud';
import { startPipeline } from '../../local/pipeline';
import { cloudFrontLog } from '../../local/scenario';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function latency(rounds: number): Promise<void> {
  const p = await startPipeline({
    config: parseConfig({ rules: [{ name: 'flood', threshold: 20, window: '5m' }] }),
    clock: realClock,
  });
  const s3 = localClients(p.cloud.endpoints).s3;
  const samples: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const ip = `192.0.2.${i + 1}`;
      const now = Date.now();
      const hits = Array.from({ length: 30 }, (_, k) => ({ ip, at: now - 1000 - k * 10 })).sort(
        (a, b) => a.at - b.at,
      );
      const body = gzipSync(cloudFrontLog(hits));
      const t0 = performance.now();
      await s3.send(new PutObjectCommand({ Bucket: p.bucket, Key: `cf/live-${i}.gz`, Body: body }));
      while (!p.wafAddresses().IPV4.includes(`${ip}/32`)) {
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      samples.push(performance.now() - t0);
    }
  } finally {
    s3.destroy();
    await p.stop();
  }
  samples.sort((a, b) => a - b);
  console.log(
    `put-object-to-IP-set latency (real clock, ${rounds} objects): median ${percentile(samples, 50).toFixed(0)} ms, ` +
      `p90 ${percentile(samples, 90).toFixed(0)} ms, max ${samples[samples.length - 1]!.toFixed(0)} ms`,
  );
}

async function wafCalls(lockConflictRate: number): Promise<void> {
  const clock = new SimulatedClock(Date.UTC(2024, 4, 1, 10, 10));
  const p = await startPipeline({
    config: parseConfig({ rules: [{ name: 'flood', threshold: 20, window: '5m' }] }),
    clock,
    sleep: async () => {},
    cloud: { waf: { faults: { lockConflictRate, seed: 3 } } },
  });
  try {
    for (let i = 0; i < 20; i++) {
      const ip = i % 2 === 0 ? `192.0.2.${i + 1}` : `2001:db8:${i}::1`;
      const at = Date.UTC(2024, 4, 1, 10, 9);
      const hits = Array.from({ length: 30 }, (_, k) => ({ ip, at: at + k * 100 }));
      await p.upload(`cf/${i}.gz`, gzipSync(cloudFrontLog(hits)));
      await p.settle();
    }
  } finally {
    await p.stop();
  }
  const changed = p.runs.filter((r) => r.result.updates > 0);
  const idle = p.runs.filter((r) => r.result.updates === 0 && r.result.failedSets.length === 0);
  const avg = (runs: typeof p.runs): string =>
    (runs.reduce((n, r) => n + r.wafCalls, 0) / Math.max(1, runs.length)).toFixed(2);
  console.log(
    `WAF calls per reconcile (2 IP sets, lock conflicts ${lockConflictRate * 100}%): ` +
      `${avg(changed)} per run that updated (${changed.length} runs, ` +
      `${(changed.reduce((n, r) => n + r.result.updates, 0) / Math.max(1, changed.length)).toFixed(2)} updates each), ` +
      `${avg(idle)} per run with nothing to change (${idle.length} runs)`,
  );
}

async function throughput(lines: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeban-measure-'));
  const file = join(dir, 'cloudfront.log.gz');
  try {
    await writeBenchFile(file, { format: 'cloudfront', lines, seed: 1 });
    const body = await readFile(file);
    const t0 = performance.now();
    await streamPipeline(
      createReadStream(file),
      createGunzip(),
      new Writable({
        write(_chunk, _enc, cb) {
          cb();
        },
      }),
    );
    const gunzipMs = performance.now() - t0;
    const clock = new SimulatedClock(Date.UTC(2024, 4, 1, 11, 0));
    const p = await startPipeline({
      config: parseConfig(BENCH_CONFIG),
      clock,
      horizon: false,
      sleep: async () => {},
    });
    try {
      const t1 = performance.now();
      await p.upload('cf/big.gz', body);
      await p.ingestQueue.drain();
      const ingestMs = performance.now() - t1;
      const ledger = await p.ledger();
      console.log(
        `ingest of one ${(body.length / 1e6).toFixed(1)} MB gzip object (${ledger.requests} requests, 3 rules) ` +
          `through local S3 and dynalite: ${ingestMs.toFixed(0)} ms = ${(ingestMs / gunzipMs).toFixed(1)} x bare gunzip ` +
          `(${gunzipMs.toFixed(0)} ms), ${Math.round(ledger.requests / (ingestMs / 1000))} lines/s`,
      );
    } finally {
      await p.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const lines = Number(process.argv[2] ?? 200_000);
await latency(10);
await wafCalls(0);
await wafCalls(0.5);
await throughput(lines);
