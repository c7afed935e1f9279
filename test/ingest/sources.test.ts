import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestObject, type ObjectReport } from '../../lambda/ingest/ingest';
import { realtimeDistributionOf } from '../../lambda/ingest/sources';
import { readPairSeries } from '../../lambda/state/counts';
import { burst, cloudFrontLog, config, deps, startEnv, T0, type TestEnv } from './env';

let env: TestEnv;
beforeAll(async () => {
  env = await startEnv();
});
afterAll(async () => {
  await env?.stop();
});

const RT = 'E2QWRUHAPOMQZL';
const cfg = config({
  rules: [{ name: 'flood', threshold: 10, window: '5m' }],
  realtime: { distributionIds: [RT] },
});

describe('one source per distribution', () => {
  it('skips standard log objects of a real-time distribution and counts the others', async () => {
    const table = await env.table();
    const d = deps(env, table, cfg, (T0 + 10) * 60_000);
    const body = cloudFrontLog(burst('192.0.2.7', T0, 8));
    const skipped = await ingestObject(
      d,
      await env.put(`cf/${RT}.2024-05-01-10.a1b2c3d4.gz`, body),
    );
    expect((skipped as ObjectReport).skipped).toBe(
      `distribution ${RT} is counted from its real-time logs`,
    );
    const v2 = await ingestObject(d, await env.put(`cf/${RT}/2024/05/01/10/part-1.log.gz`, body));
    expect((v2 as ObjectReport).skipped).not.toBeNull();
    const counted = await ingestObject(
      d,
      await env.put('cf/E1OTHEREXAMPLE.2024-05-01-10.a1.gz', body),
    );
    expect((counted as ObjectReport).skipped).toBeNull();
    const series = await readPairSeries(env.ddb, table, 'flood', '192.0.2.7', T0 - 5, T0 + 5);
    expect(series.counts).toEqual([8]);
  });
});

describe('realtimeDistributionOf', () => {
  it('reads the distribution from legacy names and v2 folders only', () => {
    expect(realtimeDistributionOf(`${RT}.2024-05-01-10.abc.gz`, [RT])).toBe(RT);
    expect(realtimeDistributionOf(`logs/${RT}/2024/05/01/10/x.gz`, [RT])).toBe(RT);
    expect(realtimeDistributionOf(`logs/X${RT}.2024-05-01-10.abc.gz`, [RT])).toBeNull();
    expect(realtimeDistributionOf(`logs/${RT}-old/x.gz`, [RT])).toBeNull();
    expect(realtimeDistributionOf(`${RT}.2024-05-01-10.abc.gz`, [])).toBeNull();
  });
});
