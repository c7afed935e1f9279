/**
 * Pair-state items of the state table: one per (rule, key) that fired or was
 * unblocked (layout in `lambda/shared/schema.ts`). Every write is a
 * conditional put on the item's version `v`, so concurrent ingests and
 * unblocks never lose each other's updates: the loser re-reads, re-applies
 * its change and tries again.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { applyUnblock, emptyPairState, type PairState } from '../core/decide';
import { parseCidr } from '../core/ip';
import type { BlockRecord, EdgebanConfig, Rule } from '../core/types';
import { TABLE } from '../shared/contract';
import { pairKey } from '../shared/schema';
import { backoffMs, sleep } from './counts';

/** Base error of this module. */
export class PairStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PairStateError';
  }
}

/** Raised when a pair's state kept changing under a writer for every attempt. */
export class PairConflictError extends PairStateError {
  constructor(rule: string, key: string, attempts: number) {
    super(`pair state of ${key} for rule ${rule} changed concurrently ${attempts} times`);
    this.name = 'PairConflictError';
  }
}

/** A pair's state as stored, with its version (0 when there is no item). */
/** A newer reconcile's fencing token wrote the pair: the older one must not. */
export class PairFencedError extends PairStateError {
  constructor(rule: string, key: string, fence: number) {
    super(
      `pair state of ${key} for rule ${rule} was written by a newer reconcile than fence ${fence}`,
    );
    this.name = 'PairFencedError';
  }
}

export interface StoredPairState {
  readonly state: PairState;
  readonly version: number;
  /** Who made the latest unblock, when there was one. */
  readonly unblockedBy: string | null;
  /** Fencing token of the reconcile that last wrote it (0: none did, or ingest wrote since). */
  readonly fence?: number;
}

/** Attempts of a read-modify-write before {@link PairConflictError}. */
export const PAIR_WRITE_ATTEMPTS = 8;

function toBlocks(value: unknown): BlockRecord[] {
  if (!Array.isArray(value)) return [];
  return value.map((b) => {
    const r = b as Record<string, unknown>;
    return { offence: Number(r.offence), start: Number(r.start), until: Number(r.until) };
  });
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' ? value : null;
}

/**
 * Reads a pair's state (strongly consistent).
 * @returns the state, or a fresh one with version 0 when there is no item
 */
export async function readPairState(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  rule: string,
  key: string,
): Promise<StoredPairState> {
  const res = await ddb.send(
    new GetCommand({ TableName: tableName, Key: pairKey(rule, key), ConsistentRead: true }),
  );
  const item = res.Item;
  if (item === undefined) {
    return { state: emptyPairState(), version: 0, unblockedBy: null };
  }
  return {
    state: {
      peak: typeof item.peak === 'number' ? item.peak : 0,
      firstExceeded: numberOrNull(item.firstExceeded),
      blocks: toBlocks(item.blocks),
      countFrom: numberOrNull(item.countFrom),
    },
    version: typeof item.v === 'number' ? item.v : 0,
    unblockedBy: typeof item.unblockedBy === 'string' ? item.unblockedBy : null,
    ...(typeof item.fence === 'number' ? { fence: item.fence } : {}),
  };
}

/** Extra attributes of a pair-state write. */
export interface PairStateExtras {
  /** The rule's window in minutes. */
  readonly windowMinutes?: number;
  /** Who made the latest unblock. */
  readonly unblockedBy?: string | null;
  /** The writing reconcile's fencing token: stored, and the write refused under a newer one. */
  readonly fence?: number;
}

/**
 * Writes a pair's state if its stored version is still `expectedVersion`
 * (0: only if there is no item). The item's version becomes
 * `expectedVersion + 1`.
 *
 * @returns the new version, or null when someone else wrote first
 */
export async function writePairState(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  rule: string,
  key: string,
  state: PairState,
  expectedVersion: number,
  extras: PairStateExtras = {},
): Promise<number | null> {
  const version = expectedVersion + 1;
  const item: Record<string, unknown> = {
    ...pairKey(rule, key),
    rule,
    key,
    peak: state.peak,
    blocks: state.blocks.map((b) => ({ offence: b.offence, start: b.start, until: b.until })),
    v: version,
  };
  if (state.firstExceeded !== null) item.firstExceeded = state.firstExceeded;
  if (state.countFrom !== null) item.countFrom = state.countFrom;
  if (extras.windowMinutes !== undefined) item.window = extras.windowMinutes;
  if (extras.unblockedBy != null) item.unblockedBy = extras.unblockedBy;
  if (extras.fence !== undefined) item.fence = extras.fence;
  try {
    await ddb.send(
      new PutCommand({
        TableName: tableName,
        Item: item,
        ...(expectedVersion === 0
          ? {
              ConditionExpression: 'attribute_not_exists(#pk)',
              ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
            }
          : {
              ConditionExpression: '#v = :v',
              ExpressionAttributeNames: { '#v': 'v' },
              ExpressionAttributeValues: { ':v': expectedVersion },
            }),
      }),
    );
    return version;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return null;
    throw err;
  }
}

/** What {@link updatePairState} did. */
export interface PairUpdate extends StoredPairState {
  /** Whether a new state was written. */
  readonly changed: boolean;
  /** Writes that lost to a concurrent writer before this one settled. */
  readonly conflicts: number;
}

/**
 * Read-modify-write of a pair's state with optimistic concurrency:
 * `mutate` gets a fresh copy of the stored state and returns the extras to
 * write with it, or null to leave the item as it is. On a version conflict
 * the state is read again and `mutate` runs again (full-jitter backoff).
 *
 * @throws PairConflictError after {@link PAIR_WRITE_ATTEMPTS} conflicts
 */
export async function updatePairState(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  rule: string,
  key: string,
  mutate: (stored: StoredPairState) => PairStateExtras | null,
): Promise<PairUpdate> {
  for (let attempt = 0; attempt < PAIR_WRITE_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(backoffMs(attempt - 1));
    const stored = await readPairState(ddb, tableName, rule, key);
    const extras = mutate(stored);
    if (extras === null) return { ...stored, changed: false, conflicts: attempt };
    // The version condition below refuses a write over anything written since
    // this read, so a newer fence is always seen here first.
    if (extras.fence !== undefined && (stored.fence ?? 0) > extras.fence) {
      throw new PairFencedError(rule, key, extras.fence);
    }
    const unblockedBy = extras.unblockedBy !== undefined ? extras.unblockedBy : stored.unblockedBy;
    const version = await writePairState(ddb, tableName, rule, key, stored.state, stored.version, {
      ...extras,
      unblockedBy,
    });
    if (version !== null) {
      return { state: stored.state, version, unblockedBy, changed: true, conflicts: attempt };
    }
  }
  throw new PairConflictError(rule, key, PAIR_WRITE_ATTEMPTS);
}

/** Whether `key` is a counting key of `rule` (its prefix is the rule's for its version). */
export function keyFitsRule(key: string, rule: Rule): boolean {
  const c = parseCidr(key);
  if (c === null) return false;
  const bare = key.indexOf('/') < 0;
  const prefix = c.version === 4 ? rule.ipv4Prefix : rule.ipv6Prefix;
  const full = c.version === 4 ? 32 : 128;
  if (c.prefix !== prefix) return false;
  // Keys are bare at full length and CIDR otherwise, exactly as the engine writes them.
  return (
    bare === (prefix === full) &&
    (bare ? key === c.cidr.slice(0, c.cidr.indexOf('/')) : key === c.cidr)
  );
}

/** One rule's pair after {@link unblockKeyPairs}. */
export interface UnblockedPair {
  readonly rule: string;
  readonly state: PairState;
  readonly version: number;
}

/**
 * Applies a manual or console unblock at `at` (epoch seconds) to every
 * rule's pair state of `key`: blocks end at `at` and window sums count only
 * minutes from `at` on (DESIGN section 1, Unblocks). Rules whose counting
 * key cannot be `key` (another prefix length) are left alone; a rule with
 * no state item for the key gets one holding just `countFrom`, so older
 * traffic can not block the key again. Conditional on each item's version,
 * retried on conflicts.
 *
 * @param key the counting key as stored (bare address or canonical CIDR)
 * @param by who unblocked (an ARN, a user name, or `console`)
 * @throws PairConflictError when a pair kept changing under the unblock
 */
export async function unblockKeyPairs(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  config: EdgebanConfig,
  key: string,
  at: number,
  by: string,
  fence?: number,
): Promise<UnblockedPair[]> {
  const out: UnblockedPair[] = [];
  for (const rule of config.rules) {
    if (!keyFitsRule(key, rule)) continue;
    const res = await updatePairState(ddb, tableName, rule.name, key, ({ state }) => {
      const before = JSON.stringify(state);
      applyUnblock(state, at);
      if (JSON.stringify(state) === before) return null;
      return {
        windowMinutes: rule.windowMinutes,
        unblockedBy: by,
        ...(fence === undefined ? {} : { fence }),
      };
    });
    out.push({ rule: rule.name, state: res.state, version: res.version });
  }
  return out;
}
