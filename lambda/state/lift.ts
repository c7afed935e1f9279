/**
 * Lifting many blocks on purpose, and repairing removals that were not a
 * person's: the `unblock --rule NAME` / `unblock --all` and `reinstate`
 * operator commands over the state table. People lift blocks here (or in
 * the console widget), never by emptying an IP set: the reconciler takes a
 * mass loss from a set for a reset and puts it back (DESIGN section 1).
 *
 * `reinstate` repairs what a reconciler that could not tell a reset from a
 * person did before: it took addresses that CloudFormation wiped (an
 * update of an `AWS::WAFv2::IPSet` rewrites its addresses with the
 * template's list: aws-waf-security-automations issue #233) or that a
 * stale read lacked for console removals, and ended their blocks for good.
 * Those blocks are found by their `unblock` events by `console` in a time
 * range and put back with the end they had, where it is still ahead.
 */
import { type DynamoDBDocumentClient, PutCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import { applyUnblock, blockSeconds } from '../core/decide';
import { ruleTiming } from '../core/engine';
import { formatSeconds } from '../core/formats/time';
import { compareKeys } from '../core/ip';
import type { BlockRecord } from '../core/types';
import { CONSOLE_ACTOR } from '../reconciler/reconcile';
import { activeKey, historyPk } from '../shared/schema';
import {
  type ActiveBlock,
  blockProblem,
  deleteActiveBlock,
  endKeyBlocks,
  type HistoryEvent,
  readActiveBlocks,
  readHistory,
  recordEvent,
} from './blocks';
import {
  type BlockView,
  type OperatorDeps,
  OperatorInputError,
  OperatorRefusedError,
  ruleOrder,
  view,
} from './operator';
import { readPairState, updatePairState } from './pairs';

/** Which blocks `unblock --rule NAME` or `unblock --all` lifts. */
export type LiftSelector = { readonly rule: string } | { readonly all: true };

/** `unblock --rule` / `--all`: the blocks ended, now ending at `at`. */
export interface LiftResult {
  readonly unblocked: BlockView[];
  readonly at: string;
  readonly by: string;
}

/** Writes in flight at once: a few hundred blocks lift in seconds, without a burst. */
const PARALLEL = 8;

async function inBatches<T>(items: readonly T[], each: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL) {
    await Promise.all(items.slice(i, i + PARALLEL).map(each));
  }
}

function describeSelector(selector: LiftSelector): string {
  return 'rule' in selector ? `rule ${selector.rule}` : 'any rule or manual';
}

/**
 * The active blocks a selector matches, in `list` order.
 * @throws OperatorInputError for a rule that neither the config nor any block has
 * @throws OperatorRefusedError when nothing matches
 */
export async function blocksToLift(
  deps: OperatorDeps,
  selector: LiftSelector,
): Promise<ActiveBlock[]> {
  const nowS = Math.floor(deps.now() / 1000);
  const active = (await readActiveBlocks(deps.ddb, deps.tableName)).filter((b) => b.until > nowS);
  const matched = 'rule' in selector ? active.filter((b) => b.rule === selector.rule) : active;
  if ('rule' in selector && matched.length === 0) {
    if (!deps.config.rules.some((r) => r.name === selector.rule)) {
      const names = deps.config.rules.map((r) => r.name).join(', ');
      throw new OperatorInputError(`no rule ${selector.rule} in the config (rules: ${names})`);
    }
  }
  if (matched.length === 0) {
    throw new OperatorRefusedError(`no active block of ${describeSelector(selector)}`);
  }
  return matched.sort(ruleOrder(deps.config));
}

/** Ends one rule's block of a key: that pair only counts new traffic from `atS` on. */
async function endRuleBlock(
  deps: OperatorDeps,
  block: ActiveBlock,
  at: { readonly ms: number; readonly by: string; readonly reason: string | null },
): Promise<boolean> {
  const rule = block.rule;
  if (rule === null) throw new OperatorInputError('a manual block has no rule');
  const atS = Math.floor(at.ms / 1000);
  const windowMinutes = deps.config.rules.find((r) => r.name === rule)?.windowMinutes;
  await updatePairState(deps.ddb, deps.tableName, rule, block.key, ({ state }) => {
    const before = JSON.stringify(state);
    applyUnblock(state, atS);
    if (JSON.stringify(state) === before) return null;
    return { unblockedBy: at.by, ...(windowMinutes === undefined ? {} : { windowMinutes }) };
  });
  await recordEvent(deps.ddb, deps.tableName, {
    at: at.ms,
    kind: 'unblock',
    key: block.key,
    rule,
    by: at.by,
    reason: at.reason,
  });
  return deleteActiveBlock(deps.ddb, deps.tableName, block);
}

/**
 * `unblock --rule NAME` ends that rule's blocks (other rules' blocks of the
 * same keys stay); `unblock --all` ends every block of every key, manual
 * ones too. Each key can then only be blocked again by new traffic.
 * @param blocks the blocks {@link blocksToLift} returned, as confirmed
 */
export async function liftBlocks(
  deps: OperatorDeps,
  selector: LiftSelector,
  blocks: readonly ActiveBlock[],
  options: { readonly by: string; readonly reason?: string },
): Promise<LiftResult> {
  const at = { ms: deps.now(), by: options.by, reason: options.reason ?? null };
  const ended: ActiveBlock[] = [];
  if ('rule' in selector) {
    await inBatches(blocks, async (b) => {
      if (await endRuleBlock(deps, b, at)) ended.push(b);
    });
  } else {
    const byKey = new Map<string, ActiveBlock[]>();
    for (const b of blocks) byKey.set(b.key, [...(byKey.get(b.key) ?? []), b]);
    await inBatches([...byKey.entries()], async ([key, ofKey]) => {
      ended.push(...(await endKeyBlocks(deps.ddb, deps.tableName, deps.config, key, ofKey, at)));
    });
  }
  const atS = Math.floor(at.ms / 1000);
  ended.sort(ruleOrder(deps.config));
  return {
    unblocked: ended.map((b) => view({ ...b, until: Math.max(b.start, atS) }, false)),
    at: formatSeconds(atS),
    by: options.by,
  };
}

/** One block `reinstate` would put back, or why it leaves one alone. */
export interface ReinstateCandidate {
  readonly key: string;
  readonly rule: string | null;
  /** Epoch ms of the `unblock` by `console`. */
  readonly removedAt: number;
  /** The block as it will be active again; absent when skipped. */
  readonly block?: ActiveBlock;
  /** Why it is left alone; absent when it is put back. */
  readonly skip?: string;
}

/** `reinstate`'s plan: what it puts back, and what it leaves and why. */
export interface ReinstatePlan {
  readonly restore: ReinstateCandidate[];
  readonly skipped: ReinstateCandidate[];
}

/** `reinstate`, as JSON. */
export interface ReinstateResult {
  readonly reinstated: BlockView[];
  /** Blocks the plan would put back that this run left for the next (see `reinstateLimit`). */
  readonly remaining: number;
  readonly skipped: { key: string; rule: string | null; removedAt: string; reason: string }[];
}

/**
 * The `unblock` events by `console` whose time is in [sinceMs, untilMs).
 * History items are the one record of removals made before the event log
 * existed, so this is a filtered scan: a rare repair, read once.
 */
async function consoleUnblocks(
  ddb: DynamoDBDocumentClient,
  table: string,
  sinceMs: number,
  untilMs: number,
): Promise<HistoryEvent[]> {
  const out: HistoryEvent[] = [];
  const pages = paginateScan(
    { client: ddb },
    {
      TableName: table,
      FilterExpression:
        'begins_with(pk, :hist) AND kind = :unblock AND #by = :console AND #at BETWEEN :from AND :to',
      ExpressionAttributeNames: { '#by': 'by', '#at': 'at' },
      ExpressionAttributeValues: {
        ':hist': historyPk(''),
        ':unblock': 'unblock',
        ':console': CONSOLE_ACTOR,
        ':from': Math.floor(sinceMs / 1000),
        ':to': Math.ceil(untilMs / 1000),
      },
    },
  );
  for await (const page of pages) {
    for (const item of page.Items ?? []) {
      const at = Number(String(item.sk).slice(0, 13));
      if (!(at >= sinceMs && at < untilMs) || typeof item.key !== 'string') continue;
      out.push({
        at,
        kind: 'unblock',
        key: item.key,
        rule: typeof item.rule === 'string' ? item.rule : null,
        by: CONSOLE_ACTOR,
        reason: typeof item.reason === 'string' ? item.reason : null,
      });
    }
  }
  return out.sort((a, b) => a.at - b.at || compareKeys(a.key, b.key));
}

/** The pair's block that the unblock at `atS` cut short, if it is still as the unblock left it. */
function cutBlock(blocks: readonly BlockRecord[], atS: number): BlockRecord | undefined {
  return [...blocks].reverse().find((b) => b.start <= atS && b.until === Math.max(b.start, atS));
}

/** Why one console removal is not put back, or the block that comes back. */
async function candidate(
  deps: OperatorDeps,
  event: HistoryEvent,
  active: ReadonlySet<string>,
): Promise<ReinstateCandidate> {
  const base = { key: event.key, rule: event.rule, removedAt: event.at };
  const skip = (why: string): ReinstateCandidate => ({ ...base, skip: why });
  const later = (await readHistory(deps.ddb, deps.tableName, event.key)).find(
    (e) =>
      e.at > event.at &&
      (e.kind === 'block' || e.kind === 'unblock') &&
      (e.rule === event.rule || e.rule === null || event.rule === null),
  );
  if (later !== undefined) {
    return skip(
      `${later.kind === 'block' ? 'blocked' : 'unblocked'} again since, at ${formatSeconds(Math.floor(later.at / 1000))} by ${later.by ?? 'edgeban'}`,
    );
  }
  if (event.rule === null) {
    return skip(
      'a manual block, or none: its end was not recorded (block it again with edgeban block)',
    );
  }
  const rule = deps.config.rules.find((r) => r.name === event.rule);
  if (rule === undefined) return skip(`rule ${event.rule} is no longer in the config`);
  const sk = activeKey(event.key, rule.name).sk;
  if (active.has(sk)) return skip('active again');
  const problem = blockProblem(event.key, deps.config, deps.guard);
  if (problem !== null) return skip(`refused: ${problem}`);
  const { state } = await readPairState(deps.ddb, deps.tableName, rule.name, event.key);
  const atS = Math.floor(event.at / 1000);
  const cut = cutBlock(state.blocks, atS);
  if (cut === undefined) return skip('no block of the pair ended then');
  const until =
    cut.start +
    blockSeconds(ruleTiming(rule, deps.config).durationSeconds, cut.offence, deps.config.block);
  const nowS = Math.floor(deps.now() / 1000);
  if (until <= nowS) return skip(`it would have ended at ${formatSeconds(until)} anyway`);
  return {
    ...base,
    block: {
      key: event.key,
      rule: rule.name,
      source: 'rule',
      start: cut.start,
      until,
      offences: cut.offence,
      peak: state.peak,
      window: rule.windowMinutes,
      firstExceeded: state.firstExceeded,
      reason: `${state.peak} requests in ${rule.windowMinutes}m over threshold ${rule.threshold}`,
      by: 'edgeban',
    },
  };
}

/**
 * What `reinstate --since --until` would do: every block ended as a
 * console removal in the range that can come back (its rule still
 * configured, its end still ahead, nothing done to the key since), and the
 * others with the reason each stays as it is.
 * @throws OperatorInputError when the range is empty
 */
export async function planReinstate(
  deps: OperatorDeps,
  sinceMs: number,
  untilMs: number,
): Promise<ReinstatePlan> {
  if (!(sinceMs < untilMs)) {
    throw new OperatorInputError(
      `--since must be before --until, got ${formatSeconds(Math.floor(sinceMs / 1000))} and ${formatSeconds(Math.floor(untilMs / 1000))}`,
    );
  }
  const events = await consoleUnblocks(deps.ddb, deps.tableName, sinceMs, untilMs);
  const nowS = Math.floor(deps.now() / 1000);
  const active = new Set(
    (await readActiveBlocks(deps.ddb, deps.tableName))
      .filter((b) => b.until > nowS)
      .map((b) => activeKey(b.key, b.rule).sk),
  );
  const all: ReinstateCandidate[] = [];
  await inBatches(events, async (e) => {
    all.push(await candidate(deps, e, active));
  });
  all.sort((a, b) => a.removedAt - b.removedAt || compareKeys(a.key, b.key));
  return {
    restore: all.filter((c) => c.block !== undefined),
    skipped: all.filter((c) => c.block === undefined),
  };
}

/**
 * How many blocks one `reinstate` puts back: the reconciler takes them for
 * new addresses, and more than `maxNewBlocksPerRun` in one run trips its
 * circuit breaker (nothing written); half of it leaves room for the
 * pipeline's own new blocks. The rest come back with the next `reinstate`.
 */
export function reinstateLimit(deps: OperatorDeps): number {
  return Math.max(1, Math.floor(deps.config.maxNewBlocksPerRun / 2));
}

/**
 * Puts the plan's blocks back, oldest removal first, at most
 * {@link reinstateLimit}: the pair's block gets its end again, its active
 * item returns, and a `block` event by `by` says why. A pair changed since
 * the plan was made is left as it is.
 * @returns the blocks active again
 */
export async function reinstate(
  deps: OperatorDeps,
  plan: ReinstatePlan,
  by: string,
): Promise<ActiveBlock[]> {
  const done: ActiveBlock[] = [];
  const nowMs = deps.now();
  await inBatches(plan.restore.slice(0, reinstateLimit(deps)), async (c) => {
    const b = c.block;
    if (b === undefined || b.rule === null) return;
    const atS = Math.floor(c.removedAt / 1000);
    const update = await updatePairState(deps.ddb, deps.tableName, b.rule, b.key, ({ state }) => {
      const cut = cutBlock(state.blocks, atS);
      if (cut === undefined || cut.start !== b.start || cut.offence !== b.offences) return null;
      cut.until = b.until;
      return { windowMinutes: b.window ?? undefined };
    });
    if (!update.changed) return;
    await recordEvent(deps.ddb, deps.tableName, {
      at: nowMs,
      kind: 'block',
      key: b.key,
      rule: b.rule,
      by,
      reason: `reinstated: ended at ${formatSeconds(atS)} as a removal from an IP set, which was not a person's`,
    });
    // With the pair's version, as ingest writes it: ingest's undo of a racing unblock keys on it.
    await deps.ddb.send(
      new PutCommand({
        TableName: deps.tableName,
        Item: { ...activeKey(b.key, b.rule), ...b, v: update.version },
      }),
    );
    done.push(b);
  });
  return done.sort(ruleOrder(deps.config));
}

/** The plan and what was done, as `reinstate --json` prints it. */
export function reinstateResult(
  plan: ReinstatePlan,
  reinstated: readonly ActiveBlock[],
  limit: number,
): ReinstateResult {
  return {
    reinstated: reinstated.map((b) => view(b, false)),
    remaining: Math.max(0, plan.restore.length - limit),
    skipped: plan.skipped.map((c) => ({
      key: c.key,
      rule: c.rule,
      removedAt: formatSeconds(Math.floor(c.removedAt / 1000)),
      reason: c.skip ?? '',
    })),
  };
}
