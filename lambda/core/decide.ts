/**
 * Sliding windows, firing, peaks, blocks, offences and escalation
 * (DESIGN.md section 1). One implementation shared by replay, the live
 * pipeline and the tests' brute-force oracle comparisons.
 */
import type { BlockConfig, BlockRecord } from './types';

/** Per-minute counts of one (key, rule) pair, minutes strictly ascending, counts >= 1. */
export interface Series {
  readonly minutes: ArrayLike<number>;
  readonly counts: ArrayLike<number>;
}

/** The evolving state of one (key, rule) pair. */
export interface PairState {
  /** Largest window sum seen (0 when none). */
  peak: number;
  /** Epoch seconds of the start of the first minute it fired, or null. */
  firstExceeded: number | null;
  /** Blocks, oldest first. */
  blocks: BlockRecord[];
  /**
   * Epoch seconds of the latest unblock, or null: from then on only minutes
   * that start at or after it count.
   */
  countFrom: number | null;
}

/** The timing of one rule, as the evaluation needs it. */
export interface RuleTiming {
  readonly threshold: number;
  readonly windowMinutes: number;
  /** Base block duration in seconds (the rule's, else `block.duration`). */
  readonly durationSeconds: number;
}

/** Options of {@link evaluateSeries}. */
export interface EvaluateOptions {
  /** Decision time (epoch seconds) for a firing at `minute`: replay uses its end. */
  readonly decisionTime: (minute: number) => number;
  /** Only minutes for which this returns true may fire (the live pipeline's touched minutes). */
  readonly consider?: (minute: number) => boolean;
}

/** A fresh state for a pair that has never fired. */
export function emptyPairState(): PairState {
  return { peak: 0, firstExceeded: null, blocks: [], countFrom: null };
}

/** Replay's decision time: the end of the firing minute. */
export function endOfMinute(minute: number): number {
  return (minute + 1) * 60;
}

/**
 * Block length in seconds for offence `n`: min(maxDuration, duration x factor^(n-1)),
 * floored to whole seconds.
 */
export function blockSeconds(durationSeconds: number, n: number, block: BlockConfig): number {
  const scaled = durationSeconds * block.factor ** (n - 1);
  return Math.floor(Math.min(block.maxDurationSeconds, scaled));
}

/** The end (epoch seconds) of the pair's latest block, or null. */
export function blockedUntil(state: PairState): number | null {
  const last = state.blocks[state.blocks.length - 1];
  return last === undefined ? null : last.until;
}

/**
 * Walks a pair's minutes in order and applies the firing and block rules to
 * `state` in place. A firing at minute m happens when the requests in minutes
 * m-W+1 .. m number more than the threshold; it starts a block unless
 * start(m) is before the current block's end. Offence n continues the
 * previous block's count when that block ended at or after
 * start(m) - forgetAfter. Minutes before `state.countFrom` are not counted.
 *
 * @param series the pair's minutes and counts (ascending, deduplicated)
 * @returns the number of blocks created
 */
export function evaluateSeries(
  series: Series,
  rule: RuleTiming,
  block: BlockConfig,
  state: PairState,
  options: EvaluateOptions,
): number {
  const { minutes, counts } = series;
  const w = rule.windowMinutes;
  const firstCounted = state.countFrom === null ? -Infinity : Math.ceil(state.countFrom / 60);
  let created = 0;
  let sum = 0;
  let tail = 0;
  for (let i = 0; i < minutes.length; i++) {
    const m = minutes[i]!;
    if (m < firstCounted) {
      tail = i + 1;
      continue;
    }
    sum += counts[i]!;
    while (minutes[tail]! <= m - w) {
      sum -= counts[tail]!;
      tail++;
    }
    if (options.consider !== undefined && !options.consider(m)) continue;
    if (sum > state.peak) state.peak = sum;
    if (sum <= rule.threshold) continue;
    const start = m * 60;
    if (state.firstExceeded === null) state.firstExceeded = start;
    const last = state.blocks[state.blocks.length - 1];
    if (last !== undefined && start < last.until) continue;
    const n =
      last !== undefined && last.until >= start - block.forgetAfterSeconds ? last.offence + 1 : 1;
    const from = options.decisionTime(m);
    state.blocks.push({
      offence: n,
      start: from,
      until: from + blockSeconds(rule.durationSeconds, n, block),
    });
    created++;
  }
  return created;
}

/**
 * Ends every block of a pair at `at` (a manual or console unblock) and
 * makes later window sums count only minutes that start at or after `at`.
 */
export function applyUnblock(state: PairState, at: number): void {
  for (const b of state.blocks) if (b.until > at) b.until = Math.max(b.start, at);
  state.countFrom = state.countFrom === null ? at : Math.max(state.countFrom, at);
}
