/**
 * Per-object count items and the count-bound items of the state table
 * (layout in `lambda/shared/schema.ts`).
 *
 * Exactness without transactions: each object writes its own items, one per
 * (rule, key, hour), keyed by the object's id. A redelivered or racing copy
 * of the object rewrites the same values, so the sum over a pair's items is
 * exact whatever the delivery order or count. Readers sum the items of the
 * hours they need with a strongly consistent Query.
 */
import { createHash } from 'node:crypto';
import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Series } from '../core/decide';
import { TABLE } from '../shared/contract';
import { BOUND_BUCKETS, boundKey, countsPk, countsRange, countsSk } from '../shared/schema';

/** Base error of this module. */
export class CountsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CountsError';
  }
}

/** DynamoDB's BatchWriteItem limit. */
export const BATCH_WRITE_MAX = 25;
/** DynamoDB's BatchGetItem limit. */
const BATCH_GET_MAX = 100;
/** Attempts at items DynamoDB left unprocessed before giving up. */
const UNPROCESSED_ATTEMPTS = 8;

/** Full-jitter backoff delay in ms for a 0-based attempt. */
export function backoffMs(attempt: number, baseMs = 25, capMs = 2000): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Maps `items` through `fn` with at most `limit` calls in flight; results
 * keep the input order. The first rejection rejects the whole call once the
 * calls in flight have settled.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed: { err: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failed === null && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== null) throw (failed as { err: unknown }).err;
  return out;
}

/**
 * The short id of one object version, used in its count items' sort keys:
 * 16 hex digits (64 bits) of SHA-256 over bucket, key and ETag.
 */
export function objectId(bucket: string, key: string, etag: string): string {
  return createHash('sha256')
    .update(`${bucket}\n${key}\n${etag.replace(/"/g, '')}`)
    .digest('hex')
    .slice(0, 16);
}

/** One hour's slice of a series. */
export interface HourSlice {
  /** Epoch hour (`floor(minute / 60)`). */
  readonly hour: number;
  readonly minutes: number[];
  readonly counts: number[];
}

/** Splits an ascending series into its hours. */
export function splitByHour(series: Series): HourSlice[] {
  const out: HourSlice[] = [];
  let current: HourSlice | null = null;
  for (let i = 0; i < series.minutes.length; i++) {
    const m = series.minutes[i]!;
    const hour = Math.floor(m / 60);
    if (current === null || current.hour !== hour) {
      current = { hour, minutes: [], counts: [] };
      out.push(current);
    }
    current.minutes.push(m);
    current.counts.push(series.counts[i]!);
  }
  return out;
}

/**
 * The count items of one pair for one object.
 *
 * @param exp epoch seconds after which an hour's item can no longer matter
 */
export function countItems(
  rule: string,
  key: string,
  series: Series,
  objectIdText: string,
  exp: (hour: number) => number,
): Record<string, unknown>[] {
  const pk = countsPk(rule, key);
  return splitByHour(series).map((s) => ({
    [TABLE.partitionKey]: pk,
    [TABLE.sortKey]: countsSk(s.hour, objectIdText),
    m: s.minutes,
    c: s.counts,
    [TABLE.expiresAt]: exp(s.hour),
  }));
}

/**
 * Writes items with BatchWriteItem, 25 per request, `concurrency` requests
 * in flight, retrying what DynamoDB leaves unprocessed with full-jitter
 * backoff.
 *
 * @returns the number of item writes sent (retries of unprocessed items included)
 * @throws CountsError when items stay unprocessed after the retries
 */
export async function putItems(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  items: readonly Record<string, unknown>[],
  concurrency = 16,
): Promise<number> {
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += BATCH_WRITE_MAX) {
    chunks.push(items.slice(i, i + BATCH_WRITE_MAX));
  }
  const sent = await mapLimit(chunks, concurrency, async (chunk) => {
    let requests = chunk.map((Item) => ({ PutRequest: { Item } }));
    let writes = 0;
    for (let attempt = 0; ; attempt++) {
      writes += requests.length;
      const res = await ddb.send(
        new BatchWriteCommand({ RequestItems: { [tableName]: requests } }),
      );
      const left = res.UnprocessedItems?.[tableName] ?? [];
      if (left.length === 0) return writes;
      if (attempt + 1 >= UNPROCESSED_ATTEMPTS) {
        throw new CountsError(`${left.length} items stayed unprocessed in table ${tableName}`);
      }
      requests = left as typeof requests;
      await sleep(backoffMs(attempt));
    }
  });
  return sent.reduce((a, b) => a + b, 0);
}

/** A pair's merged counts and what reading them cost. */
export interface PairSeries extends Series {
  readonly minutes: number[];
  readonly counts: number[];
  /** Items read. */
  readonly items: number;
}

/**
 * Sums a pair's count items over every object into one ascending series of
 * the minutes `fromMinute`..`toMinute` (inclusive). Strongly consistent:
 * items written before the call started are all seen.
 */
export async function readPairSeries(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  rule: string,
  key: string,
  fromMinute: number,
  toMinute: number,
): Promise<PairSeries> {
  const range = countsRange(fromMinute, toMinute);
  const sums = new Map<number, number>();
  let items = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const res = await ddb.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
        ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey },
        ExpressionAttributeValues: {
          ':pk': countsPk(rule, key),
          ':from': range.from,
          ':to': range.to,
        },
        ProjectionExpression: 'm, c',
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    for (const item of res.Items ?? []) {
      items++;
      const m = item.m as number[] | undefined;
      const c = item.c as number[] | undefined;
      if (!Array.isArray(m) || !Array.isArray(c) || m.length !== c.length) {
        throw new CountsError(`malformed count item in ${countsPk(rule, key)}`);
      }
      for (let i = 0; i < m.length; i++) {
        const minute = m[i]!;
        if (minute < fromMinute || minute > toMinute) continue;
        sums.set(minute, (sums.get(minute) ?? 0) + c[i]!);
      }
    }
    start = res.LastEvaluatedKey;
  } while (start !== undefined);
  const minutes = [...sums.keys()].sort((a, b) => a - b);
  return { minutes, counts: minutes.map((m) => sums.get(m)!), items };
}

/** The bound bucket (0..255) of a counting key: FNV-1a of its text. */
export function boundBucket(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BOUND_BUCKETS;
}

/** Per-bucket request totals of one rule's time slot. */
export type BucketTotals = Map<number, number>;

/** One time slot of a rule's count bounds (see `boundKey` in the schema). */
export interface BoundSlot {
  readonly rule: string;
  readonly slotMinutes: number;
  /** `floor(minute / slotMinutes)`. */
  readonly slot: number;
}

/**
 * Adds one object's per-bucket totals to a rule's slot bound item (one
 * UpdateItem, atomic ADD). Not idempotent on purpose: a retried object
 * adds again, which only loosens the bound.
 */
export async function addBound(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  where: BoundSlot,
  totals: BucketTotals,
  exp: number,
): Promise<void> {
  const names: Record<string, string> = { '#exp': TABLE.expiresAt };
  const values: Record<string, number> = { ':exp': exp };
  const parts: string[] = [];
  for (const [b, n] of totals) {
    names[`#b${b}`] = `b${b}`;
    values[`:b${b}`] = n;
    parts.push(`#b${b} :b${b}`);
  }
  if (parts.length === 0) return;
  await ddb.send(
    new UpdateCommand({
      TableName: tableName,
      Key: boundKey(where.rule, where.slotMinutes, where.slot),
      UpdateExpression: `ADD ${parts.join(', ')} SET #exp = :exp`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    }),
  );
}

/** `rule#slot` → bucket totals, as read by {@link readBounds}. */
export type BoundTable = Map<string, BucketTotals>;

/** The {@link BoundTable} key of a rule's slot (a rule has one slot length per config). */
export function boundId(rule: string, slot: number): string {
  return `${rule}#${slot}`;
}

/**
 * Reads the bound items of the given rule slots (strongly consistent,
 * BatchGetItem, unprocessed keys retried). Missing items read as empty.
 */
export async function readBounds(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  wanted: readonly BoundSlot[],
): Promise<BoundTable> {
  const out: BoundTable = new Map();
  const byKey = new Map<string, BoundSlot>();
  for (const w of wanted) {
    const k = boundKey(w.rule, w.slotMinutes, w.slot);
    byKey.set(`${k.pk}\n${k.sk}`, w);
    out.set(boundId(w.rule, w.slot), new Map());
  }
  const keys = [...byKey.values()].map((w) => boundKey(w.rule, w.slotMinutes, w.slot));
  for (let i = 0; i < keys.length; i += BATCH_GET_MAX) {
    let pending: Record<string, unknown>[] = keys
      .slice(i, i + BATCH_GET_MAX)
      .map((k) => ({ ...k }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= UNPROCESSED_ATTEMPTS) {
        throw new CountsError(`${pending.length} bound items stayed unread in table ${tableName}`);
      }
      if (attempt > 0) await sleep(backoffMs(attempt - 1));
      const res = await ddb.send(
        new BatchGetCommand({
          RequestItems: { [tableName]: { Keys: pending, ConsistentRead: true } },
        }),
      );
      for (const item of res.Responses?.[tableName] ?? []) {
        const w = byKey.get(`${item[TABLE.partitionKey]}\n${item[TABLE.sortKey]}`);
        if (w === undefined) continue;
        const totals = out.get(boundId(w.rule, w.slot))!;
        for (let b = 0; b < BOUND_BUCKETS; b++) {
          const v = item[`b${b}`];
          if (typeof v === 'number' && v > 0) totals.set(b, v);
        }
      }
      pending = (res.UnprocessedKeys?.[tableName]?.Keys ?? []) as Record<string, unknown>[];
    }
  }
  return out;
}
