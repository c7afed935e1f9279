/**
 * The operator commands of DESIGN section 4: `list`, `check`, `history`,
 * `block`, `unblock`, `status`, `pause`, `resume`. They read and change the
 * state table (`lambda/state/operator.ts`) of a running `edgeban local
 * --serve` or a deployed stack; changes reach WAF through the pipeline's
 * reconciler, never by editing an IP set here.
 */
import type { Command } from 'commander';
import { parseDuration } from '../lambda/core/duration';
import { keyToCidr } from '../lambda/core/ip';
import type { BlockView } from '../lambda/state/operator';
import { RefusedError, UsageError } from './errors';
import type { LiftOptions } from './lift';
import type { Io } from './main';
import {
  addTarget,
  type CommonOptions,
  outcomeLine,
  printJson,
  wafHolds,
  warnIfFailed,
  withBackend,
} from './operator-common';
import { renderCheck, renderHistory, renderList, renderStatus, span } from './text';

interface BlockOptions extends CommonOptions {
  readonly for?: string;
  readonly reason?: string;
}

interface UnblockOptions extends CommonOptions {
  readonly reason?: string;
}

function parseFor(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = parseDuration(text);
  if (seconds === null) {
    throw new UsageError(`--for must be a duration like 90s, 30m, 4h or 7d, got ${text}`);
  }
  return seconds;
}

async function runBlock(target: string, opts: BlockOptions, io: Io): Promise<void> {
  const forSeconds = parseFor(opts.for);
  await withBackend(opts, async (backend, { manualBlock }) => {
    const { deps } = backend;
    const by = await backend.actor();
    const made = await manualBlock(deps, target, {
      by,
      ...(forSeconds === undefined ? {} : { forSeconds }),
      ...(opts.reason === undefined ? {} : { reason: opts.reason }),
    });
    const cidr = keyToCidr(made.key);
    const outcome = await backend.apply(deps.now(), () => wafHolds(deps, cidr));
    const block: BlockView = { ...made, inWaf: await wafHolds(deps, cidr) };
    if (opts.json) {
      warnIfFailed(outcome, io);
      printJson(io, block);
      return;
    }
    const seconds = forSeconds ?? backend.config.block.durationSeconds;
    const why = block.reason === null ? '' : ` ("${block.reason}")`;
    io.out(
      `Blocked ${block.key} for ${span(seconds)}, until ${block.blockedUntil}, by ${by}${why}.\n` +
        `${outcomeLine(outcome, cidr, block.inWaf, true)}\n`,
    );
  });
}

async function runUnblock(target: string, opts: UnblockOptions, io: Io): Promise<void> {
  await withBackend(opts, async (backend, { unblock }) => {
    const { deps } = backend;
    const by = await backend.actor();
    const result = await unblock(deps, target, {
      by,
      ...(opts.reason === undefined ? {} : { reason: opts.reason }),
    });
    const cidr = keyToCidr(result.key);
    const outcome = await backend.apply(deps.now(), async () => !(await wafHolds(deps, cidr)));
    const inWaf = await wafHolds(deps, cidr);
    if (opts.json) {
      warnIfFailed(outcome, io);
      printJson(io, { ...result, blocks: result.blocks.map((b) => ({ ...b, inWaf })) });
      return;
    }
    const ended = result.blocks.map((b) => (b.rule === null ? 'manual' : `rule ${b.rule}`));
    io.out(
      `Unblocked ${result.key} at ${result.at}, by ${by}: ended ${ended.length} block${ended.length === 1 ? '' : 's'} (${ended.join(', ')}). ` +
        'Only new traffic can block it again.\n' +
        `${outcomeLine(outcome, cidr, inWaf, false)}\n`,
    );
  });
}

async function runMode(pause: boolean, opts: CommonOptions, io: Io): Promise<void> {
  await withBackend(opts, async (backend, { setMode, status }) => {
    const { deps } = backend;
    const before = await status(deps);
    if (pause && before.override?.mode === 'observe') {
      throw new RefusedError(
        `already paused, since ${before.override.at} by ${before.override.by ?? 'unknown'}`,
      );
    }
    if (!pause && before.override === null) {
      throw new RefusedError(`not paused: the mode is ${before.mode}, from the config`);
    }
    const by = await backend.actor();
    const result = await setMode(deps, pause ? 'observe' : null, by);
    const outcome = await backend.apply(deps.now(), async (run) => run.mode === result.mode);
    if (opts.json) {
      warnIfFailed(outcome, io);
      printJson(io, result);
      return;
    }
    const head = pause
      ? `Paused by ${by}: the mode is observe (was ${before.mode}). Decisions are still recorded; WAF is left as it is, ` +
        'so addresses already in it stay until resume. To stop enforcing them now, switch the web ACL rule to Count.'
      : `Resumed by ${by}: the mode is ${result.mode}, from the config.`;
    io.out(`${head}\n${outcomeLine(outcome, null, false, false)}\n`);
  });
}

/**
 * Adds the operator commands to the program.
 * @param done receives the exit code of a command that completes
 */
export function registerOperatorCommands(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  addTarget(program.command('list').description('show every active block')).action(
    async (opts: CommonOptions) => {
      await withBackend(opts, async ({ deps }, { listBlocks }) => {
        const list = await listBlocks(deps);
        if (opts.json) printJson(io, list);
        else io.out(renderList(list, deps.now()));
      });
      done(0);
    },
  );

  addTarget(
    program
      .command('check')
      .description('explain why an address is or is not blocked')
      .argument('<ip>', 'an address or CIDR'),
  ).action(async (ip: string, opts: CommonOptions) => {
    await withBackend(opts, async ({ deps, config }, { checkAddress, status }) => {
      const result = await checkAddress(deps, ip);
      if (opts.json) {
        printJson(io, result);
        return;
      }
      const mode = result.blocked ? (await status(deps)).mode : config.mode;
      io.out(renderCheck(result, config, mode, deps.now()));
    });
    done(0);
  });

  addTarget(
    program
      .command('history')
      .description('show past blocks, unblocks and expiries of an address, and who made them')
      .argument('<ip>', 'an address or CIDR'),
  ).action(async (ip: string, opts: CommonOptions) => {
    await withBackend(opts, async ({ deps }, { history }) => {
      const result = await history(deps, ip);
      if (opts.json) printJson(io, result);
      else io.out(renderHistory(result));
    });
    done(0);
  });

  addTarget(
    program
      .command('block')
      .description(
        'block an address or range now (never a guarded one, never wider than minPrefix)',
      )
      .argument('<ip|cidr>', 'an address or CIDR')
      .option('--for <duration>', 'how long: 90s, 30m, 4h, 7d (default block.duration)')
      .option('--reason <text>', 'why, recorded in the history'),
  ).action(async (target: string, opts: BlockOptions) => {
    await runBlock(target, opts, io);
    done(0);
  });

  addTarget(
    program
      .command('unblock')
      .description('end every block of an address or range now, or of a rule, or all')
      .argument('[ip|cidr]', 'an address or CIDR, exactly as blocked')
      .option('--reason <text>', 'why, recorded in the history')
      .option('--rule <name>', "lift every block of this rule (other rules' blocks stay)")
      .option('--all', 'lift every active block, manual ones too')
      .option('--yes', 'with --rule or --all: lift them (without it: show them, exit 2)'),
  ).action(async (target: string | undefined, opts: LiftOptions) => {
    const { liftSelector, runLift } = await import('./lift');
    const selector = liftSelector(target, opts);
    if (selector === null) await runUnblock(target as string, opts, io);
    else await runLift(selector, opts, io);
    done(0);
  });

  addTarget(
    program.command('status').description('show the mode, rules, IP sets and pipeline lag'),
  ).action(async (opts: CommonOptions) => {
    await withBackend(opts, async ({ deps }, { status }) => {
      const result = await status(deps);
      if (opts.json) printJson(io, result);
      else io.out(renderStatus(result));
    });
    done(0);
  });

  addTarget(
    program
      .command('pause')
      .description('switch to observe mode without a redeploy: decide, but leave WAF as it is'),
  ).action(async (opts: CommonOptions) => {
    await runMode(true, opts, io);
    done(0);
  });

  addTarget(program.command('resume').description("end a pause: back to the config's mode")).action(
    async (opts: CommonOptions) => {
      await runMode(false, opts, io);
      done(0);
    },
  );
}
