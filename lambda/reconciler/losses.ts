/**
 * What the reconciler does with a loss a fresh read shows, once
 * `removals.ts` has judged it: a reset is repaired (the addresses go back
 * with one `reset` event per key per incident, never an unblock); a
 * person's removal ends the key's blocks (an unblock by the console).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { EdgebanConfig } from '../core/types';
import { type ActiveBlock, cidrToKey, endKeyBlocks, recordEvent } from '../state/blocks';
import type { Wanted } from './plan';
import { type DeployMark, deployExplainsLoss, judgeLoss } from './removals';
import type { ReconcileLogger } from './result';
import type { SetRun } from './set-run';

/** Who a console removal is recorded as. */
export const CONSOLE_ACTOR = 'console';
/** Who a reset repair is recorded as. */
export const RESET_ACTOR = 'edgeban';

/** What the handling of losses works with, for one run. */
export interface LossContext {
  readonly ddb: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly config: EdgebanConfig;
  readonly now: () => number;
  /** The run's fencing token. */
  readonly fence: number;
  /** The desired addresses; a person's removal takes its address out. */
  readonly wanted: Map<string, Wanted>;
  readonly active: readonly ActiveBlock[];
  /**
   * Deploy records of the stack that owns the sets, since the oldest last
   * read less `DEPLOY_IN_PROGRESS_MS` (a deploy in progress started
   * before it).
   */
  readonly deploys: readonly DeployMark[];
  readonly result: { readonly resets: string[]; readonly consoleUnblocks: string[] };
  readonly log?: ReconcileLogger;
}

/** Handles the losses of one run's fresh reads. */
export class LossHandler {
  private readonly unblocked = new Set<string>();
  private readonly resetKeys = new Set<string>();

  constructor(private readonly c: LossContext) {}

  /** Takes in what a fresh read lacks: a reset to repair, or a person's removals. */
  async judge(r: SetRun, lastReadAt: number): Promise<void> {
    const missing = r.missing();
    const deployed = deployExplainsLoss(this.c.deploys, lastReadAt, this.c.now());
    // A deploy since the last fresh read: the record keeps the new read time either way.
    if (deployed) r.dirty = true;
    const verdict = judgeLoss(missing.length, r.confirmed.size, deployed, r.resetAt !== null);
    if (verdict.kind === 'none') return;
    if (verdict.kind === 'reset') {
      await this.repair(r, missing, verdict.cause);
      return;
    }
    for (const cidr of missing) await this.consoleRemoval(r, cidr);
  }

  /** Puts back what a reset took that is still wanted, with one `reset` event per key. */
  private async repair(r: SetRun, missing: readonly string[], cause: string): Promise<void> {
    r.resetAt ??= this.c.now();
    r.dirty = true;
    let readded = 0;
    for (const cidr of missing) {
      const w = this.c.wanted.get(cidr);
      if (w === undefined) {
        // No longer wanted (ended meanwhile): it stays out.
        r.forget(cidr);
        continue;
      }
      r.readd.add(cidr);
      readded++;
      if (this.resetKeys.has(w.key)) continue;
      this.resetKeys.add(w.key);
      this.c.result.resets.push(w.key);
      // At the incident's first sighting: a later run of the same incident rewrites the same event.
      await recordEvent(
        this.c.ddb,
        this.c.tableName,
        {
          at: r.resetAt,
          kind: 'reset',
          key: w.key,
          rule: null,
          by: RESET_ACTOR,
          reason: `lost from IP set ${r.ref.name} (${cause === 'deploy' ? 'after a deploy' : 'mass loss'}); put back`,
        },
        this.c.fence,
      );
    }
    this.c.log?.warn('IP set reset: addresses put back, not unblocked', {
      ipSet: r.ref.name,
      missing: missing.length,
      readded,
      cause,
    });
  }

  /** Records a removal by someone else as an unblock, and drops it from the run. */
  private async consoleRemoval(r: SetRun, cidr: string): Promise<void> {
    const key = this.c.wanted.get(cidr)?.key ?? cidrToKey(cidr);
    r.forget(cidr);
    this.c.wanted.delete(cidr);
    if (this.unblocked.has(key)) return;
    this.unblocked.add(key);
    await endKeyBlocks(this.c.ddb, this.c.tableName, this.c.config, key, this.c.active, {
      ms: this.c.now(),
      by: CONSOLE_ACTOR,
      reason: `removed from IP set ${r.ref.name}`,
      fence: this.c.fence,
    });
    this.c.result.consoleUnblocks.push(key);
    this.c.log?.info('address removed from an IP set by someone else: recorded as an unblock', {
      key,
      ipSet: r.ref.name,
    });
  }
}
