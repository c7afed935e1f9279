import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import { Engine } from '../../lambda/core/engine';
import type { Decision } from '../../lambda/core/types';
import { albLine, CF_FIELDS, cloudFrontLine, type Hit } from '../cli/logs';

const CONFIG = parseConfig({
  rules: [
    { name: 'flood', threshold: 12, window: '5m' },
    { name: 'login', threshold: 3, window: '2m', method: 'POST', path: '/login' },
    { name: 'probes', threshold: 4, window: '1m', status: ['4xx'] },
    { name: 'nets', threshold: 15, window: '10m', ipv4Prefix: 24, ipv6Prefix: 48 },
  ],
  block: { duration: '20m', factor: 2, maxDuration: '2h', forgetAfter: '1h' },
});

const CLIENTS = [
  '198.51.100.7',
  '198.51.100.8',
  '203.0.113.9',
  '2001:db8::5',
  '2001:db8:0:1::9',
  '10.0.0.1',
];
const T0 = Date.UTC(2024, 4, 1, 10, 0) / 1000;

const hitArb: fc.Arbitrary<Hit> = fc.record({
  ip: fc.constantFrom(...CLIENTS),
  at: fc
    .integer({ min: 0, max: 45 * 60 - 1 })
    .map((s) => new Date((T0 + s) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')),
  method: fc.constantFrom('GET', 'POST'),
  path: fc.constantFrom('/', '/login', '/login/x', '/api'),
  status: fc.constantFrom(200, 304, 404, 403, 500),
});

function fileOf(hits: Hit[], format: 'cf' | 'alb', gzip: boolean): Buffer {
  const text =
    format === 'cf'
      ? `#Version: 1.0\n#Fields: ${CF_FIELDS}\n${hits.map(cloudFrontLine).join('\n')}\n`
      : `${hits.map(albLine).join('\n')}\n`;
  return gzip ? gzipSync(text) : Buffer.from(text);
}

async function decide(files: Buffer[]): Promise<Decision[]> {
  const engine = new Engine(CONFIG);
  for (const f of files) {
    const scan = await engine.scan(Readable.from([f]));
    expect(scan.rejected).toBe(0);
  }
  return engine.decisions();
}

describe('Engine', () => {
  it('decides the same whatever the file order, split and format', async () => {
    let decided = 0;
    let repeat = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(hitArb, { minLength: 100, maxLength: 600, size: 'max' }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom<'cf' | 'alb'>('cf', 'alb'), fc.boolean()), {
          minLength: 1,
          maxLength: 5,
        }),
        fc.infiniteStream(fc.nat()),
        async (hits, parts, picks) => {
          const whole = await decide([fileOf(hits, 'cf', false)]);
          const buckets: Hit[][] = parts.map(() => []);
          const it = picks[Symbol.iterator]();
          for (const h of hits) buckets[it.next().value % parts.length]!.push(h);
          const files = parts
            .map(([order, format, gzip], i) => ({ order, file: fileOf(buckets[i]!, format, gzip) }))
            .sort((a, b) => a.order - b.order)
            .map((x) => x.file);
          expect(await decide(files)).toEqual(whole);
          if (whole.length > 0) decided++;
          if (whole.some((d) => d.offences > 1)) repeat++;
        },
      ),
      { numRuns: 40 },
    );
    // The generated traffic is dense enough to fire and to re-offend.
    expect(decided).toBeGreaterThan(10);
    expect(repeat).toBeGreaterThan(0);
  });

  it('counts guarded clients as requests, toward no rule', async () => {
    const engine = new Engine(CONFIG);
    const hits = Array.from({ length: 50 }, () => ({ ip: '10.0.0.1', at: '2024-05-01T10:00:00Z' }));
    const scan = await engine.scan(Readable.from([fileOf(hits, 'cf', false)]));
    expect(scan.requests).toBe(50);
    expect(engine.clients()).toEqual([{ ip: '10.0.0.1', requests: 50 }]);
    expect(engine.decisions()).toEqual([]);
  });

  it('gives a masked key that overlaps the allowlist no decision', async () => {
    const config = parseConfig({
      rules: [{ name: 'nets', threshold: 2, window: '1m', ipv4Prefix: 24 }],
      allowlist: ['198.51.100.200'],
    });
    const engine = new Engine(config);
    const hits = Array.from({ length: 5 }, () => ({
      ip: '198.51.100.7',
      at: '2024-05-01T10:00:00Z',
    }));
    await engine.scan(Readable.from([fileOf(hits, 'cf', false)]));
    expect(engine.decisions()).toEqual([]);
  });

  it('counts requests before the live horizon as stale, toward no rule', async () => {
    const minMinute = T0 / 60 + 1;
    const engine = new Engine(CONFIG, { minMinute });
    const hits = [
      ...Array.from({ length: 20 }, () => ({ ip: '198.51.100.7', at: '2024-05-01T10:00:30Z' })),
      { ip: '198.51.100.7', at: '2024-05-01T10:01:00Z' },
    ];
    const scan = await engine.scan(Readable.from([fileOf(hits, 'cf', false)]));
    expect(scan.requests).toBe(21);
    expect(engine.stale).toBe(20);
    expect(engine.decisions()).toEqual([]);
  });

  it('decides and counts the same when split engines absorb each other', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(hitArb, { minLength: 50, maxLength: 400 }),
        fc.integer({ min: 2, max: 4 }),
        fc.infiniteStream(fc.nat()),
        async (hits, n, picks) => {
          const whole = new Engine(CONFIG);
          await whole.scan(Readable.from([fileOf(hits, 'cf', false)]));
          const parts: Hit[][] = Array.from({ length: n }, () => []);
          const it = picks[Symbol.iterator]();
          for (const h of hits) parts[it.next().value % n]!.push(h);
          const merged = new Engine(CONFIG);
          for (const part of parts) {
            const e = new Engine(CONFIG);
            await e.scan(Readable.from([fileOf(part, 'alb', true)]));
            // As a worker thread would hand it over.
            merged.absorb(structuredClone(e.state()));
          }
          expect(merged.decisions()).toEqual(whole.decisions());
          expect(merged.clients()).toEqual(whole.clients());
          const pairs = (e: Engine) =>
            [...e.pairs()]
              .map((p) => ({ r: p.ruleIndex, key: p.key, m: p.counts.minutes, c: p.counts.counts }))
              .sort((a, b) => a.r - b.r || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
          expect(pairs(merged)).toEqual(pairs(whole));
        },
      ),
      { numRuns: 30 },
    );
  });

  it('counts every client and minute exactly past the first thousand clients', async () => {
    const config = parseConfig({
      rules: [
        { name: 'flood', threshold: 3, window: '2m' },
        { name: 'nets', threshold: 40, window: '5m', ipv4Prefix: 24, ipv6Prefix: 48 },
      ],
    });
    const hits: Hit[] = [];
    for (let i = 0; i < 5000; i++) {
      const c = (i * 7919) % 2600;
      const ip =
        c % 10 === 0 ? `2001:db8:${c + 100}::${1 + (i % 3)}` : `198.${(c >> 8) & 255}.${c & 255}.9`;
      const minute = (i * 31) % 40;
      hits.push({
        ip,
        at: new Date((T0 + minute * 60 + (i % 60)) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      });
    }
    const engine = new Engine(config);
    await engine.scan(Readable.from([fileOf(hits, 'cf', true)]));
    // Brute force: per client the requests, per (rule, key) the per-minute counts.
    const requests = new Map<string, number>();
    const series = new Map<string, Map<number, number>>();
    for (const h of hits) {
      requests.set(h.ip, (requests.get(h.ip) ?? 0) + 1);
      const minute = Math.floor(Date.parse(h.at) / 60000);
      const v4 = !h.ip.includes(':');
      const keys = [
        v4 ? `0 ${h.ip}` : `0 2001:db8:${h.ip.split(':')[2]}::/64`,
        v4
          ? `1 ${h.ip.split('.').slice(0, 3).join('.')}.0/24`
          : `1 2001:db8:${h.ip.split(':')[2]}::/48`,
      ];
      for (const k of keys) {
        const m = series.get(k) ?? new Map<number, number>();
        m.set(minute, (m.get(minute) ?? 0) + 1);
        series.set(k, m);
      }
    }
    expect(engine.clients().length).toBe(requests.size);
    for (const c of engine.clients()) expect(c.requests).toBe(requests.get(c.ip));
    const seen = [...engine.pairs()];
    expect(seen.length).toBe(series.size);
    for (const p of seen) {
      const want = [...series.get(`${p.ruleIndex} ${p.key}`)!].sort((a, b) => a[0] - b[0]);
      expect(p.counts.minutes).toEqual(want.map((e) => e[0]));
      expect(p.counts.counts).toEqual(want.map((e) => e[1]));
    }
  });
});
