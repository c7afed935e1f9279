import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MinuteCounts } from '../../lambda/core/counter';
import {
  applyUnblock,
  blockSeconds,
  emptyPairState,
  endOfMinute,
  evaluateSeries,
  type PairState,
  type RuleTiming,
} from '../../lambda/core/decide';
import type { BlockConfig } from '../../lambda/core/types';

const HOUR = 3600;
const block: BlockConfig = {
  durationSeconds: 4 * HOUR,
  factor: 2,
  maxDurationSeconds: 7 * 24 * HOUR,
  forgetAfterSeconds: 30 * 24 * HOUR,
};
const T0 = 28_000_000; // an epoch minute in 2023

function seriesOf(entries: [number, number][]): MinuteCounts {
  const s = new MinuteCounts();
  for (const [m, c] of entries) s.add(m, c);
  return s.normalize();
}

function run(entries: [number, number][], rule: RuleTiming, cfg = block): PairState {
  const state = emptyPairState();
  evaluateSeries(seriesOf(entries), rule, cfg, state, { decisionTime: endOfMinute });
  return state;
}

describe('evaluateSeries', () => {
  const rule: RuleTiming = { threshold: 10, windowMinutes: 5, durationSeconds: 4 * HOUR };

  it('does not fire when the window sum equals the threshold', () => {
    const s = run([[T0, 10]], rule);
    expect(s.firstExceeded).toBeNull();
    expect(s.peak).toBe(10);
    expect(s.blocks).toEqual([]);
  });

  it('fires when the window sum exceeds the threshold, blocking from the end of the minute', () => {
    const s = run(
      [
        [T0, 6],
        [T0 + 4, 5],
      ],
      rule,
    );
    expect(s.firstExceeded).toBe((T0 + 4) * 60);
    expect(s.peak).toBe(11);
    expect(s.blocks).toEqual([
      { offence: 1, start: (T0 + 5) * 60, until: (T0 + 5) * 60 + 4 * HOUR },
    ]);
  });

  it('does not sum minutes that fell out of the window', () => {
    const s = run(
      [
        [T0, 6],
        [T0 + 5, 5],
      ],
      rule,
    );
    expect(s.firstExceeded).toBeNull();
    expect(s.peak).toBe(6);
  });

  it('blocks a persistent attacker again, for twice as long, once the block ends', () => {
    const entries: [number, number][] = [];
    for (let m = 0; m < 6 * 60; m++) entries.push([T0 + m, 20]);
    const s = run(entries, rule);
    expect(s.blocks.map((b) => b.offence)).toEqual([1, 2]);
    const second = s.blocks[1]!;
    expect(second.start).toBe(s.blocks[0]!.until + 60);
    expect(second.until - second.start).toBe(8 * HOUR);
  });

  it('starts again at offence 1 after forgetAfter', () => {
    const cfg = { ...block, forgetAfterSeconds: HOUR };
    const firstEnd = T0 + 240 + 1;
    const s = run(
      [
        [T0, 11],
        [firstEnd + 61, 11],
      ],
      rule,
      cfg,
    );
    expect(s.blocks.map((b) => b.offence)).toEqual([1, 1]);
  });

  it('keeps the offence count when the next firing is exactly forgetAfter after the end', () => {
    const cfg = { ...block, forgetAfterSeconds: HOUR };
    const end = (T0 + 1) * 60 + 4 * HOUR; // first block's end, a minute boundary
    const m2 = (end + HOUR) / 60;
    const s = run(
      [
        [T0, 11],
        [m2, 11],
      ],
      rule,
      cfg,
    );
    expect(s.blocks.map((b) => b.offence)).toEqual([1, 2]);
  });

  it('caps escalation at maxDuration', () => {
    expect(blockSeconds(4 * HOUR, 10, block)).toBe(7 * 24 * HOUR);
    expect(blockSeconds(90, 2, { ...block, factor: 1.5 })).toBe(135);
    expect(blockSeconds(91, 2, { ...block, factor: 1.5 })).toBe(136);
  });

  it('counts only minutes starting at or after an unblock', () => {
    const s = emptyPairState();
    evaluateSeries(seriesOf([[T0, 11]]), rule, block, s, { decisionTime: endOfMinute });
    const at = (T0 + 2) * 60 + 30;
    applyUnblock(s, at);
    expect(s.blocks[0]!.until).toBe(at);
    evaluateSeries(
      seriesOf([
        [T0, 11],
        [T0 + 2, 50],
        [T0 + 3, 5],
      ]),
      rule,
      block,
      s,
      { decisionTime: endOfMinute },
    );
    expect(s.blocks).toHaveLength(1);
    evaluateSeries(
      seriesOf([
        [T0, 11],
        [T0 + 2, 50],
        [T0 + 3, 11],
      ]),
      rule,
      block,
      s,
      { decisionTime: endOfMinute },
    );
    expect(s.blocks.map((b) => b.offence)).toEqual([1, 2]);
  });
});

/** Brute force: the window sum at each minute, straight from the definition. */
function bruteForce(entries: [number, number][], rule: RuleTiming): PairState {
  const counts = new Map<number, number>();
  for (const [m, c] of entries) counts.set(m, (counts.get(m) ?? 0) + c);
  const minutes = [...counts.keys()].sort((a, b) => a - b);
  const state = emptyPairState();
  for (const m of minutes) {
    let sum = 0;
    for (let k = m - rule.windowMinutes + 1; k <= m; k++) sum += counts.get(k) ?? 0;
    state.peak = Math.max(state.peak, sum);
    if (sum <= rule.threshold) continue;
    state.firstExceeded ??= m * 60;
    const last = state.blocks.at(-1);
    if (last && m * 60 < last.until) continue;
    const n = last && last.until >= m * 60 - block.forgetAfterSeconds ? last.offence + 1 : 1;
    const len = Math.floor(
      Math.min(block.maxDurationSeconds, rule.durationSeconds * block.factor ** (n - 1)),
    );
    state.blocks.push({ offence: n, start: (m + 1) * 60, until: (m + 1) * 60 + len });
  }
  return state;
}

describe('evaluateSeries against brute force', () => {
  it('equals the definition for any counts, in any arrival order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 30 })), {
          maxLength: 200,
        }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 600 }),
        (raw, window, threshold, durMinutes) => {
          const entries = raw.map(([m, c]) => [T0 + m, c] as [number, number]);
          const rule = { threshold, windowMinutes: window, durationSeconds: durMinutes * 60 };
          const s = new MinuteCounts();
          for (const [m, c] of entries) for (let i = 0; i < c; i++) s.add(m);
          const state = emptyPairState();
          evaluateSeries(s.normalize(), rule, block, state, { decisionTime: endOfMinute });
          expect(state).toEqual(bruteForce(entries, rule));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('MinuteCounts', () => {
  it('keeps memory proportional to distinct minutes when minutes alternate', () => {
    const s = new MinuteCounts();
    for (let i = 0; i < 100_000; i++) s.add(T0 + (i % 2 === 0 ? 1 : 0) + Math.floor(i / 1000));
    expect(s.minutes.length).toBeLessThan(400);
    s.normalize();
    expect(s.total()).toBe(100_000);
    expect(s.minutes.length).toBe(101);
  });
});
