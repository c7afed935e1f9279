/**
 * Lifting many blocks on purpose (`unblock --rule NAME`, `unblock --all`)
 * and putting back blocks that were ended as console removals by mistake
 * (`reinstate --since --until`). Both show what they would do and act only
 * with `--yes`: without it they exit 2 saying how many they would change
 * (DESIGN section 4's exit codes; nothing matched is exit 1).
 */
import type { Command } from 'commander';
import { keyToCidr } from '../lambda/core/ip';
import type { LiftSelector, ReinstatePlan } from '../lambda/state/lift';
import type { BlockView } from '../lambda/state/operator';
import { RefusedError, UsageError } from './errors';
import { parseTimeArg } from './inputs';
import type { Io } from './main';
import {
  addTarget,
  type CommonOptions,
  outcomeLine,
  printJson,
  warnIfFailed,
  withBackend,
} from './operator-common';
import { renderList, table } from './text';

/** `unblock`'s options for many blocks at once. */
export interface LiftOptions extends CommonOptions {
  readonly rule?: string;
  readonly all?: boolean;
  readonly yes?: boolean;
  readonly reason?: string;
}

interface ReinstateOptions extends CommonOptions {
  readonly since?: string;
  readonly until?: string;
  readonly yes?: boolean;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * The selector of `--rule NAME` / `--all`, or null for a single target.
 * @throws UsageError for a target together with them, both, or none of the three
 */
export function liftSelector(target: string | undefined, opts: LiftOptions): LiftSelector | null {
  const bulk = (opts.rule === undefined ? 0 : 1) + (opts.all ? 1 : 0);
  if (bulk > 1) throw new UsageError('give --rule NAME or --all, not both');
  if (bulk === 1 && target !== undefined) {
    throw new UsageError(`give an address or --rule/--all, not both, got ${target}`);
  }
  if (bulk === 0) {
    if (target === undefined) {
      throw new UsageError('unblock needs an address or CIDR, --rule NAME, or --all');
    }
    if (opts.yes) throw new UsageError('--yes goes with --rule or --all');
    return null;
  }
  return opts.rule === undefined ? { all: true } : { rule: opts.rule };
}

/** `unblock --rule NAME` / `unblock --all`. */
export async function runLift(selector: LiftSelector, opts: LiftOptions, io: Io): Promise<void> {
  await withBackend(opts, async (backend, h) => {
    const { deps } = backend;
    const blocks = await h.blocksToLift(deps, selector);
    const which = 'rule' in selector ? ` of rule ${selector.rule}` : '';
    if (!opts.yes) {
      const views = blocks.map((b) => h.view(b, false));
      if (opts.json) printJson(io, { wouldUnblock: views });
      else io.out(renderList({ blocks: views }, deps.now()));
      throw new UsageError(
        `would lift ${plural(blocks.length, 'block')}${which}: run again with --yes to lift them`,
      );
    }
    const by = await backend.actor();
    const result = await h.liftBlocks(deps, selector, blocks, {
      by,
      ...(opts.reason === undefined ? {} : { reason: opts.reason }),
    });
    const outcome = await backend.apply(deps.now());
    const inWaf = new Set<string>();
    for (const m of (await h.readMemberships(deps.ddb, deps.tableName)).values()) {
      for (const c of m.confirmed) inWaf.add(c);
    }
    const unblocked: BlockView[] = result.unblocked.map((b) => ({
      ...b,
      inWaf: inWaf.has(keyToCidr(b.key)),
    }));
    if (opts.json) {
      warnIfFailed(outcome, io);
      printJson(io, { unblocked });
      return;
    }
    const keys = new Set(unblocked.map((b) => b.key)).size;
    const still = unblocked.filter((b) => b.inWaf).length;
    io.out(
      `Lifted ${plural(unblocked.length, 'block')}${which} (${plural(keys, 'key')}) at ${result.at}, by ${by}. ` +
        'Only new traffic can block them again.\n' +
        `${outcomeLine(outcome, null, false, false)}\n` +
        (still === 0
          ? ''
          : `${plural(still, 'key')} stay in WAF: another active block keeps each there.\n`),
    );
  });
}

function renderPlan(plan: ReinstatePlan): string {
  const lines: string[] = [];
  const at = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const until = (s: number) => new Date(s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (plan.restore.length > 0) {
    lines.push(
      table(
        ['key', 'rule', 'removed at', 'blocked until', 'offence'],
        plan.restore.map((c) => [
          c.key,
          c.rule ?? 'manual',
          at(c.removedAt),
          c.block === undefined ? '' : until(c.block.until),
          c.block?.offences ?? '',
        ]),
      ),
    );
  }
  if (plan.skipped.length > 0) {
    lines.push(
      `Left as they are:\n${table(
        ['key', 'rule', 'removed at', 'why'],
        plan.skipped.map((c) => [c.key, c.rule ?? 'manual', at(c.removedAt), c.skip ?? '']),
      )}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** `reinstate --since T --until T [--yes]`. */
export async function runReinstate(opts: ReinstateOptions, io: Io): Promise<void> {
  if (opts.since === undefined || opts.until === undefined) {
    throw new UsageError('reinstate needs --since and --until (a date or an ISO time)');
  }
  const since = parseTimeArg(opts.since, '--since');
  const until = parseTimeArg(opts.until, '--until');
  await withBackend(opts, async (backend, h) => {
    const { deps } = backend;
    const plan = await h.planReinstate(deps, since, until);
    if (plan.restore.length === 0) {
      if (opts.json) printJson(io, h.reinstateResult(plan, [], 0));
      else if (plan.skipped.length > 0) io.out(renderPlan(plan));
      throw new RefusedError(
        plan.skipped.length === 0
          ? `no block was ended as a console removal between ${opts.since} and ${opts.until}`
          : `nothing to reinstate: ${plural(plan.skipped.length, 'console removal')} in the range, each left as it is`,
      );
    }
    if (!opts.yes) {
      if (opts.json) {
        printJson(io, {
          wouldReinstate: plan.restore.flatMap((c) =>
            c.block === undefined ? [] : [h.view(c.block, false)],
          ),
          skipped: h.reinstateResult(plan, [], 0).skipped,
        });
      } else io.out(renderPlan(plan));
      throw new UsageError(
        `would reinstate ${plural(plan.restore.length, 'block')}: run again with --yes to reinstate them`,
      );
    }
    const by = await backend.actor();
    const limit = h.reinstateLimit(deps);
    const done = await h.reinstate(deps, plan, by);
    const outcome = await backend.apply(deps.now());
    const result = h.reinstateResult(plan, done, limit);
    if (opts.json) {
      warnIfFailed(outcome, io);
      printJson(io, result);
      return;
    }
    const changed = Math.min(plan.restore.length, limit) - done.length;
    io.out(
      `Reinstated ${plural(done.length, 'block')}, by ${by}.` +
        (changed === 0
          ? ''
          : ` ${plural(changed, 'block')} changed meanwhile and stay as they are.`) +
        `\n${outcomeLine(outcome, null, false, false)}\n` +
        (result.remaining === 0
          ? ''
          : `${plural(result.remaining, 'more block')} to put back: run reinstate again (at most ${limit} a run, half of maxNewBlocksPerRun, so the reconciler's circuit breaker does not trip).\n`),
    );
  });
}

/** Adds `reinstate` to the program. */
export function registerReinstateCommand(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  addTarget(
    program
      .command('reinstate')
      .description(
        'put back blocks that were ended as console removals in a time range (resets taken for removals)',
      )
      .option('--since <time>', 'removals from this time on (a date or ISO time, UTC unless zoned)')
      .option('--until <time>', 'removals before this time')
      .option('--yes', 'reinstate them (without it: show what would come back, exit 2)'),
  ).action(async (opts: ReinstateOptions) => {
    await runReinstate(opts, io);
    done(0);
  });
}
