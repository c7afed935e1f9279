/**
 * Replay inputs: files, directories (recursive) and `s3://bucket/prefix`,
 * resolved to a list of sources that open as byte streams.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { isUnreachable, oneLine, UnreachableError, UsageError } from './errors';

/** Default number of S3 objects downloaded ahead of the engine. */
export const DEFAULT_CONCURRENCY = 4;

/** One log object to replay. */
export interface Source {
  /** As the user gave it: a path, or `s3://bucket/key`. */
  readonly name: string;
  /** Size in bytes, when known. */
  readonly size: number;
  /** Opens the raw bytes (gzip or plain). */
  open(): Promise<Readable>;
  /**
   * Worth downloading ahead of the engine (an S3 object); a local file is
   * read when its turn comes.
   */
  readonly remote?: boolean;
}

/** Parses `s3://bucket/prefix`, or returns null for a local path. */
export function parseS3Url(input: string): { bucket: string; prefix: string } | null {
  if (!input.startsWith('s3://')) return null;
  const rest = input.slice(5);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1);
  if (bucket === '') throw new UsageError(`invalid S3 URL ${input}: no bucket`);
  return { bucket, prefix };
}

async function walk(path: string, out: Source[]): Promise<void> {
  const entries = await readdir(path, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) await walk(full, out);
    else if (entry.isFile()) out.push(await fileSource(full));
  }
}

async function fileSource(path: string): Promise<Source> {
  const info = await stat(path);
  return {
    name: path,
    size: info.size,
    open: async () => createReadStream(path, { highWaterMark: 256 * 1024 }),
  };
}

async function localSources(path: string): Promise<Source[]> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch {
    throw new UsageError(`no such file or directory: ${path}`);
  }
  if (!info.isDirectory()) return [await fileSource(path)];
  const out: Source[] = [];
  await walk(path, out);
  return out;
}

async function s3Sources(s3: S3Client, bucket: string, prefix: string): Promise<Source[]> {
  // The SDK loads only when an input is an S3 URL: local replays start without it.
  const { GetObjectCommand, ListObjectsV2Command, NoSuchBucket } = await import(
    '@aws-sdk/client-s3'
  );
  const out: Source[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const obj of page.Contents ?? []) {
        if (obj.Key === undefined || obj.Key.endsWith('/')) continue;
        const key = obj.Key;
        out.push({
          name: `s3://${bucket}/${key}`,
          size: obj.Size ?? 0,
          remote: true,
          open: async () => {
            const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
            return res.Body as Readable;
          },
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  } catch (err) {
    if (err instanceof NoSuchBucket || (err as { name?: string }).name === 'NoSuchBucket') {
      throw new UsageError(`no such bucket: ${bucket}`);
    }
    if (isUnreachable(err)) {
      throw new UnreachableError(`cannot reach S3 for s3://${bucket}/${prefix}: ${oneLine(err)}`);
    }
    throw new UsageError(`cannot list s3://${bucket}/${prefix}: ${oneLine(err)}`);
  }
  return out;
}

/**
 * Resolves every input to its sources, in input order (directories sorted
 * by name). Fails before anything is read when a path does not exist.
 *
 * @param s3 builds the S3 client on first use (only when an input is an S3 URL)
 */
export async function resolveInputs(
  inputs: string[],
  s3: () => S3Client | Promise<S3Client>,
): Promise<Source[]> {
  const groups: Source[][] = [];
  let client: S3Client | undefined;
  for (const input of inputs) {
    const url = parseS3Url(input);
    if (url === null) groups.push(await localSources(input));
    else {
      client ??= await s3();
      groups.push(await s3Sources(client, url.bucket, url.prefix));
    }
  }
  return groups.flat();
}

/**
 * A `--since`/`--until` range, epoch milliseconds on whole minutes: a
 * request counts when its minute starts at or after `since` and before
 * `until`. Null ends are open.
 */
export interface TimeRange {
  readonly since: number | null;
  readonly until: number | null;
}

const TIME_ARG =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Parses a `--since`/`--until` value: a date (`2024-05-01`, midnight UTC)
 * or an ISO time (`2024-05-01T10:30`, `2024-05-01T10:30:00Z`,
 * `2024-05-01T12:30+02:00`); without a zone it is UTC. Seconds are
 * dropped: the range is in whole minutes, like the engine's counts.
 * @returns epoch milliseconds at the start of the minute
 * @throws UsageError naming the option and the value
 */
export function parseTimeArg(text: string, option: string): number {
  const m = TIME_ARG.exec(text.trim());
  const bad = () =>
    new UsageError(
      `${option} must be a date or an ISO time like 2024-05-01 or 2024-05-01T10:30Z, got ${text}`,
    );
  if (m === null) throw bad();
  const [, y, mo, d, h, mi, sec, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(sec ?? 0);
  let ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(ms);
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw bad();
  }
  if (zone !== undefined && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offset = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2));
    if (Number(digits.slice(2)) > 59) throw bad();
    ms -= sign * offset * 60_000;
  }
  return Math.floor(ms / 60_000) * 60_000;
}

/** The time an object's key says it covers, epoch milliseconds: `[start, end)`. */
export interface KeySpan {
  readonly start: number;
  readonly end: number;
}

const HOUR_MS = 3_600_000;
const CLOUDFRONT_KEY = /\.(\d{4})-(\d{2})-(\d{2})-(\d{2})\.[^./]+(?:\.[^/]*)?$/;
const ELB_KEY = /_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z_[^/]*$/;

function utc(y: string, mo: string, d: string, h: string, mi = '00'): number | null {
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi));
  const t = new Date(ms);
  if (t.getUTCMonth() !== Number(mo) - 1 || t.getUTCDate() !== Number(d)) return null;
  if (Number(h) > 23 || Number(mi) > 59) return null;
  return ms;
}

/**
 * What an object's name says about the time of its requests, or null when
 * it says nothing:
 * - CloudFront (`DIST.YYYY-MM-DD-HH.unique.gz`): the hour the requests
 *   occurred in (late entries go to the file of their own hour).
 * - ALB and Classic ELB (`..._YYYYMMDDTHHMMZ_...`): the end of the 5 or
 *   60 minute interval. A request is logged when it ends but timed by when
 *   it was received, so the span reaches 2 hours back (long requests, 60
 *   minute intervals) and 5 minutes on (clock skew).
 * Only a pre-filter: the requests read are still filtered by their own time.
 */
export function keySpan(name: string): KeySpan | null {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const cf = CLOUDFRONT_KEY.exec(base);
  if (cf !== null) {
    const start = utc(cf[1]!, cf[2]!, cf[3]!, cf[4]!);
    return start === null ? null : { start, end: start + HOUR_MS };
  }
  const elb = ELB_KEY.exec(base);
  if (elb !== null) {
    const end = utc(elb[1]!, elb[2]!, elb[3]!, elb[4]!, elb[5]!);
    return end === null ? null : { start: end - 2 * HOUR_MS, end: end + 5 * 60_000 };
  }
  return null;
}

/** Whether a range restricts anything. */
export function isBounded(range: TimeRange | undefined): range is TimeRange {
  return range !== undefined && (range.since !== null || range.until !== null);
}

/**
 * Drops the sources whose key time lies wholly outside the range; sources
 * whose name carries no time are kept (their requests are filtered by log
 * time).
 */
export function filterByKeyTime(
  sources: Source[],
  range: TimeRange,
): { kept: Source[]; outside: number } {
  const kept: Source[] = [];
  let outside = 0;
  for (const source of sources) {
    const span = keySpan(source.name);
    const out =
      span !== null &&
      ((range.until !== null && span.start >= range.until) ||
        (range.since !== null && span.end <= range.since));
    if (out) outside++;
    else kept.push(source);
  }
  return { kept, outside };
}
