/**
 * Durations as the config writes them: a positive integer and one unit,
 * `s`, `m`, `h` or `d` (`90s`, `5m`, `4h`, `7d`). Values are whole seconds.
 */

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses `90s`, `5m`, `4h`, `7d` into seconds.
 * @returns seconds, or null when `text` is not a positive integer followed by one unit
 *   (no sign, spaces, fractions, leading zeros or compound forms like `1h30m`)
 * @example parseDuration('4h') // 14400
 */
export function parseDuration(text: string): number | null {
  if (typeof text !== 'string') return null;
  const m = /^([1-9][0-9]{0,9})([smhd])$/.exec(text);
  if (m === null) return null;
  const seconds = Number(m[1]) * (UNIT_SECONDS[m[2] ?? ''] ?? 0);
  return Number.isSafeInteger(seconds) ? seconds : null;
}

/**
 * Writes seconds in the largest unit that divides them exactly.
 * @example formatDuration(5400) // '90m'
 * @example formatDuration(14400) // '4h'
 * @throws RangeError when `seconds` is not a non-negative integer
 */
export function formatDuration(seconds: number): string {
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new RangeError(`duration must be a non-negative whole number of seconds, got ${seconds}`);
  }
  if (seconds === 0) return '0s';
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
