/**
 * The state table calls each counting function and the reconciler make, as
 * IAM actions (read from the handlers; test/infra/permissions.test.ts
 * derives them from the bundled handler and compares): no Scan, no stream
 * reads, no DescribeTable.
 */
export const TABLE_ACTIONS = {
  /** Ingest and the real-time consumer: counts, pair states, blocks, the object ledger. */
  counting: [
    'dynamodb:BatchGetItem',
    'dynamodb:BatchWriteItem',
    'dynamodb:DeleteItem',
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:Query',
    'dynamodb:UpdateItem',
  ],
  /** Active blocks, the lease, membership, history. */
  reconciler: [
    'dynamodb:DeleteItem',
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:Query',
    'dynamodb:UpdateItem',
  ],
} as const;
