/**
 * Creates the state table where no CloudFormation does it: against dynalite
 * in tests and the local cloud. Same key schema as the CDK table (string
 * `pk`/`sk` from {@link TABLE}), billed per request.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TABLE } from '../shared/contract';

/** Base error of this module. */
export class TableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TableError';
  }
}

/** Options of {@link ensureTable}. */
export interface EnsureTableOptions {
  /**
   * How long to wait for the table to become ACTIVE, in milliseconds.
   * @default 30000
   */
  readonly timeoutMs?: number;
}

/**
 * Creates the table when it does not exist and waits until it is ACTIVE.
 * Safe to call concurrently and repeatedly.
 *
 * @param ddb a DynamoDB client (a document client works too: it sends the same commands)
 * @param name the table name
 * @throws TableError when the table does not become ACTIVE in time
 */
export async function ensureTable(
  ddb: DynamoDBClient | DynamoDBDocumentClient,
  name: string,
  options: EnsureTableOptions = {},
): Promise<void> {
  const client = ddb as DynamoDBClient;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: name,
        AttributeDefinitions: [
          { AttributeName: TABLE.partitionKey, AttributeType: 'S' },
          { AttributeName: TABLE.sortKey, AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return;
    if (Date.now() > deadline) {
      throw new TableError(
        `table ${name} is not active, status ${Table?.TableStatus ?? 'unknown'}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
