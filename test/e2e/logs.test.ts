import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLogs } from '../../cli/local';
import { parseConfig } from '../../lambda/core/config';
import type { LocalPipeline } from '../../local/pipeline';
import { corpusPresent, SAMPLES } from '../fixtures/corpus';
import {
  cidrsOf,
  cli,
  E2E_CONFIG,
  forbidden,
  pairsOf,
  type ReplayDecision,
  replayJson,
  T0,
  tempDir,
  writeAttackLogs,
  writeConfig,
} from './env';

/** Real log samples of every format, read in place. */
const HAVE_CORPUS = corpusPresent('local --logs on the shared corpus');

let dir: { path: string; remove: () => void };
let logs: string;
let configPath: string;
let replay: Awaited<ReturnType<typeof replayJson>>;

beforeAll(async () => {
  dir = tempDir('logs');
  logs = join(dir.path, 'logs');
  mkdirSync(logs);
  writeAttackLogs(logs);
  configPath = writeConfig(dir.path, E2E_CONFIG);
  replay = await replayJson(logs, configPath);
});

afterAll(() => dir?.remove());

function peaks(
  list: readonly { key: string; rule: string; peak: number }[],
): Record<string, number> {
  return Object.fromEntries(list.map((d) => [`${d.key} ${d.rule}`, d.peak]));
}

describe('edgeban local --logs', () => {
  it('decides exactly the (key, rule) pairs replay decides, and WAF holds exactly their keys', async () => {
    // The fixture is meant to fire every rule: check it does, so the comparison means something.
    expect(pairsOf(replay.decisions)).toEqual([
      '192.0.2.7 flood',
      '198.51.100.66 probes',
      '2001:db8:bad:1::/64 login',
      '203.0.113.0/24 subnet',
    ]);
    const r = await cli(['local', '--logs', logs, '--config', configPath, '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(Object.keys(doc)).toEqual(['ipSets', 'blocks', 'summary']);
    expect(pairsOf(doc.blocks)).toEqual(pairsOf(replay.decisions));
    expect(peaks(doc.blocks)).toEqual(peaks(replay.decisions));
    expect(doc.ipSets).toEqual({
      IPV4: ['192.0.2.7/32', '198.51.100.66/32', '203.0.113.0/24'],
      IPV6: ['2001:db8:bad:1::/64'],
    });
    expect(doc.ipSets).toEqual(cidrsOf(replay.decisions));
    expect(doc.summary).toEqual({
      objects: 5,
      requests: replay.summary.requests,
      rejected: 1,
      decisions: 4,
      wafUpdates: doc.summary.wafUpdates,
    });
    // At most one update per set per reconcile, and both versions had something to add.
    expect(doc.summary.wafUpdates).toBeGreaterThanOrEqual(2);
    expect(replay.summary.rejected).toBe(1);
  });

  it('orders blocks as replay orders decisions, ends them from the clock at the latest log minute, and submits no guarded address', async () => {
    let pipeline: LocalPipeline | undefined;
    const run = await runLogs(logs, parseConfig(E2E_CONFIG), { onReady: (p) => (pipeline = p) });
    // The logs run 10:00 to 10:09: the clock starts at the end of 10:09, every block starts then.
    expect(run.clockStart).toBe(T0 + 10 * 60_000);
    const until = new Date(T0 + 10 * 60_000 + 4 * 3600_000).toISOString().replace('.000Z', 'Z');
    for (const b of run.document.blocks) expect(b.blockedUntil).toBe(until);
    const replayOrder = replay.decisions.map((d: ReplayDecision) => `${d.key} ${d.rule}`);
    expect(run.document.blocks.map((b) => `${b.key} ${b.rule}`)).toEqual(replayOrder);
    expect(run.deadLetters).toBe(0);
    expect(run.skipped).toBe(1);
    const submitted = pipeline!.cloud.waf.allAddressesEverSubmitted();
    expect(submitted.length).toBeGreaterThan(0);
    expect(forbidden(submitted)).toEqual([]);
  });

  it('keeps WAF empty in observe mode and still records the decisions', async () => {
    const run = await runLogs(logs, parseConfig({ ...E2E_CONFIG, mode: 'observe' }));
    expect(run.document.ipSets).toEqual({ IPV4: [], IPV6: [] });
    expect(run.document.summary.wafUpdates).toBe(0);
    expect(pairsOf(run.document.blocks)).toEqual(pairsOf(replay.decisions));
  });

  it('prints a summary and tables in text mode', async () => {
    const r = await cli(['local', '--logs', logs, '--config', configPath]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/5 objects from .* through the local pipeline/);
    expect(r.out).toMatch(/203\.0\.113\.0\/24\s+subnet\s+300\s+2024-05-01T14:10:00Z/);
    expect(r.out).toMatch(/IPV6\s+2001:db8:bad:1::\/64/);
  });

  it.runIf(HAVE_CORPUS)(
    'equals replay on the shared corpus of real log samples (every format, skipped files, rejected lines)',
    async () => {
      const config = writeConfig(
        dir.path,
        {
          rules: [
            { name: 'flood', threshold: 2000, window: '5m' },
            { name: 'login', threshold: 20, window: '5m', method: 'POST', path: '/login' },
            { name: 'probes', threshold: 50, window: '1m', status: ['4xx'] },
          ],
        },
        'corpus.json',
      );
      const expected = await replayJson(SAMPLES, config);
      const r = await cli(['local', '--logs', SAMPLES, '--config', config, '--json']);
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.out);
      expect(expected.decisions.length).toBeGreaterThan(0);
      expect(
        doc.blocks.map((b: { key: string; rule: string; peak: number }) => [b.key, b.rule, b.peak]),
      ).toEqual(expected.decisions.map((d) => [d.key, d.rule, d.peak]));
      expect(doc.ipSets).toEqual(cidrsOf(expected.decisions));
      expect(doc.summary).toMatchObject({
        objects: expected.summary.files,
        requests: expected.summary.requests,
        rejected: expected.summary.rejected,
      });
    },
  );

  it('exits 2 with one line when the directory does not exist', async () => {
    const r = await cli(['local', '--logs', join(dir.path, 'missing'), '--config', configPath]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^edgeban: no such file or directory: .*missing\n$/);
  });

  it('exits 2 with one line when --config names a missing file', async () => {
    const r = await cli(['local', '--logs', logs, '--config', join(dir.path, 'nope.json')]);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });
});
