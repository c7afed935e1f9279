/**
 * Per-minute request counts of one (key, rule) pair. Memory grows with the
 * distinct minutes, not with the requests: appends are cheap for the mostly
 * ordered minutes of a log file, and out-of-order minutes are merged.
 */
import type { Series } from './decide';

/** How far back an out-of-order minute is looked for before appending. */
const LOOKBACK = 4;

export class MinuteCounts implements Series {
  minutes: number[] = [];
  counts: number[] = [];
  private sorted = true;
  private compactAt = 64;

  /** Adds `n` requests (default 1) at `minute`. */
  add(minute: number, n = 1): void {
    const ms = this.minutes;
    const len = ms.length;
    const last = len - 1;
    if (last >= 0) {
      if (ms[last] === minute) {
        this.counts[last]! += n;
        return;
      }
      if (minute < ms[last]!) {
        const stop = Math.max(0, len - LOOKBACK);
        for (let i = last - 1; i >= stop; i--) {
          if (ms[i] === minute) {
            this.counts[i]! += n;
            return;
          }
        }
        this.sorted = false;
      }
    }
    ms.push(minute);
    this.counts.push(n);
    if (!this.sorted && ms.length >= this.compactAt) {
      this.normalize();
      this.compactAt = Math.max(64, this.minutes.length * 2);
    }
  }

  /** Total requests counted. */
  total(): number {
    let t = 0;
    for (const c of this.counts) t += c;
    return t;
  }

  /** Sorts the minutes ascending and merges duplicates; returns this. */
  normalize(): this {
    if (this.sorted) return this;
    const order = this.minutes.map((_, i) => i).sort((a, b) => this.minutes[a]! - this.minutes[b]!);
    const minutes: number[] = [];
    const counts: number[] = [];
    for (const i of order) {
      const m = this.minutes[i]!;
      const c = this.counts[i]!;
      if (minutes.length > 0 && minutes[minutes.length - 1] === m) {
        counts[counts.length - 1]! += c;
      } else {
        minutes.push(m);
        counts.push(c);
      }
    }
    this.minutes = minutes;
    this.counts = counts;
    this.sorted = true;
    return this;
  }
}
