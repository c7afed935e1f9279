/**
 * The reconciler's lease in the state table: a conditional put makes one
 * reconcile at a time the writer to WAF, even when several processes can
 * run one (reserved concurrency 1 covers the Lambda alone). A holder that
 * dies leaves a lease that expires on its own.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { RECONCILER_LEASE_KEY } from '../shared/schema';

/** How long a lease lasts: beyond the reconciler Lambda's timeout. */
export const LEASE_MS = 90_000;

function conflict(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err as { name?: string }).name === 'ConditionalCheckFailedException'
  );
}

/**
 * Takes the lease for `owner` unless another holder's lease is still
 * running. Times are real (wall-clock) milliseconds, whatever clock the
 * pipeline decides with.
 * @returns whether `owner` now holds it
 */
export async function acquireLease(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  owner: string,
  nowMs: number = Date.now(),
  leaseMs: number = LEASE_MS,
): Promise<boolean> {
  try {
    await ddb.send(
      new PutCommand({
        TableName: tableName,
        Item: { ...RECONCILER_LEASE_KEY, owner, expiresAt: nowMs + leaseMs },
        // The owner's own lease passes too: an SDK retry after a lost reply
        // must not lock its sender out.
        ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now OR #owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':now': nowMs, ':owner': owner },
      }),
    );
    return true;
  } catch (err) {
    if (conflict(err)) return false;
    throw err;
  }
}

/** Gives the lease back, if `owner` still holds it. */
export async function releaseLease(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  owner: string,
): Promise<void> {
  try {
    await ddb.send(
      new DeleteCommand({
        TableName: tableName,
        Key: { ...RECONCILER_LEASE_KEY },
        // OWNER is a DynamoDB reserved word.
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': owner },
      }),
    );
  } catch (err) {
    if (!conflict(err)) throw err;
  }
}
