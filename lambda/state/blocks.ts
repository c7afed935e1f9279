/**
 * Active blocks, their history, the mode override and the status items of
 * the state table (layout in `lambda/shared/schema.ts`). Small adapters
 * over a DynamoDB document client: the reconciler, the ingest side and
 * the operator commands share them, so every item is read and written one
 * way.
 *
 * Units: block `start`, `until` and `firstExceeded` are epoch seconds (as
 * in the engine's `BlockRecord`). The `at` of the interfaces here is epoch
 * milliseconds (the pipeline clock); stored `at` attributes are epoch
 * seconds, as everywhere in the table, and a history sort key keeps the
 * milliseconds.
 */
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateQuery,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Guard } from '../core/guard';
import { parseCidr } from '../core/ip';
import type { EdgebanConfig, Mode } from '../core/types';
import {
  ACTIVE_PK,
  activeKey,
  eventLogKey,
  historyKey,
  historyPk,
  INGEST_STATUS_KEY,
  MODE_KEY,
  RECONCILE_STATUS_KEY,
} from '../shared/schema';
import { FENCE_CONDITION, FencedWriteError, isConditionFailure } from './fence';
import { unblockKeyPairs } from './pairs';

/** Base error of this module: a state item that does not have the documented shape. */
export class StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateError';
  }
}

/** One active block: a rule block of a (key, rule) pair, or a manual block of a key. */
export interface ActiveBlock {
  /** Counting key: a bare canonical address, or a canonical CIDR. */
  readonly key: string;
  /** The rule, or null for a manual block. */
  readonly rule: string | null;
  readonly source: 'rule' | 'manual';
  /** Epoch seconds. */
  readonly start: number;
  /** Epoch seconds; the block is over at `until`. */
  readonly until: number;
  /** The block's offence number n; null for a manual block. */
  readonly offences: number | null;
  /** The pair's peak window sum; null for a manual block. */
  readonly peak: number | null;
  /** The rule's window in minutes; null for a manual block. */
  readonly window: number | null;
  /** Epoch seconds of the pair's first firing minute; null for a manual block. */
  readonly firstExceeded: number | null;
  readonly reason: string | null;
  /** Who made a manual block (an ARN or OS user); null for rule blocks. */
  readonly by: string | null;
}

/** Kinds of history events. */
export type EventKind = 'block' | 'unblock' | 'expire' | 'reset';

/** One history event of a key. */
export interface HistoryEvent {
  /** Epoch milliseconds. */
  readonly at: number;
  readonly kind: EventKind;
  readonly key: string;
  readonly rule: string | null;
  readonly by: string | null;
  readonly reason: string | null;
}

/** The stored mode override (`edgeban pause`/`resume`). */
export interface ModeOverride {
  readonly mode: Mode;
  readonly by: string | null;
  /** Epoch milliseconds. */
  readonly at: number;
}

/** One IP set as the last reconcile saw it. */
export interface IpSetStatus {
  readonly name: string;
  readonly version: 'IPV4' | 'IPV6';
  /** Addresses in the set, ours and others'. */
  readonly size: number;
  readonly capacity: number;
}

/** The reconciler's last run. */
export interface ReconcileStatus {
  /** Epoch milliseconds (pipeline clock). */
  readonly at: number;
  readonly mode: Mode;
  /** Empty until a run in a mode that reads WAF. */
  readonly ipSets: readonly IpSetStatus[];
  readonly lagSeconds: number | null;
  readonly tripped: boolean;
}

/** The newest log minute the ingest side processed. */
export interface IngestStatus {
  /** Epoch minute. */
  readonly newestMinute: number;
  /** Epoch milliseconds of the write. */
  readonly at: number;
}

/** A canonical CIDR as a counting key: bare at /32 and /128 (the inverse of `keyToCidr`). */
export function cidrToKey(cidr: string): string {
  return cidr.endsWith('/32') || cidr.endsWith('/128')
    ? cidr.slice(0, cidr.lastIndexOf('/'))
    : cidr;
}

/**
 * Why a key must not be blocked, or null when it may: checked when a block
 * is made and again when it is written to WAF. A key must be canonical (a
 * bare address, or a CIDR without host bits), no wider than `minPrefix`,
 * and overlap no guarded range.
 */
export function blockProblem(key: string, config: EdgebanConfig, guard: Guard): string | null {
  const c = parseCidr(key);
  if (c === null || cidrToKey(c.cidr) !== key) return `${key} is not a canonical address or CIDR`;
  const min = c.version === 4 ? config.minPrefix.ipv4 : config.minPrefix.ipv6;
  if (c.prefix < min) return `${key} is wider than minPrefix /${min}`;
  const guarded = guard.overlapsGuarded(key);
  return guarded === null ? null : `${key} is guarded: ${guarded}`;
}

type Item = Record<string, unknown>;

function str(item: Item, name: string): string | null {
  const v = item[name];
  return typeof v === 'string' ? v : null;
}

function num(item: Item, name: string): number | null {
  const v = item[name];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function required<T>(value: T | null, item: Item, name: string): T {
  if (value === null) {
    throw new StateError(`state item ${String(item.pk)} ${String(item.sk)} has no valid ${name}`);
  }
  return value;
}

/** Reads an `ACTIVE` item. */
export function activeFromItem(item: Item): ActiveBlock {
  const rule = str(item, 'rule');
  return {
    key: required(str(item, 'key'), item, 'key'),
    rule,
    source: str(item, 'source') === 'manual' || rule === null ? 'manual' : 'rule',
    start: required(num(item, 'start'), item, 'start'),
    until: required(num(item, 'until'), item, 'until'),
    offences: num(item, 'offences'),
    peak: num(item, 'peak'),
    window: num(item, 'window'),
    firstExceeded: num(item, 'firstExceeded'),
    reason: str(item, 'reason'),
    by: str(item, 'by'),
  };
}

/** Reads every item of one partition, following pagination. */
async function queryAll(ddb: DynamoDBDocumentClient, table: string, pk: string): Promise<Item[]> {
  const items: Item[] = [];
  const pages = paginateQuery(
    { client: ddb },
    {
      TableName: table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': pk },
      ConsistentRead: true,
    },
  );
  for await (const page of pages) for (const item of page.Items ?? []) items.push(item);
  return items;
}

/** Every active block, expired ones included until they are swept. */
export async function readActiveBlocks(
  ddb: DynamoDBDocumentClient,
  table: string,
): Promise<ActiveBlock[]> {
  return (await queryAll(ddb, table, ACTIVE_PK)).map(activeFromItem);
}

/** Writes (or replaces) the active block of its (key, rule). */
export async function putActiveBlock(
  ddb: DynamoDBDocumentClient,
  table: string,
  block: ActiveBlock,
): Promise<void> {
  await ddb.send(
    new PutCommand({ TableName: table, Item: { ...activeKey(block.key, block.rule), ...block } }),
  );
}

/**
 * Deletes an active block only if it is still the block that was read (same
 * start and end), so a block the ingest side wrote or extended meanwhile
 * survives.
 * @returns whether the item was deleted
 */
export async function deleteActiveBlock(
  ddb: DynamoDBDocumentClient,
  table: string,
  block: ActiveBlock,
  fence?: number,
): Promise<boolean> {
  try {
    await ddb.send(
      new DeleteCommand({
        TableName: table,
        Key: activeKey(block.key, block.rule),
        ConditionExpression: `#start = :start AND #until = :until${fence === undefined ? '' : ` AND ${FENCE_CONDITION}`}`,
        ExpressionAttributeNames: { '#start': 'start', '#until': 'until' },
        ExpressionAttributeValues: {
          ':start': block.start,
          ':until': block.until,
          ...(fence === undefined ? {} : { ':f': fence }),
        },
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/**
 * Records one history event (idempotent: the same event rewrites the same
 * item). A reconcile passes its `fence`.
 * @throws FencedWriteError when a newer reconcile wrote the same event
 */
export async function recordEvent(
  ddb: DynamoDBDocumentClient,
  table: string,
  event: HistoryEvent,
  fence?: number,
): Promise<void> {
  const attributes = { ...event, at: Math.floor(event.at / 1000) };
  // The key's history, and the same event in the day's event log (read by time, never scanned).
  const keys = [
    historyKey(event.key, event.at, event.kind, event.rule),
    eventLogKey(event.at, event.key, event.kind, event.rule),
  ];
  if (fence === undefined) {
    await Promise.all(
      keys.map((k) =>
        ddb.send(new PutCommand({ TableName: table, Item: { ...k, ...attributes } })),
      ),
    );
    return;
  }
  try {
    await Promise.all(
      keys.map((k) =>
        ddb.send(
          new PutCommand({
            TableName: table,
            Item: { ...k, ...attributes, fence },
            ConditionExpression: FENCE_CONDITION,
            ExpressionAttributeValues: { ':f': fence },
          }),
        ),
      ),
    );
  } catch (err) {
    if (isConditionFailure(err)) throw new FencedWriteError(`history of ${event.key}`, fence);
    throw err;
  }
}

/** A key's history, oldest first. */
export async function readHistory(
  ddb: DynamoDBDocumentClient,
  table: string,
  key: string,
): Promise<HistoryEvent[]> {
  const items = await queryAll(ddb, table, historyPk(key));
  return items.map((item) => {
    const kind = str(item, 'kind');
    if (kind !== 'block' && kind !== 'unblock' && kind !== 'expire' && kind !== 'reset') {
      throw new StateError(`history item ${String(item.pk)} ${String(item.sk)} has kind ${kind}`);
    }
    // The sort key starts with the event's epoch milliseconds: the one time every writer sets.
    const at = Number(String(item.sk).slice(0, 13));
    return {
      at: Number.isFinite(at) ? at : required(num(item, 'at'), item, 'at') * 1000,
      kind,
      key,
      rule: str(item, 'rule'),
      by: str(item, 'by'),
      reason: str(item, 'reason'),
    };
  });
}

/**
 * Takes the blocks whose end has passed out of the active set, each with an
 * `expire` event at its end.
 * @param nowSeconds the pipeline clock, epoch seconds
 * @returns the blocks that were swept, and those still active
 */
export async function sweepExpired(
  ddb: DynamoDBDocumentClient,
  table: string,
  blocks: readonly ActiveBlock[],
  nowSeconds: number,
  fence?: number,
): Promise<{ expired: ActiveBlock[]; active: ActiveBlock[] }> {
  const expired: ActiveBlock[] = [];
  const active: ActiveBlock[] = [];
  for (const b of blocks) {
    if (b.until > nowSeconds) {
      active.push(b);
      continue;
    }
    // The event first: a run that dies between the two writes sweeps again and rewrites it.
    await recordEvent(
      ddb,
      table,
      { at: b.until * 1000, kind: 'expire', key: b.key, rule: b.rule, by: null, reason: null },
      fence,
    );
    if (await deleteActiveBlock(ddb, table, b, fence)) expired.push(b);
  }
  return { expired, active };
}

/**
 * Ends every block of a key at `atMs` (a manual unblock, or an address found
 * removed from an IP set): its active items go, each with an `unblock`
 * event, and every rule's pair state of the key restarts its window sums
 * at that time, so only new traffic can block the key again.
 * @param blocks the key's active blocks as last read
 * @returns the blocks that were ended
 */
export async function endKeyBlocks(
  ddb: DynamoDBDocumentClient,
  table: string,
  config: EdgebanConfig,
  key: string,
  blocks: readonly ActiveBlock[],
  at: {
    readonly ms: number;
    readonly by: string;
    readonly reason: string | null;
    /** A reconcile's fencing token. */
    readonly fence?: number;
  },
): Promise<ActiveBlock[]> {
  await unblockKeyPairs(ddb, table, config, key, Math.floor(at.ms / 1000), at.by, at.fence);
  const ofKey = blocks.filter((b) => b.key === key);
  // With nothing active (a console removal after expiry) the unblock is still on record.
  const rules = ofKey.length === 0 ? [null] : ofKey.map((b) => b.rule);
  for (const rule of rules) {
    await recordEvent(
      ddb,
      table,
      { at: at.ms, kind: 'unblock', key, rule, by: at.by, reason: at.reason },
      at.fence,
    );
  }
  const ended: ActiveBlock[] = [];
  for (const b of ofKey) if (await deleteActiveBlock(ddb, table, b, at.fence)) ended.push(b);
  return ended;
}

/** The stored mode override, or null. */
export async function readModeOverride(
  ddb: DynamoDBDocumentClient,
  table: string,
): Promise<ModeOverride | null> {
  const { Item: item } = await ddb.send(
    new GetCommand({ TableName: table, Key: MODE_KEY, ConsistentRead: true }),
  );
  if (item === undefined) return null;
  const mode = str(item, 'mode');
  if (mode !== 'block' && mode !== 'count' && mode !== 'observe') {
    throw new StateError(`mode override holds ${mode}, not block, count or observe`);
  }
  return { mode, by: str(item, 'by'), at: (num(item, 'at') ?? 0) * 1000 };
}

/** Stores the mode override, or clears it with null. */
export async function writeModeOverride(
  ddb: DynamoDBDocumentClient,
  table: string,
  override: ModeOverride | null,
): Promise<void> {
  if (override === null) {
    await ddb.send(new DeleteCommand({ TableName: table, Key: MODE_KEY }));
    return;
  }
  await ddb.send(
    new PutCommand({
      TableName: table,
      Item: { ...MODE_KEY, ...override, at: Math.floor(override.at / 1000) },
    }),
  );
}

/** The mode in force: the override, else the config's. */
export async function effectiveMode(
  ddb: DynamoDBDocumentClient,
  table: string,
  config: EdgebanConfig,
): Promise<Mode> {
  return (await readModeOverride(ddb, table))?.mode ?? config.mode;
}

/**
 * Records a reconcile run. `ipSets` null keeps the sizes of the last run
 * that read WAF (an `observe` run does not).
 */
export async function writeReconcileStatus(
  ddb: DynamoDBDocumentClient,
  table: string,
  status: Omit<ReconcileStatus, 'ipSets'> & { readonly ipSets: readonly IpSetStatus[] | null },
  fence?: number,
): Promise<void> {
  const values: Record<string, unknown> = {
    ':at': Math.floor(status.at / 1000),
    ':mode': status.mode,
    ':lag': status.lagSeconds,
    ':tripped': status.tripped,
  };
  let update = 'SET #at = :at, #mode = :mode, lagSeconds = :lag, tripped = :tripped';
  if (status.ipSets !== null) {
    update += ', ipSets = :sets';
    values[':sets'] = status.ipSets;
  }
  if (fence !== undefined) {
    update += ', fence = :f';
    values[':f'] = fence;
  }
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: table,
        Key: RECONCILE_STATUS_KEY,
        UpdateExpression: update,
        ExpressionAttributeNames: { '#at': 'at', '#mode': 'mode' },
        ExpressionAttributeValues: values,
        ...(fence === undefined ? {} : { ConditionExpression: FENCE_CONDITION }),
      }),
    );
  } catch (err) {
    if (fence !== undefined && isConditionFailure(err)) {
      throw new FencedWriteError('reconcile status', fence);
    }
    throw err;
  }
}

/** The last reconcile run, or null when none ran. */
export async function readReconcileStatus(
  ddb: DynamoDBDocumentClient,
  table: string,
): Promise<ReconcileStatus | null> {
  const { Item: item } = await ddb.send(
    new GetCommand({ TableName: table, Key: RECONCILE_STATUS_KEY, ConsistentRead: true }),
  );
  if (item === undefined) return null;
  const mode = str(item, 'mode');
  const sets = Array.isArray(item.ipSets) ? (item.ipSets as Item[]) : [];
  return {
    at: required(num(item, 'at'), item, 'at') * 1000,
    mode: mode === 'count' || mode === 'observe' ? mode : 'block',
    ipSets: sets.map((s) => ({
      name: required(str(s, 'name'), item, 'ipSets[].name'),
      version: str(s, 'version') === 'IPV6' ? 'IPV6' : 'IPV4',
      size: num(s, 'size') ?? 0,
      capacity: num(s, 'capacity') ?? 0,
    })),
    lagSeconds: num(item, 'lagSeconds'),
    tripped: item.tripped === true,
  };
}

/** The ingest side's newest processed log minute, or null before any object. */
export async function readIngestStatus(
  ddb: DynamoDBDocumentClient,
  table: string,
): Promise<IngestStatus | null> {
  const { Item: item } = await ddb.send(
    new GetCommand({ TableName: table, Key: INGEST_STATUS_KEY, ConsistentRead: true }),
  );
  if (item === undefined) return null;
  const newestMinute = num(item, 'newestMinute');
  if (newestMinute === null) return null;
  return { newestMinute, at: (num(item, 'at') ?? 0) * 1000 };
}

/**
 * Lag of the pipeline: its clock minus the start of the newest log minute
 * processed, in whole seconds; null before any log.
 */
export function lagSeconds(ingest: IngestStatus | null, nowMs: number): number | null {
  if (ingest === null) return null;
  return Math.max(0, Math.floor(nowMs / 1000) - ingest.newestMinute * 60);
}
