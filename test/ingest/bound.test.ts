import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MinuteCounts } from '../../lambda/core/counter';
import { maxWindowSum, pairBound } from '../../lambda/ingest/ingest';
import { boundSlotMinutes } from '../../lambda/shared/schema';
import { type BoundTable, boundBucket, boundId } from '../../lambda/state/counts';
import { T0 } from './env';

const KEYS = [
  '192.0.2.1',
  '192.0.2.2',
  '198.51.100.0/24',
  '2001:db8::/64',
  '203.0.113.9',
  '2001:db8:1::/48',
];

type Hit = { key: number; minute: number; n: number };

function seriesOf(hits: readonly Hit[], key: number): MinuteCounts {
  const s = new MinuteCounts();
  for (const h of hits) if (h.key === key) s.add(T0 + h.minute, h.n);
  return s.normalize();
}

function addTo(table: BoundTable, hits: readonly Hit[], slotMinutes: number): void {
  for (const h of hits) {
    const id = boundId('r', Math.floor((T0 + h.minute) / slotMinutes));
    let totals = table.get(id);
    if (totals === undefined) {
      totals = new Map();
      table.set(id, totals);
    }
    const b = boundBucket(KEYS[h.key]!);
    totals.set(b, (totals.get(b) ?? 0) + h.n);
  }
}

/** Brute force: the largest window sum over all objects at a minute the object touched, window-wise. */
function trueMax(all: readonly Hit[], own: MinuteCounts, key: number, w: number): number {
  const merged = seriesOf(all, key);
  const first = own.minutes[0]!;
  const last = own.minutes[own.minutes.length - 1]!;
  let best = 0;
  for (const m of merged.minutes) {
    if (m < first || m > last + w - 1) continue;
    let sum = 0;
    for (let i = 0; i < merged.minutes.length; i++) {
      const x = merged.minutes[i]!;
      if (x > m - w && x <= m) sum += merged.counts[i]!;
    }
    best = Math.max(best, sum);
  }
  return best;
}

const hit = fc.record({
  key: fc.integer({ min: 0, max: KEYS.length - 1 }),
  minute: fc.integer({ min: 0, max: 240 }),
  n: fc.integer({ min: 1, max: 5 }),
});

describe('pairBound', () => {
  it('is never below a window sum the object could complete', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(hit, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 400 }),
        (objects, w) => {
          const slot = boundSlotMinutes(w);
          const all = objects.flat();
          const bounds: BoundTable = new Map();
          addTo(bounds, all, slot);
          for (const hits of objects) {
            const own: BoundTable = new Map();
            addTo(own, hits, slot);
            for (let k = 0; k < KEYS.length; k++) {
              const series = seriesOf(hits, k);
              if (series.minutes.length === 0) continue;
              const bound = pairBound(series, w, boundBucket(KEYS[k]!), 'r', bounds, own);
              expect(bound).toBeGreaterThanOrEqual(trueMax(all, series, k, w));
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("is the object's own largest window sum when no other object counted", () => {
    const hits: Hit[] = [
      { key: 0, minute: 0, n: 4 },
      { key: 0, minute: 3, n: 5 },
      { key: 0, minute: 9, n: 2 },
      { key: 1, minute: 1, n: 50 },
    ];
    const table: BoundTable = new Map();
    addTo(table, hits, 10);
    const series = seriesOf(hits, 0);
    expect(maxWindowSum(series, 5)).toBe(9);
    expect(pairBound(series, 5, boundBucket(KEYS[0]!), 'r', table, table)).toBe(9);
  });

  it('adds what other objects counted in the bucket over the slots the windows reach', () => {
    const mine: Hit[] = [{ key: 0, minute: 59, n: 3 }];
    const other: Hit[] = [
      { key: 0, minute: 63, n: 4 },
      { key: 0, minute: 75, n: 50 },
      { key: 0, minute: 200, n: 100 },
    ];
    const own: BoundTable = new Map();
    addTo(own, mine, 10);
    const all: BoundTable = new Map();
    addTo(all, [...mine, ...other], 10);
    const series = seriesOf(mine, 0);
    // Windows of minute 59 cover minutes 55..63: the 10-minute slots 50-59 and 60-69 only.
    expect(pairBound(series, 5, boundBucket(KEYS[0]!), 'r', all, own)).toBe(7);
  });
});
