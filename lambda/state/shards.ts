/**
 * The real-time shard ledger: one item per Kinesis shard that says which
 * of its records are counted (layout in `lambda/shared/schema.ts`).
 *
 * A shard's records are committed in chunks. A commit is ONE conditional
 * PutItem of the ledger item that both moves `upTo` (the highest committed
 * sequence number) forward and holds the chunk's counts; it succeeds only
 * if the item still has the version the committer read. The chunk's
 * per-pair count items are written afterwards (idempotent, keyed by the
 * chunk's id) and the chunk is then marked done; whoever reads a ledger
 * whose chunk is not done finishes it first. So a record is counted iff its
 * sequence number is at most `upTo`, and each committed chunk's counts land
 * exactly once whatever crashes, retries or batch splits come between.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { TABLE } from '../shared/contract';
import { shardLedgerKey } from '../shared/schema';

/** Base error of this module. */
export class ShardLedgerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShardLedgerError';
  }
}

/** Another consumer committed to the shard between our read and our commit. */
export class ShardMovedError extends ShardLedgerError {
  constructor(stream: string, shardId: string) {
    super(`shard ${shardId} of stream ${stream} was committed concurrently; the batch is retried`);
    this.name = 'ShardMovedError';
  }
}

/**
 * Kinesis sequence numbers are decimal strings of up to 129 digits
 * (Kinesis API reference, `SequenceNumber` pattern `0|([1-9]\d{0,128})`):
 * padded to that width, string order is numeric order.
 */
export const SEQUENCE_DIGITS = 129;

/** A sequence number padded so that string comparison is numeric comparison. */
export function padSequence(sequence: string): string {
  if (!/^(0|[1-9]\d{0,128})$/.test(sequence)) {
    throw new ShardLedgerError(`not a Kinesis sequence number: ${sequence.slice(0, 40)}`);
  }
  return sequence.padStart(SEQUENCE_DIGITS, '0');
}

/** One committed chunk of a shard's records. */
export interface Chunk {
  /** The chunk's id in its count items' sort keys. */
  readonly id: string;
  /** Sequence numbers of its first and last record (unpadded). */
  readonly first: string;
  readonly last: string;
  /** Its counts: `[rule name, key, minutes, counts][]` as JSON. */
  readonly pairs: string;
  /** Newest request minute in the chunk, or null. */
  readonly maxMinute: number | null;
  /** Whether its count items are written and its windows evaluated. */
  readonly done: boolean;
}

/** Totals of a shard's committed records. */
export interface ShardTotals {
  readonly records: number;
  readonly rejected: number;
  readonly duplicates: number;
  readonly stale: number;
}

/** A shard's ledger as read. */
export interface ShardLedger {
  readonly stream: string;
  readonly shardId: string;
  /** Padded highest committed sequence number, or '' when nothing is committed. */
  readonly upTo: string;
  /** 0 when there is no item. */
  readonly version: number;
  readonly chunk: Chunk | null;
  readonly totals: ShardTotals;
}

const NO_TOTALS: ShardTotals = { records: 0, rejected: 0, duplicates: 0, stale: 0 };

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** Reads a shard's ledger (strongly consistent). */
export async function readShardLedger(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  stream: string,
  shardId: string,
): Promise<ShardLedger> {
  const res = await ddb.send(
    new GetCommand({
      TableName: tableName,
      Key: shardLedgerKey(stream, shardId),
      ConsistentRead: true,
    }),
  );
  const item = res.Item;
  if (item === undefined) {
    return { stream, shardId, upTo: '', version: 0, chunk: null, totals: NO_TOTALS };
  }
  const c = item.chunk as Record<string, unknown> | undefined;
  const chunk: Chunk | null =
    c === undefined
      ? null
      : {
          id: String(c.id),
          first: String(c.first),
          last: String(c.last),
          pairs: String(c.pairs),
          maxMinute: typeof c.maxMinute === 'number' ? c.maxMinute : null,
          done: c.done === true,
        };
  return {
    stream,
    shardId,
    upTo: typeof item.upTo === 'string' ? item.upTo : '',
    version: num(item.v),
    chunk,
    totals: {
      records: num(item.records),
      rejected: num(item.rejected),
      duplicates: num(item.duplicates),
      stale: num(item.stale),
    },
  };
}

/**
 * Commits a chunk: `upTo` becomes the chunk's last sequence number, the
 * chunk (not done) replaces the previous one, the totals grow; all in one
 * PutItem conditional on the version read.
 *
 * @param expiresAt epoch seconds after which the item can no longer matter
 *   (past the stream's retention and the live horizon)
 * @returns the ledger as committed
 * @throws ShardMovedError when the ledger changed since `ledger` was read
 */
export async function commitChunk(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  ledger: ShardLedger,
  chunk: Omit<Chunk, 'done'>,
  added: ShardTotals,
  atSeconds: number,
  expiresAt: number,
): Promise<ShardLedger> {
  const upTo = padSequence(chunk.last);
  if (ledger.upTo !== '' && upTo <= ledger.upTo) {
    throw new ShardLedgerError(
      `chunk ends at ${chunk.last}, not past the committed ${ledger.upTo}`,
    );
  }
  const totals: ShardTotals = {
    records: ledger.totals.records + added.records,
    rejected: ledger.totals.rejected + added.rejected,
    duplicates: ledger.totals.duplicates + added.duplicates,
    stale: ledger.totals.stale + added.stale,
  };
  const version = ledger.version + 1;
  try {
    await ddb.send(
      new PutCommand({
        TableName: tableName,
        Item: {
          ...shardLedgerKey(ledger.stream, ledger.shardId),
          stream: ledger.stream,
          shard: ledger.shardId,
          upTo,
          v: version,
          chunk: { ...chunk, done: false },
          ...totals,
          at: atSeconds,
          [TABLE.expiresAt]: expiresAt,
        },
        ConditionExpression: ledger.version === 0 ? 'attribute_not_exists(#pk)' : '#v = :v',
        ExpressionAttributeNames:
          ledger.version === 0 ? { '#pk': TABLE.partitionKey } : { '#v': 'v' },
        ...(ledger.version === 0 ? {} : { ExpressionAttributeValues: { ':v': ledger.version } }),
      }),
    );
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) {
      throw new ShardMovedError(ledger.stream, ledger.shardId);
    }
    throw err;
  }
  return { ...ledger, upTo, version, chunk: { ...chunk, done: false }, totals };
}

/**
 * Marks the ledger's chunk done, if the ledger is still at `version` (a
 * later commit has replaced the chunk otherwise, which only happens once
 * this one was finished).
 */
export async function markChunkDone(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  ledger: ShardLedger,
): Promise<void> {
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: tableName,
        Key: shardLedgerKey(ledger.stream, ledger.shardId),
        UpdateExpression: 'SET #chunk.#done = :true',
        ConditionExpression: '#v = :v',
        ExpressionAttributeNames: { '#chunk': 'chunk', '#done': 'done', '#v': 'v' },
        ExpressionAttributeValues: { ':true': true, ':v': ledger.version },
      }),
    );
  } catch (err) {
    if (!(err instanceof ConditionalCheckFailedException)) throw err;
  }
}
