/**
 * Removal detection (DESIGN section 1, "Resets and stale reads are not
 * unblocks"): what an address the pipeline confirmed in a set and now finds
 * missing means.
 *
 * - A read whose LockToken is one that the pipeline's own writes
 *   superseded is stale: AWS documents that changes take "from a few
 *   seconds to a number of minutes" to propagate (WAFUnavailableEntityException
 *   in the WAFv2 API reference), so a read soon after a write can answer
 *   the previous contents. It proves nothing.
 * - A loss after a deploy of the stack that owns the sets is a reset:
 *   CloudFormation replaces a set's addresses with the template's list when
 *   it updates the resource (aws-waf-security-automations issue #233).
 * - So is a fresh read that lacks more than max(10, 10%) of the addresses
 *   the pipeline had confirmed in that set.
 * - Only a smaller loss, in a fresh read with no deploy in between, is a
 *   person's removal, which ends the key's blocks.
 */

/** The fewest missing addresses that make a reset without a deploy is one more than this. */
export const RESET_MIN = 10;
/** ... or than this share of the confirmed addresses, whichever is larger. */
export const RESET_SHARE = 0.1;

/** How many missing addresses a fresh read may lack before the loss is a reset. */
export function resetThreshold(confirmed: number): number {
  return Math.max(RESET_MIN, Math.floor(confirmed * RESET_SHARE));
}

/** Whether a read answering `token` is stale: one of the pipeline's own writes superseded it. */
export function isStale(token: string, superseded: readonly string[]): boolean {
  return superseded.includes(token);
}

/** What a loss is. */
/**
 * How long a deploy's `before` record with no `after` record yet keeps a
 * loss counted as that deploy's reset. CloudFormation empties the sets
 * between the two records, so a read in that gap is the deploy's doing
 * even when the set's previous read came after the `before` record. An
 * `after` record that was never written (the handler logs and lets the
 * deployment go on) stops excusing losses after this long.
 */
export const DEPLOY_IN_PROGRESS_MS = 60 * 60 * 1000;

/** What {@link deployExplainsLoss} needs of a deploy record. */
export interface DeployMark {
  readonly at: number;
  readonly stack?: string;
  readonly phase?: 'before' | 'after';
}

/**
 * Whether a deploy can explain a loss in a read of a set whose last fresh
 * read was at `lastReadAt`: a record newer than that read, or a deploy in
 * progress (a `before` record of a stack, younger than
 * {@link DEPLOY_IN_PROGRESS_MS}, with no `after` record of that stack at
 * or after it).
 */
export function deployExplainsLoss(
  deploys: readonly DeployMark[],
  lastReadAt: number,
  nowMs: number,
): boolean {
  if (deploys.some((d) => d.at > lastReadAt)) return true;
  return deploys.some(
    (b) =>
      b.phase === 'before' &&
      nowMs - b.at <= DEPLOY_IN_PROGRESS_MS &&
      !deploys.some((a) => a.phase === 'after' && a.stack === b.stack && a.at >= b.at),
  );
}

export type LossVerdict =
  | { readonly kind: 'none' }
  | { readonly kind: 'reset'; readonly cause: 'deploy' | 'mass' | 'ongoing' }
  | { readonly kind: 'removal' };

/**
 * Judges the loss a fresh read shows.
 * @param missing confirmed addresses missing that no update of the pipeline took out
 * @param confirmed how many addresses the pipeline had confirmed in the set
 * @param deployedSinceRead a deploy record is newer than the set's last fresh read
 * @param ongoing a reset of this set was seen before and its re-adds are not confirmed yet
 */
export function judgeLoss(
  missing: number,
  confirmed: number,
  deployedSinceRead: boolean,
  ongoing: boolean,
): LossVerdict {
  if (missing === 0) return { kind: 'none' };
  if (ongoing) return { kind: 'reset', cause: 'ongoing' };
  if (deployedSinceRead) return { kind: 'reset', cause: 'deploy' };
  if (missing > resetThreshold(confirmed)) return { kind: 'reset', cause: 'mass' };
  return { kind: 'removal' };
}

/**
 * The tokens to remember after a successful update that replaced `sent`
 * and returned `next`: `sent` and the token the previous update returned
 * (if someone else's write replaced it, it is as old as `sent`), newest
 * last, at most `keep`.
 */
export function supersede(
  superseded: readonly string[],
  lastToken: string | null,
  sent: string,
  keep: number,
): string[] {
  const out = superseded.filter((t) => t !== sent && t !== lastToken);
  if (lastToken !== null && lastToken !== sent) out.push(lastToken);
  out.push(sent);
  return out.slice(-keep);
}
