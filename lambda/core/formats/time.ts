/**
 * Byte-level timestamp decoding for the log parsers. Every function works on
 * a Buffer slice, allocates nothing and returns an epoch minute (UTC,
 * floored) or -1 when the bytes are not a valid timestamp.
 */

/** Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digits(buf: Buffer, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = (buf[at + i] ?? 0) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** `YYYY-MM-DD` at `at` → days since epoch, or -1. */
export function parseDate(buf: Buffer, at: number): number {
  if (buf[at + 4] !== 45 || buf[at + 7] !== 45) return -1;
  const y = digits(buf, at, 4);
  const m = digits(buf, at + 5, 2);
  const d = digits(buf, at + 8, 2);
  if (y < 1970 || m < 1 || m > 12 || d < 1) return -1;
  const dim = DAYS_IN_MONTH[m - 1] ?? 0;
  if (d > dim) return -1;
  if (m === 2 && d === 29 && !(y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0))) return -1;
  return daysFromCivil(y, m, d);
}

/** `HH:MM:SS` at `at` → minute of day, or -1 (seconds are checked, then floored away). */
export function parseTimeOfDay(buf: Buffer, at: number): number {
  if (buf[at + 2] !== 58 || buf[at + 5] !== 58) return -1;
  const h = digits(buf, at, 2);
  const mi = digits(buf, at + 3, 2);
  const s = digits(buf, at + 6, 2);
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60) return -1;
  return h * 60 + mi;
}

/**
 * CloudFront `date` and `time` columns (`2019-12-04`, `21:02:31`) → epoch minute.
 * @param dateAt offset of the date column
 * @param dateEnd end of the date column (exclusive)
 * @param timeAt offset of the time column
 * @param timeEnd end of the time column (exclusive)
 */
export function minuteFromDateTime(
  buf: Buffer,
  dateAt: number,
  dateEnd: number,
  timeAt: number,
  timeEnd: number,
): number {
  if (dateEnd - dateAt !== 10 || timeEnd - timeAt !== 8) return -1;
  const days = parseDate(buf, dateAt);
  if (days < 0) return -1;
  const mod = parseTimeOfDay(buf, timeAt);
  if (mod < 0) return -1;
  return days * 1440 + mod;
}

/**
 * ISO 8601 UTC timestamp as ALB and Classic ELB write it
 * (`2018-07-02T22:23:00.186641Z`, fraction optional, `Z` required) → epoch minute.
 */
export function minuteFromIso(buf: Buffer, start: number, end: number): number {
  if (end - start < 20 || buf[start + 10] !== 84 || buf[end - 1] !== 90) return -1;
  const days = parseDate(buf, start);
  if (days < 0) return -1;
  const mod = parseTimeOfDay(buf, start + 11);
  if (mod < 0) return -1;
  const rest = start + 19;
  if (rest !== end - 1) {
    if (buf[rest] !== 46 || rest + 1 >= end - 1) return -1;
    for (let i = rest + 1; i < end - 1; i++) {
      const c = buf[i] ?? 0;
      if (c < 48 || c > 57) return -1;
    }
  }
  return days * 1440 + mod;
}

/** Epoch minute → `YYYY-MM-DDTHH:MM:SSZ` of its start. */
export function formatMinute(minute: number): string {
  return formatSeconds(minute * 60);
}

/** Epoch seconds → `YYYY-MM-DDTHH:MM:SSZ`. */
export function formatSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
