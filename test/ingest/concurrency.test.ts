import { Readable } from 'node:stream';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../lambda/core/engine';
import { ingestObject, type ObjectRef } from '../../lambda/ingest/ingest';
import { mapLimit, readPairSeries } from '../../lambda/state/counts';
import { seededRandom } from '../../local/rng';
import { albLog, cloudFrontLog, config, deps, type Hit, startEnv, T0, type TestEnv } from './env';

let env: TestEnv;
beforeAll(async () => {
  env = await startEnv();
});
afterAll(async () => {
  await env?.stop();
});

const cfg = config({
  rules: [
    { name: 'flood', threshold: 30, window: '5m' },
    { name: 'login', threshold: 6, window: '5m', method: 'POST', path: '/login' },
    { name: 'net', threshold: 60, window: '10m', ipv4Prefix: 24, ipv6Prefix: 48 },
  ],
});

/** 200 small objects, CloudFront and ALB, clients spread over all of them, minutes crossing an hour. */
function objects(): { key: string; text: string; plain: boolean }[] {
  const rnd = seededRandom(20240501);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const ordinary: string[] = [];
  for (let i = 1; i <= 40; i++) ordinary.push(`192.0.2.${i}`, `198.51.100.${i}`);
  for (let i = 1; i <= 10; i++) ordinary.push(`2001:db8:${i}::${i}`);
  const heavy = ['203.0.113.5', '203.0.113.6', '203.0.113.77', '2001:db8:ff::1', '2001:db8:ff::2'];
  const out: { key: string; text: string; plain: boolean }[] = [];
  for (let o = 0; o < 200; o++) {
    const hits: Hit[] = [];
    const n = 8 + Math.floor(rnd() * 12);
    for (let i = 0; i < n; i++) {
      const ip = rnd() < 0.45 ? pick(heavy) : pick(ordinary);
      const login = rnd() < 0.12;
      hits.push({
        ip,
        minute: T0 + 45 + Math.floor(rnd() * 30),
        second: Math.floor(rnd() * 60),
        method: login ? 'POST' : 'GET',
        path: login ? '/login' : '/',
        status: rnd() < 0.05 ? 404 : 200,
      });
    }
    const alb = o % 3 === 0;
    out.push({
      key: `mix/${String(o).padStart(3, '0')}.${alb ? 'log' : 'gz'}`,
      text: alb ? albLog(hits) : cloudFrontLog(hits),
      plain: alb,
    });
  }
  return out;
}

describe('concurrent ingest', () => {
  // dynalite is single-threaded JavaScript: about 12 s idle, several times that on a busy machine.
  it('gives 8 concurrent ingests over 200 objects the counts and decisions of replay', async () => {
    const files = objects();
    const replay = new Engine(cfg);
    for (const f of files) await replay.scan(Readable.from([Buffer.from(f.text)]));
    const expected = replay.decisions();
    // The data must give the comparison something to compare.
    expect(new Set(expected.map((d) => d.rule))).toEqual(new Set(['flood', 'login', 'net']));

    const table = await env.table();
    const refs: ObjectRef[] = [];
    for (const f of files) refs.push(await env.put(f.key, f.text, f.plain));
    const now = (T0 + 95) * 60_000;
    const d = deps(env, table, cfg, now);
    const reports = await mapLimit(refs, 8, (ref) => ingestObject(d, ref));
    expect(reports.every((r) => !r.duplicate)).toBe(true);

    const states: { key: string; rule: string; peak: number }[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await env.ddb.send(
        new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }),
      );
      for (const item of res.Items ?? []) {
        if (String(item.pk).startsWith('PAIR#') && typeof item.firstExceeded === 'number') {
          states.push({ key: String(item.key), rule: String(item.rule), peak: Number(item.peak) });
        }
      }
      start = res.LastEvaluatedKey;
    } while (start !== undefined);
    const byId = (x: { key: string; rule: string }): string => `${x.rule} ${x.key}`;
    expect(states.map((s) => `${byId(s)} ${s.peak}`).sort()).toEqual(
      expected.map((e) => `${byId(e)} ${e.peak}`).sort(),
    );

    // Every pair's stored counts, summed over objects, equal replay's.
    for (const pair of replay.pairs()) {
      const rule = cfg.rules[pair.ruleIndex]!;
      const { minutes, counts } = pair.counts;
      const s = await readPairSeries(
        env.ddb,
        table,
        rule.name,
        pair.key,
        minutes[0]!,
        minutes[minutes.length - 1]!,
      );
      expect({ key: pair.key, minutes: s.minutes, counts: s.counts }).toEqual({
        key: pair.key,
        minutes,
        counts,
      });
    }
  }, 240_000);
});
