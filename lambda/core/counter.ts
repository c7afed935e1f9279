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

  /**
   * A series of one minute, or of two (in any order): arrays of exactly the
   * size needed, as most series never grow past that.
   */
  static two(m0: number, c0: number, m1?: number, c1 = 1): MinuteCounts {
    const s = new MinuteCounts();
    if (m1 === undefined) {
      s.minutes = [m0];
      s.counts = [c0];
    } else {
      s.minutes = [m0, m1];
      s.counts = [c0, c1];
      s.sorted = m0 < m1;
    }
    return s;
  }

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

/** Initial slots of a {@link PairTable} or a client table; both double as they fill. */
const INITIAL_SLOTS = 1024;

/** A copy of `from` in a typed array of `length` slots (zero-filled past the copy). */
export function grown<T extends Int32Array | Float64Array | Uint8Array>(
  from: T,
  length: number,
): T {
  const to = new (from.constructor as new (n: number) => T)(length);
  to.set(from);
  return to;
}

/**
 * Per-minute counts of every key of one rule, compact: most keys of a busy
 * site's log (one-page visitors, scanners passing by) hold one minute, so a
 * key's first minute and count live in typed arrays, and a
 * {@link MinuteCounts} is made only when a second minute arrives. Memory per
 * key is then the Map entry plus 20 bytes, not two JS arrays.
 */
export class PairTable {
  /** Key of each id. */
  private readonly keys: string[] = [];
  /** Ids of masked keys (CIDRs); a client's own address needs no lookup (see {@link fresh}). */
  private readonly ids = new Map<string, number>();
  private minute0 = new Int32Array(INITIAL_SLOTS);
  private count0 = new Float64Array(INITIAL_SLOTS);
  /** The key's series once it holds two minutes or more. */
  private readonly series: (MinuteCounts | undefined)[] = [];

  /** Keys held. */
  get size(): number {
    return this.keys.length;
  }

  /** The id of `key`, made on first use (ids count from 0 in first-use order). */
  id(key: string): number {
    const known = this.ids.get(key);
    if (known !== undefined) return known;
    const id = this.fresh(key);
    this.ids.set(key, id);
    return id;
  }

  /**
   * A new id for a key the caller knows is new and will look up by itself:
   * a client's own address at a full-length prefix, which the engine finds
   * through the client. Saves a Map entry per client.
   */
  fresh(key: string): number {
    const id = this.keys.length;
    if (id === this.minute0.length) {
      this.minute0 = grown(this.minute0, id * 2);
      this.count0 = grown(this.count0, id * 2);
    }
    this.keys.push(key);
    this.series.push(undefined);
    return id;
  }

  /** Adds `n` requests (default 1) at `minute` to the key with this id. */
  add(id: number, minute: number, n = 1): void {
    const s = this.series[id];
    if (s !== undefined) {
      s.add(minute, n);
      return;
    }
    const c = this.count0[id]!;
    if (c === 0) {
      this.minute0[id] = minute;
      this.count0[id] = n;
    } else if (this.minute0[id] === minute) {
      this.count0[id] = c + n;
    } else {
      this.series[id] = MinuteCounts.two(this.minute0[id]!, c, minute, n);
    }
  }

  /**
   * Every key with its counts, minutes ascending, in first-use order.
   * @param over only keys with more requests than this in all (a key whose
   *   total is at most a threshold can never pass it: decisions skip them)
   */
  *entries(over = 0): Generator<[string, MinuteCounts]> {
    const count0 = this.count0;
    const keys = this.keys;
    for (let id = 0; id < keys.length; id++) {
      const key = keys[id]!;
      const s = this.series[id];
      if (s !== undefined) {
        if (over === 0 || s.total() > over) yield [key, s.normalize()];
      } else if (count0[id]! > over) {
        yield [key, MinuteCounts.two(this.minute0[id]!, count0[id]!)];
      }
    }
  }
}
