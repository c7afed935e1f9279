/**
 * The pipeline clock. The handlers take `now: () => number` (epoch ms);
 * the local cloud runs them either on the real clock (`--serve`) or on a
 * simulated one that the scenario and `--logs` move by hand, so hours of
 * blocks and expiries play out in seconds.
 */

/** A source of the current time. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** The wall clock. */
export const realClock: Clock = { now: () => Date.now() };

/** Base error of this module. */
export class ClockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClockError';
  }
}

/**
 * A clock that moves only when told. It never goes backwards: the
 * pipeline's decisions assume a monotonic clock, as in Lambda.
 *
 * @example
 * const clock = new SimulatedClock(Date.UTC(2024, 4, 1, 10));
 * clock.advance(60_000);
 */
export class SimulatedClock implements Clock {
  private ms: number;

  /** @param startMs epoch milliseconds */
  constructor(startMs: number) {
    if (!Number.isFinite(startMs))
      throw new ClockError(`start must be a finite time, got ${startMs}`);
    this.ms = Math.floor(startMs);
  }

  now(): number {
    return this.ms;
  }

  /** Moves the clock forward by `ms` (>= 0). @returns the new time */
  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new ClockError(`advance takes a duration >= 0 ms, got ${ms}`);
    }
    this.ms += Math.floor(ms);
    return this.ms;
  }

  /** Sets the clock to `ms`, which must not be before now. @returns the new time */
  set(ms: number): number {
    if (!Number.isFinite(ms) || ms < this.ms) {
      throw new ClockError(`the clock does not go back: now ${this.ms}, asked ${ms}`);
    }
    this.ms = Math.floor(ms);
    return this.ms;
  }
}
