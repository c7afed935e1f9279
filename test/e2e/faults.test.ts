import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLogs } from '../../cli/local';
import { parseConfig } from '../../lambda/core/config';
import type { LocalPipeline } from '../../local/pipeline';
import {
  cidrsOf,
  E2E_CONFIG,
  forbidden,
  pairsOf,
  replayJson,
  tempDir,
  writeAttackLogs,
  writeConfig,
} from './env';

let dir: { path: string; remove: () => void };
let logs: string;
let replay: Awaited<ReturnType<typeof replayJson>>;

beforeAll(async () => {
  dir = tempDir('faults');
  logs = join(dir.path, 'logs');
  mkdirSync(logs);
  writeAttackLogs(logs);
  replay = await replayJson(logs, writeConfig(dir.path, E2E_CONFIG));
});

afterAll(() => dir?.remove());

function peaks(
  list: readonly { key: string; rule: string; peak: number }[],
): Record<string, number> {
  return Object.fromEntries(list.map((d) => [`${d.key} ${d.rule}`, d.peak]));
}

describe('the local pipeline under at-least-once delivery and faults', () => {
  it('counts an object delivered three times (concurrently) once', async () => {
    let pipeline: LocalPipeline | undefined;
    const run = await runLogs(logs, parseConfig(E2E_CONFIG), {
      duplicates: 2,
      ingestConcurrency: 3,
      onReady: (p) => {
        pipeline = p;
      },
    });
    const stats = pipeline!.ingestQueue.stats();
    expect(stats.sent).toBe(5);
    expect(stats.delivered).toBeGreaterThanOrEqual(15);
    expect(pairsOf(run.document.blocks)).toEqual(pairsOf(replay.decisions));
    expect(peaks(run.document.blocks)).toEqual(peaks(replay.decisions));
    expect(run.document.summary).toMatchObject({
      objects: 5,
      requests: replay.summary.requests,
      rejected: replay.summary.rejected,
    });
    expect(run.document.ipSets).toEqual(cidrsOf(replay.decisions));
  });

  it('converges to the right IP sets with exact counts despite WAF, S3 and DynamoDB faults', async () => {
    let pipeline: LocalPipeline | undefined;
    const run = await runLogs(logs, parseConfig(E2E_CONFIG), {
      cloud: {
        proxies: ['s3', 'dynamodb'],
        seed: 5,
        waf: { faults: { lockConflictRate: 0.5, throttleRate: 0.2, seed: 9 } },
      },
      visibilityTimeoutMs: 10,
      maxReceiveCount: 10,
      onReady: (p) => {
        pipeline = p;
        // A connection reset in the middle of one object's body: the object must be read again whole.
        p.cloud.proxies.s3!.set({ match: { method: 'GET' }, resetAfterBytes: 512, once: true });
        p.cloud.proxies.dynamodb!.set([
          // Writes that fail outright, and writes that land but whose answer is lost.
          { match: { target: 'DynamoDB_20120810.PutItem' }, status: 500, probability: 0.08 },
          { match: { target: 'DynamoDB_20120810.BatchWriteItem' }, status: 500, probability: 0.08 },
          {
            match: { target: 'DynamoDB_20120810.UpdateItem' },
            resetAfterBytes: 0,
            probability: 0.15,
          },
          { match: { target: 'DynamoDB_20120810.PutItem' }, resetAfterBytes: 0, probability: 0.08 },
        ]);
      },
    });
    const p = pipeline!;
    // The faults happened: otherwise this test proves nothing.
    expect(p.cloud.proxies.s3!.stats().faults.reset).toBe(1);
    const ddbFaults = p.cloud.proxies.dynamodb!.stats().faults;
    expect(ddbFaults.error + ddbFaults.reset).toBeGreaterThan(3);
    const injected = p.cloud.waf.counters().injected;
    expect(injected.lockConflict).toBeGreaterThan(0);
    expect(injected.throttle).toBeGreaterThan(0);
    expect(p.ingestQueue.stats().failed).toBeGreaterThan(0);

    expect(run.deadLetters).toBe(0);
    expect(pairsOf(run.document.blocks)).toEqual(pairsOf(replay.decisions));
    expect(peaks(run.document.blocks)).toEqual(peaks(replay.decisions));
    expect(run.document.summary).toMatchObject({
      objects: 5,
      requests: replay.summary.requests,
      rejected: replay.summary.rejected,
      decisions: replay.decisions.length,
    });
    expect(run.document.ipSets).toEqual(cidrsOf(replay.decisions));
    expect(forbidden(p.cloud.waf.allAddressesEverSubmitted())).toEqual([]);
    // Every address WAF ever accepted is one the rules decided.
    const decided = [...cidrsOf(replay.decisions).IPV4, ...cidrsOf(replay.decisions).IPV6];
    expect(p.cloud.waf.allAddressesEverWritten().filter((a) => !decided.includes(a))).toEqual([]);
  });
});
