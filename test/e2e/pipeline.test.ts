import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import { readHistory } from '../../lambda/state/blocks';
import { readPairState } from '../../lambda/state/pairs';
import { SimulatedClock } from '../../local/clock';
import { type LocalPipeline, type PipelineOptions, startPipeline } from '../../local/pipeline';
import { cloudFrontLog, type Hit } from '../../local/scenario';
import { burst, forbidden, MINUTE, T0 } from './env';

const started: LocalPipeline[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop()));
});

const RULES = {
  rules: [{ name: 'flood', threshold: 100, window: '5m' }],
  block: { duration: '10m', factor: 2, maxDuration: '1d', forgetAfter: '1d' },
};

async function pipelineAt(
  startMs: number,
  raw: Record<string, unknown> = RULES,
  extra: Partial<PipelineOptions> = {},
): Promise<{ pipeline: LocalPipeline; clock: SimulatedClock }> {
  const clock = new SimulatedClock(startMs);
  const pipeline = await startPipeline({
    config: parseConfig(raw),
    clock,
    sleep: async () => {},
    visibilityTimeoutMs: 10,
    ...extra,
  });
  started.push(pipeline);
  return { pipeline, clock };
}

let objectNo = 0;
/** Uploads hits as one gzipped CloudFront log object. */
async function deliver(pipeline: LocalPipeline, hits: Hit[]): Promise<void> {
  objectNo++;
  const key = `cloudfront/E2EXAMPLE.2024-05-01-10.${objectNo.toString(16).padStart(8, '0')}.gz`;
  await pipeline.upload(key, gzipSync(cloudFrontLog([...hits].sort((a, b) => a.at - b.at))));
}

function minutes(ip: string, from: number, to: number, perMinute: number): Hit[] {
  const out: Hit[] = [];
  for (let m = from; m < to; m++) out.push(...burst(ip, m, perMinute));
  return out;
}

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('the local pipeline', () => {
  it('puts attackers in the IP sets and takes them out once the clock passes expiry, with no new logs', async () => {
    const { pipeline, clock } = await pipelineAt(T0 + 5 * MINUTE);
    await deliver(pipeline, [
      ...minutes('192.0.2.7', 0, 5, 30),
      ...minutes('2001:db8:1::5', 0, 5, 30),
      ...minutes('198.51.100.9', 0, 5, 10),
    ]);
    await pipeline.settle();
    expect(pipeline.wafAddresses()).toEqual({ IPV4: ['192.0.2.7/32'], IPV6: ['2001:db8:1::/64'] });

    // Only the schedule runs from here on: a timer on real time, the clock moved by hand.
    pipeline.startSchedule(20);
    clock.set(T0 + 5 * MINUTE + 10 * MINUTE - 1000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(pipeline.wafAddresses().IPV4).toEqual(['192.0.2.7/32']);
    clock.set(T0 + 5 * MINUTE + 10 * MINUTE);
    await waitFor(() =>
      pipeline.runs.some((r) => r.trigger === 'schedule' && r.result.removed.length === 2),
    );
    expect(pipeline.wafAddresses()).toEqual({ IPV4: [], IPV6: [] });
    const events = await readHistory(pipeline.ddb, pipeline.tableName, '192.0.2.7');
    expect(events.map((e) => e.kind)).toEqual(['block', 'expire']);
    expect(forbidden(pipeline.cloud.waf.allAddressesEverSubmitted())).toEqual([]);
  });

  it('blocks a persistent attacker again as soon as the block ends, for twice as long', async () => {
    const { pipeline, clock } = await pipelineAt(T0);
    const inWaf: boolean[] = [];
    // A file per minute, delivered at the end of the minute, the reconciler run each minute.
    for (let m = 0; m < 16; m++) {
      clock.set(T0 + (m + 1) * MINUTE);
      await deliver(pipeline, [...burst('203.0.113.9', m, 40), ...burst('198.51.100.3', m, 5)]);
      await pipeline.settle();
      inWaf.push(pipeline.wafAddresses().IPV4.includes('203.0.113.9/32'));
    }
    const { state } = await readPairState(pipeline.ddb, pipeline.tableName, 'flood', '203.0.113.9');
    const s = T0 / 1000;
    // Fires at 10:02 (120 > 100), decided at 10:03; blocked 10m; the firing at 10:13 (start >= end) escalates.
    expect(state.blocks).toEqual([
      { offence: 1, start: s + 180, until: s + 180 + 600 },
      { offence: 2, start: s + 840, until: s + 840 + 1200 },
    ]);
    expect(inWaf).toEqual([
      false,
      false,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      true,
      true,
      true,
    ]);
    expect(state.peak).toBe(200);
  });

  it('records a removal in the console as an unblock and never re-adds it for old traffic', async () => {
    const { pipeline, clock } = await pipelineAt(T0 + 5 * MINUTE);
    await deliver(pipeline, minutes('192.0.2.7', 0, 5, 30));
    await pipeline.settle();
    const v4 = pipeline.ipSets.find((s) => s.version === 'IPV4')!;
    expect(pipeline.cloud.waf.ipSet({ id: v4.id }).addresses).toEqual(['192.0.2.7/32']);

    clock.advance(30_000);
    pipeline.cloud.waf.setAddresses({ id: v4.id }, []);
    const run = await pipeline.reconcileNow('schedule');
    expect(run.result.consoleUnblocks).toEqual(['192.0.2.7']);
    const events = await readHistory(pipeline.ddb, pipeline.tableName, '192.0.2.7');
    expect(events.map((e) => [e.kind, e.by])).toEqual([
      ['block', 'edgeban'],
      ['unblock', 'console'],
    ]);

    // Late logs of the minutes before the unblock arrive: they count toward nothing.
    await deliver(
      pipeline,
      minutes('192.0.2.7', 0, 5, 30).map((h) => ({ ...h, at: h.at + 1000 })),
    );
    await pipeline.settle();
    expect(pipeline.cloud.waf.ipSet({ id: v4.id }).addresses).toEqual([]);

    // New traffic after the unblock blocks it again, as a repeat offence.
    clock.set(T0 + 12 * MINUTE);
    await deliver(pipeline, minutes('192.0.2.7', 6, 11, 30));
    await pipeline.settle();
    expect(pipeline.cloud.waf.ipSet({ id: v4.id }).addresses).toEqual(['192.0.2.7/32']);
    const { state } = await readPairState(pipeline.ddb, pipeline.tableName, 'flood', '192.0.2.7');
    expect(state.blocks.map((b) => b.offence)).toEqual([1, 2]);
  });

  it('keeps an address a person added and keeps ours out once a person removed it', async () => {
    const { pipeline } = await pipelineAt(T0 + 5 * MINUTE);
    await deliver(pipeline, minutes('192.0.2.8', 0, 5, 30));
    await pipeline.settle();
    const v4 = pipeline.ipSets.find((s) => s.version === 'IPV4')!;
    pipeline.cloud.waf.setAddresses({ id: v4.id }, ['198.51.100.250/32']);
    await pipeline.settle();
    // Someone else's address stays; ours stays out.
    expect(pipeline.cloud.waf.ipSet({ id: v4.id }).addresses).toEqual(['198.51.100.250/32']);
  });
});
