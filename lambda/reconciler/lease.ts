/**
 * The reconciler's lease in the state table: a conditional write makes one
 * reconcile at a time the writer to WAF, even when several processes can
 * run one (the Lambda, the local pipeline, an operator's `--local`
 * command). A holder that dies leaves a lease that expires on its own.
 *
 * Each acquisition takes a fencing token from a counter that only goes up
 * (`LEASE` | `FENCE`, never deleted). A holder that outlives its lease (a
 * long pause, clock skew) keeps its old token; every state write it makes
 * carries that token and is refused once a newer holder has written the
 * item (`membership.ts`), so it cannot overwrite the newer holder's view.
 *
 * The lease item keeps the layout of the lease before fencing (`owner`,
 * `expiresAt`) and its condition, so an older reconciler still running
 * during a stack update and a newer one exclude each other. The counter
 * lives in its own item because the older code replaces the lease item
 * whole. Releasing the lease expires it in place: nothing is deleted.
 */
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LEASE_FENCE_KEY, RECONCILER_LEASE_KEY } from '../shared/schema';

/**
 * How long a lease lasts: beyond the reconciler Lambda's timeout (90 s in
 * `lib/edge-ban.ts`), and so beyond a run's deadline ({@link RUN_BUDGET_MS}).
 */
export const LEASE_MS = 120_000;

/** How long one run works on WAF before it stops as partial (the next run continues). */
export const RUN_BUDGET_MS = 60_000;

/** What the holder of a lease got. */
export interface Lease {
  readonly owner: string;
  /** The fencing token: greater than every earlier holder's. */
  readonly fence: number;
  /** Epoch ms (the lease clock) of the last UpdateIPSet any holder sent, for pacing across runs. */
  readonly lastWriteAt: number;
}

function conflict(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}

/**
 * Takes the lease for `owner` unless another holder's lease is still
 * running. Times are real (wall-clock) milliseconds, whatever clock the
 * pipeline decides with.
 * @returns the lease with its fencing token, or null when another holds it
 */
export async function acquireLease(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  owner: string,
  nowMs: number = Date.now(),
  leaseMs: number = LEASE_MS,
): Promise<Lease | null> {
  let lastWriteAt = 0;
  try {
    const res = await ddb.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { ...RECONCILER_LEASE_KEY },
        UpdateExpression: 'SET #owner = :owner, expiresAt = :exp',
        // The owner's own lease passes too: an SDK retry after a lost reply
        // must not lock its sender out.
        ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now OR #owner = :owner',
        // OWNER is a DynamoDB reserved word.
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':now': nowMs, ':owner': owner, ':exp': nowMs + leaseMs },
        ReturnValues: 'ALL_NEW',
      }),
    );
    const last = res.Attributes?.lastWriteAt;
    if (typeof last === 'number') lastWriteAt = last;
  } catch (err) {
    if (conflict(err)) return null;
    throw err;
  }
  const counted = await ddb.send(
    new UpdateCommand({
      TableName: tableName,
      Key: { ...LEASE_FENCE_KEY },
      UpdateExpression: 'ADD fence :one',
      ExpressionAttributeValues: { ':one': 1 },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  const fence = Number(counted.Attributes?.fence ?? 0);
  return { owner, fence, lastWriteAt };
}

/** The newest fencing token handed out (0 before any). */
export async function currentFence(
  ddb: DynamoDBDocumentClient,
  tableName: string,
): Promise<number> {
  const { Item } = await ddb.send(
    new GetCommand({ TableName: tableName, Key: { ...LEASE_FENCE_KEY }, ConsistentRead: true }),
  );
  return typeof Item?.fence === 'number' ? Item.fence : 0;
}

/**
 * Gives the lease back, if `owner` still holds it: it expires in place
 * (the item stays), keeping the time of the last WAF write for the next
 * holder's pacing.
 */
export async function releaseLease(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  owner: string,
  lastWriteAt?: number,
): Promise<void> {
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { ...RECONCILER_LEASE_KEY },
        UpdateExpression:
          lastWriteAt === undefined
            ? 'SET expiresAt = :zero'
            : 'SET expiresAt = :zero, lastWriteAt = :last',
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: {
          ':owner': owner,
          ':zero': 0,
          ...(lastWriteAt === undefined ? {} : { ':last': lastWriteAt }),
        },
      }),
    );
  } catch (err) {
    if (!conflict(err)) throw err;
  }
}
