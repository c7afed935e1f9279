/**
 * Recent events across every key, newest first, from the day partitions
 * of the event log (`EVENTS#<yyyy-mm-dd>` in `lambda/shared/schema.ts`):
 * one Query per day, newest day first, each reading only as many items as
 * are still wanted. Never a table scan.
 */
import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { eventLogPk } from '../shared/schema';

/** One event of the log. */
export interface LoggedEvent {
  /** Epoch milliseconds. */
  readonly at: number;
  /** `block`, `unblock`, `expire`, `reset` (kinds added later show as written). */
  readonly kind: string;
  readonly key: string;
  readonly rule: string | null;
  readonly by: string | null;
  readonly reason: string | null;
}

/** Options of {@link readRecentEvents}. */
export interface RecentOptions {
  /** @default 25 */
  readonly limit?: number;
  /** Days looked back, today included. @default 7 */
  readonly days?: number;
}

const DAY_MS = 86_400_000;

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/**
 * The newest events up to `nowMs`.
 * @param nowMs the pipeline clock; events stamped later (a block's future expiry is written when it is swept, never ahead) are left out
 */
export async function readRecentEvents(
  ddb: DynamoDBDocumentClient,
  table: string,
  nowMs: number,
  options: RecentOptions = {},
): Promise<LoggedEvent[]> {
  const limit = options.limit ?? 25;
  const days = options.days ?? 7;
  const out: LoggedEvent[] = [];
  const upTo = `${String(nowMs).padStart(13, '0')}#~`;
  for (let d = 0; d < days && out.length < limit; d++) {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await ddb.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'pk = :pk AND sk <= :upTo',
          ExpressionAttributeValues: { ':pk': eventLogPk(nowMs - d * DAY_MS), ':upTo': upTo },
          ScanIndexForward: false,
          Limit: limit - out.length,
          ...(start === undefined ? {} : { ExclusiveStartKey: start }),
        }),
      );
      for (const item of page.Items ?? []) {
        const sk = String(item.sk);
        const key = str(item.key);
        const kind = str(item.kind);
        if (key === null || kind === null) continue;
        out.push({
          at: Number(sk.slice(0, 13)),
          kind,
          key,
          rule: str(item.rule),
          by: str(item.by),
          reason: str(item.reason),
        });
      }
      start = page.LastEvaluatedKey;
    } while (start !== undefined && out.length < limit);
  }
  return out.slice(0, limit);
}
