/**
 * Fenced writes (DESIGN section 5: "state writes are fenced by the lease
 * the writer holds"). A reconcile's writes carry the fencing token of its
 * lease in a `fence` attribute and are conditional on no newer token
 * having written the item. The token lives on the item itself: no
 * transactions, which dynalite lacks.
 */

/** A newer reconcile's fencing token wrote the item: this writer must stop. */
export class FencedWriteError extends Error {
  constructor(
    readonly item: string,
    readonly fence: number,
  ) {
    super(`${item} was written by a newer reconcile than fence ${fence}`);
    this.name = 'FencedWriteError';
  }
}

/** The condition of a fenced write (`:f` is the writer's token). */
export const FENCE_CONDITION = '(attribute_not_exists(fence) OR fence <= :f)';

/** Whether `err` is DynamoDB refusing a condition. */
export function isConditionFailure(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}
