/**
 * Steps 3 to 6 of ingest (see `ingest.ts`), shared by every source of
 * counts: one source's per-(key, rule, minute) counts, keyed by the
 * source's id, merged into the state table; the windows they touched
 * evaluated; decisions and offences recorded; the reconciler told when
 * blocks changed. A source is an S3 log object (its id from bucket, key
 * and ETag) or a committed chunk of real-time records (its id from shard
 * and sequence range): rewriting a source's items with the same id is
 * harmless, so counts are exact however often a source is committed.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Series } from '../core/decide';
import { emptyPairState, evaluateSeries } from '../core/decide';
import { type Engine, ruleTiming } from '../core/engine';
import type { Guard } from '../core/guard';
import type { EdgebanConfig, Rule } from '../core/types';
import { activeKey, boundSlotMinutes, INGEST_STATUS_KEY } from '../shared/schema';
import { recordEvent } from '../state/blocks';
import {
  addBound,
  type BoundSlot,
  type BoundTable,
  type BucketTotals,
  boundBucket,
  boundId,
  countItems,
  mapLimit,
  putItems,
  readBounds,
  readPairSeries,
} from '../state/counts';
import { readPairState, updatePairState } from '../state/pairs';

/** What committing one source's counts works with. */
export interface CommitDeps {
  readonly ddb: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly config: EdgebanConfig;
  /** The pipeline clock, epoch milliseconds. */
  readonly now: () => number;
  /** Tells the reconciler that blocks were created or changed. */
  readonly notifyReconciler: () => Promise<void>;
  /**
   * DynamoDB requests in flight.
   * @default 16
   */
  readonly concurrency?: number;
}

/** What committing one source's counts did. */
export interface CommitReport {
  /** DynamoDB items written. */
  readonly writes: number;
  /** DynamoDB Query and Get calls. */
  readonly reads: number;
  /** (key, rule) pairs with counts. */
  readonly pairs: number;
  /** Pairs whose windows were queried and evaluated. */
  readonly evaluated: number;
  /** Blocks created. */
  readonly decisions: number;
}

/** Longest rule window in minutes. */
export function longestWindow(config: EdgebanConfig): number {
  let w = 1;
  for (const rule of config.rules) w = Math.max(w, rule.windowMinutes);
  return w;
}

/**
 * The first minute that still counts live: a minute that starts more than
 * the longest window plus `horizon` before `nowMs` is stale.
 */
export function horizonMinute(config: EdgebanConfig, nowMs: number): number {
  const limit = nowMs / 1000 - longestWindow(config) * 60 - config.horizonSeconds;
  return Math.ceil(limit / 60);
}

/** Largest sum of `windowMinutes` consecutive minutes of an ascending series. */
export function maxWindowSum(series: Series, windowMinutes: number): number {
  let best = 0;
  let sum = 0;
  let tail = 0;
  for (let i = 0; i < series.minutes.length; i++) {
    const m = series.minutes[i]!;
    sum += series.counts[i]!;
    while (series.minutes[tail]! <= m - windowMinutes) sum -= series.counts[tail++]!;
    if (sum > best) best = sum;
  }
  return best;
}

/**
 * The bound slots a pair's evaluation depends on: its minutes widened by
 * the window on both sides, in slots of `slotMinutes`.
 */
export function pairSlots(
  series: Series,
  windowMinutes: number,
  slotMinutes: number,
): { from: number; to: number } {
  const first = series.minutes[0]!;
  const last = series.minutes[series.minutes.length - 1]!;
  return {
    from: Math.floor((first - windowMinutes + 1) / slotMinutes),
    to: Math.floor((last + windowMinutes - 1) / slotMinutes),
  };
}

/**
 * An upper bound of every window sum a pair can reach at the minutes this
 * object touched: its own largest window sum, plus what all other objects
 * counted for keys of the pair's bound bucket in the slots the windows
 * cover. Bounds only ever over-count (a retried object adds its totals
 * again), so `bound <= threshold` proves the pair cannot fire, and a pair
 * that has fired before keeps its peak (which is over the threshold).
 *
 * @param bounds every object's totals (read after this object's were added)
 * @param own this object's totals
 */
export function pairBound(
  series: Series,
  windowMinutes: number,
  bucket: number,
  ruleName: string,
  bounds: BoundTable,
  own: BoundTable,
): number {
  let bound = maxWindowSum(series, windowMinutes);
  const slotMinutes = boundSlotMinutes(windowMinutes);
  const { from, to } = pairSlots(series, windowMinutes, slotMinutes);
  for (let slot = from; slot <= to; slot++) {
    const id = boundId(ruleName, slot);
    const all = bounds.get(id)?.get(bucket) ?? 0;
    const mine = own.get(id)?.get(bucket) ?? 0;
    bound += Math.max(0, all - mine);
  }
  return bound;
}

/** A (key, rule) pair with counts in one source (an object, a batch of records). */
export interface TouchedPair {
  readonly rule: Rule;
  readonly ruleIndex: number;
  readonly key: string;
  readonly series: Series;
}

/**
 * The pairs an engine counted, less the CIDR keys that overlap a guarded
 * range (they can never get a decision, so their counts are moot).
 */
export function touchedPairs(engine: Engine, config: EdgebanConfig, guard: Guard): TouchedPair[] {
  const touched: TouchedPair[] = [];
  for (const pair of engine.pairs()) {
    if (pair.key.includes('/') && guard.overlapsGuarded(pair.key) !== null) continue;
    touched.push({
      rule: config.rules[pair.ruleIndex]!,
      ruleIndex: pair.ruleIndex,
      key: pair.key,
      series: { minutes: pair.counts.minutes, counts: pair.counts.counts },
    });
  }
  return touched;
}

/**
 * Writes one source's counts under `id`, evaluates the windows they
 * touched, records decisions and tells the reconciler (steps 3 to 6 of
 * `ingest.ts`). Safe to repeat for the same `id` and pairs.
 *
 * @param id the source's id in its count items' sort keys
 * @param touched the source's pairs ({@link touchedPairs})
 * @param nowMs the clock when the source was read (the horizon's reference)
 */
export async function commitPairs(
  deps: CommitDeps,
  id: string,
  touched: readonly TouchedPair[],
  nowMs: number,
): Promise<CommitReport> {
  const { ddb, tableName, config } = deps;
  const concurrency = deps.concurrency ?? 16;
  let writes = 0;
  let reads = 0;
  // Steps 3 and 4: this source's counts and bound totals.
  const wMax = longestWindow(config);
  const items: Record<string, unknown>[] = [];
  const own: BoundTable = new Map();
  const ownSlots = new Map<string, BoundSlot>();
  for (const p of touched) {
    const w = p.rule.windowMinutes;
    const exp = (hour: number): number =>
      (hour + 1) * 3600 + (w + wMax) * 60 + config.horizonSeconds;
    items.push(...countItems(p.rule.name, p.key, p.series, id, exp));
    const bucket = boundBucket(p.key);
    const slotMinutes = boundSlotMinutes(w);
    for (let i = 0; i < p.series.minutes.length; i++) {
      const slot = Math.floor(p.series.minutes[i]! / slotMinutes);
      const bid = boundId(p.rule.name, slot);
      let totals: BucketTotals | undefined = own.get(bid);
      if (totals === undefined) {
        totals = new Map();
        own.set(bid, totals);
        ownSlots.set(bid, { rule: p.rule.name, slotMinutes, slot });
      }
      totals.set(bucket, (totals.get(bucket) ?? 0) + p.series.counts[i]!);
    }
  }
  writes += await putItems(ddb, tableName, items, concurrency);
  await mapLimit([...ownSlots.entries()], concurrency, async ([bid, where]) => {
    // The slot matters while a window that covers it can still gain requests.
    const exp = (where.slot + 1) * where.slotMinutes * 60 + wMax * 60 + config.horizonSeconds;
    await addBound(ddb, tableName, where, own.get(bid)!, exp);
  });
  writes += ownSlots.size;

  const wanted = new Map<string, BoundSlot>();
  for (const p of touched) {
    const slotMinutes = boundSlotMinutes(p.rule.windowMinutes);
    const { from, to } = pairSlots(p.series, p.rule.windowMinutes, slotMinutes);
    for (let slot = from; slot <= to; slot++) {
      wanted.set(boundId(p.rule.name, slot), { rule: p.rule.name, slotMinutes, slot });
    }
  }
  const bounds =
    wanted.size > 0 ? await readBounds(ddb, tableName, [...wanted.values()]) : new Map();
  reads += Math.ceil(wanted.size / 100);
  const candidates = touched.filter(
    (p) =>
      pairBound(p.series, p.rule.windowMinutes, boundBucket(p.key), p.rule.name, bounds, own) >
      p.rule.threshold,
  );

  // Steps 5 and 6: evaluate, record, tell the reconciler.
  const nowSec = Math.floor(nowMs / 1000);
  const decisionTime = (): number => Math.floor(deps.now() / 1000);
  let decisions = 0;
  let changedBlocks = 0;
  await mapLimit(candidates, concurrency, async (p) => {
    const w = p.rule.windowMinutes;
    const first = p.series.minutes[0]!;
    const last = p.series.minutes[p.series.minutes.length - 1]!;
    const merged = await readPairSeries(
      ddb,
      tableName,
      p.rule.name,
      p.key,
      first - w + 1,
      last + w - 1,
    );
    reads++;
    const timing = ruleTiming(p.rule, config);
    const consider = (m: number): boolean => m >= first && m <= last + w - 1;
    // The exact sums, before any state: at or under the threshold nothing can fire, and a pair
    // that fired before already holds a larger peak, so its state needs no read. A redelivery
    // after a crash sees the same sums, so it still reaches the ACTIVE repair below.
    const probe = emptyPairState();
    evaluateSeries(merged, timing, config.block, probe, { decisionTime, consider });
    if (probe.peak <= p.rule.threshold) return;
    let created = 0;
    const update = await updatePairState(ddb, tableName, p.rule.name, p.key, ({ state }) => {
      const before = JSON.stringify(state);
      created = evaluateSeries(merged, timing, config.block, state, { decisionTime, consider });
      // A pair that never fired needs no state item: its peak matters only once it fires.
      if (state.firstExceeded === null || JSON.stringify(state) === before) return null;
      return { windowMinutes: w };
    });
    reads += 1 + update.conflicts;
    if (update.changed) writes += 1 + update.conflicts;
    decisions += created;
    const latest = update.state.blocks[update.state.blocks.length - 1];
    if (latest === undefined || latest.until <= nowSec || update.state.firstExceeded === null) {
      return;
    }
    const newBlocks = update.state.blocks.slice(update.state.blocks.length - created);
    // History first: a crash before the ACTIVE item is repaired by the next delivery below.
    for (const b of newBlocks) {
      await putHistory(ddb, tableName, p, b.start, update.state.peak, b.offence);
      writes++;
    }
    const active = {
      ...activeKey(p.key, p.rule.name),
      key: p.key,
      rule: p.rule.name,
      source: 'rule',
      start: latest.start,
      until: latest.until,
      offences: latest.offence,
      peak: update.state.peak,
      window: w,
      firstExceeded: update.state.firstExceeded,
      reason: `${update.state.peak} requests in ${w}m over threshold ${p.rule.threshold}`,
      by: 'edgeban',
      v: update.version,
    };
    const old = await ddb.send(
      new PutCommand({ TableName: tableName, Item: active, ReturnValues: 'ALL_OLD' }),
    );
    writes++;
    const prev = old.Attributes;
    const differs =
      prev === undefined || prev.until !== latest.until || prev.start !== latest.start;
    if (differs) {
      changedBlocks++;
      if (created === 0) {
        // The state held this block but its ACTIVE item was missing: a crash came between them.
        await putHistory(ddb, tableName, p, latest.start, update.state.peak, latest.offence);
        writes++;
      }
    }
    // An unblock may have landed between the state write and the ACTIVE put: undo the put then.
    const after = await readPairState(ddb, tableName, p.rule.name, p.key);
    reads++;
    const now = after.state.blocks[after.state.blocks.length - 1];
    if (after.version !== update.version && (now === undefined || now.until <= nowSec)) {
      await deleteActiveIfVersion(ddb, tableName, p.key, p.rule.name, update.version);
      writes++;
    }
  });
  if (changedBlocks > 0) await deps.notifyReconciler();
  const pairs = new Set<string>();
  for (const item of items) pairs.add(String(item.pk));
  return { writes, reads, pairs: pairs.size, evaluated: candidates.length, decisions };
}

async function putHistory(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  p: TouchedPair,
  start: number,
  peak: number,
  offence: number,
): Promise<void> {
  // The key's history and the day's event log, written one way (recordEvent).
  await recordEvent(ddb, tableName, {
    at: start * 1000,
    kind: 'block',
    key: p.key,
    rule: p.rule.name,
    by: 'edgeban',
    reason: `rule ${p.rule.name}: ${peak} requests in ${p.rule.windowMinutes}m over threshold ${p.rule.threshold}, offence ${offence}`,
  });
}

async function deleteActiveIfVersion(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  key: string,
  rule: string,
  version: number,
): Promise<void> {
  try {
    await ddb.send(
      new DeleteCommand({
        TableName: tableName,
        Key: activeKey(key, rule),
        ConditionExpression: '#v = :v',
        ExpressionAttributeNames: { '#v': 'v' },
        ExpressionAttributeValues: { ':v': version },
      }),
    );
  } catch (err) {
    if (!(err instanceof ConditionalCheckFailedException)) throw err;
  }
}

/** Moves the newest ingested minute forward, never back. @returns whether it moved */
export async function raiseIngestStatus(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  minute: number,
  nowSec: number,
): Promise<boolean> {
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: tableName,
        Key: INGEST_STATUS_KEY,
        UpdateExpression: 'SET newestMinute = :m, #at = :at',
        ConditionExpression: 'attribute_not_exists(newestMinute) OR newestMinute < :m',
        ExpressionAttributeNames: { '#at': 'at' },
        ExpressionAttributeValues: { ':m': minute, ':at': nowSec },
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return false;
    throw err;
  }
}
