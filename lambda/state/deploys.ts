/**
 * Deploy records (layout in `lambda/shared/schema.ts`): one item per
 * CloudFormation create, update or delete of the stack that owns the IP
 * sets, written by a custom resource that depends on every set and whose
 * properties hash theirs. CloudFormation replaces a set's addresses with
 * the template's list whenever it updates the `AWS::WAFv2::IPSet` resource
 * (aws-waf-security-automations issue #233, "Updating the stack removes
 * configured IP set"), so a loss that follows a record is a reset, not a
 * person's removal (DESIGN section 1).
 */
import { type DynamoDBDocumentClient, PutCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import { DEPLOY_PK, deployKey, pad } from '../shared/schema';

/** CloudFormation's request type of the custom resource event. */
export type DeployKind = 'Create' | 'Update' | 'Delete';

/**
 * When the record was written: `before` CloudFormation changes the sets
 * (a custom resource every set depends on) or `after` it has (one that
 * depends on every set). A loss read between the two belongs to the deploy.
 */
export type DeployPhase = 'before' | 'after';

/** One deploy (or rollback) of the stack that owns the IP sets. */
export interface DeployRecord {
  /** Epoch milliseconds, when the custom resource ran. */
  readonly at: number;
  readonly kind: DeployKind;
  /** Hash of the IP sets' CloudFormation properties in that template. */
  readonly hash: string;
  /** The stack's name or id. */
  readonly stack: string;
  /** CloudFormation's RequestId: a retried event rewrites the same item. */
  readonly requestId: string;
  /** @default - not known (a record written before phases were recorded) */
  readonly phase?: DeployPhase;
}

/** Writes one deploy record (idempotent per request id). */
export async function recordDeploy(
  ddb: DynamoDBDocumentClient,
  table: string,
  record: DeployRecord,
): Promise<void> {
  await ddb.send(
    new PutCommand({
      TableName: table,
      Item: {
        ...deployKey(record.at, record.requestId),
        kind: record.kind,
        hash: record.hash,
        stack: record.stack,
        requestId: record.requestId,
        ...(record.phase === undefined ? {} : { phase: record.phase }),
        at: Math.floor(record.at / 1000),
      },
    }),
  );
}

/**
 * The deploy records at or after `sinceMs`, oldest first.
 * @param sinceMs epoch milliseconds
 */
export async function readDeploysSince(
  ddb: DynamoDBDocumentClient,
  table: string,
  sinceMs: number,
): Promise<DeployRecord[]> {
  const out: DeployRecord[] = [];
  const pages = paginateQuery(
    { client: ddb },
    {
      TableName: table,
      KeyConditionExpression: 'pk = :pk AND sk >= :from',
      ExpressionAttributeValues: { ':pk': DEPLOY_PK, ':from': pad(Math.max(0, sinceMs), 13) },
      ConsistentRead: true,
    },
  );
  for await (const page of pages) {
    for (const item of page.Items ?? []) {
      const sk = String(item.sk);
      const kind = item.kind;
      if (kind !== 'Create' && kind !== 'Update' && kind !== 'Delete') continue;
      const phase = item.phase;
      out.push({
        at: Number(sk.slice(0, 13)),
        kind,
        hash: String(item.hash ?? ''),
        stack: String(item.stack ?? ''),
        requestId: String(item.requestId ?? sk.slice(14)),
        ...(phase === 'before' || phase === 'after' ? { phase } : {}),
      });
    }
  }
  return out;
}
