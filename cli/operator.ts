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
import type { BlockView, OperatorDeps } from '../lambda/state/operator';
import type { ApplyOutcome, Backend, TargetOptions } from './backend';
import {
  CliError,
  isUnreachable,
  oneLine,
  RefusedError,
  UnreachableError,
  UsageError,
} from './errors';
import type { Io } from './main';
import { renderCheck, renderHistory, renderList, renderStatus, span } from './text';

/**
 * The state layer, the membership reader and the backends pull in the AWS
 * SDK and the local cloud: they load when an operator command runs, never
 * for `--help` or `replay` (STYLE: the CLI loads only what a command needs).
 */
type Heavy = typeof import('../lambda/state/operator') &
  Pick<typeof import('../lambda/reconciler/membership'), 'readMemberships'> &
  Pick<typeof import('./backend'), 'openBackend'>;
let heavy: Heavy | undefined;

async function loadHeavy(): Promise<Heavy> {
  if (heavy === undefined) {
    const [state, membership, backend] = await Promise.all([
      import('../lambda/state/operator'),
      import('../lambda/reconciler/membership'),
      import('./backend'),
    ]);
    heavy = {
      ...state,
      readMemberships: membership.readMemberships,
      openBackend: backend.openBackend,
    };
  }
  return heavy;
}

/** Options every operator command takes. */
interface CommonOptions extends TargetOptions {
  readonly json?: boolean;
}

interface BlockOptions extends CommonOptions {
  readonly for?: string;
  readonly reason?: string;
}

interface UnblockOptions extends CommonOptions {
  readonly reason?: string;
}

/** Maps what the state layer and the SDK throw to the CLI's exit codes. */
function translate(err: unknown, backend: Backend, h: Heavy): unknown {
  const { OperatorInputError, OperatorRefusedError } = h;
  if (err instanceof CliError) return err;
  if (err instanceof OperatorRefusedError) return new RefusedError(err.message);
  if (err instanceof OperatorInputError) return new UsageError(err.message);
  if (isUnreachable(err)) {
    return new UnreachableError(`cannot reach ${backend.description}: ${oneLine(err)}`);
  }
  if ((err as { name?: unknown }).name === 'ResourceNotFoundException') {
    return new UnreachableError(
      `${backend.description}: state table ${backend.deps.tableName} not found`,
    );
  }
  return err;
}

async function withBackend<T>(
  opts: TargetOptions,
  action: (backend: Backend, h: Heavy) => Promise<T>,
): Promise<T> {
  const h = await loadHeavy();
  const backend = await h.openBackend(opts);
  try {
    return await action(backend, h);
  } catch (err) {
    throw translate(err, backend, h);
  } finally {
    backend.close();
  }
}

function printJson(io: Io, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

/** Whether the reconciler has an address in any IP set (its membership records). */
async function wafHolds(deps: OperatorDeps, cidr: string): Promise<boolean> {
  const { readMemberships } = await loadHeavy();
  for (const m of (await readMemberships(deps.ddb, deps.tableName)).values()) {
    if (m.confirmed.includes(cidr)) return true;
  }
  return false;
}

/**
 * One line on what the reconciler did with the change, for text output.
 * `inWaf` is whether the key's address is in WAF afterwards.
 */
function outcomeLine(
  outcome: ApplyOutcome,
  cidr: string | null,
  inWaf: boolean,
  wantInWaf: boolean,
): string {
  if (outcome.kind === 'scheduled') {
    return `The reconciler applies this on its next run, within a minute (${outcome.why}).`;
  }
  if (outcome.kind === 'failed') {
    return `WAF was not updated now (${outcome.why}); the reconciler's next run applies this.`;
  }
  const ran =
    outcome.kind === 'nudged'
      ? `The reconciler ran at ${new Date(outcome.at).toISOString().replace(/\.\d{3}Z$/, 'Z')}`
      : 'The reconciler ran';
  if (outcome.kind === 'reconciled') {
    const r = outcome.result;
    if (r.mode === 'observe') return `${ran}: the mode is observe, so WAF is left as it is.`;
    if (r.tripped) {
      return `${ran} but its circuit breaker tripped (more than maxNewBlocksPerRun new addresses): nothing was written to WAF.`;
    }
    const refused = cidr === null ? undefined : r.refused.find((x) => keyToCidr(x.key) === cidr);
    if (refused !== undefined) return `${ran} and refused to write it: ${refused.reason}.`;
    if (cidr !== null && r.evicted.includes(cidr)) {
      return `${ran} but the IP sets are full: it is left out of WAF (its block ends soonest).`;
    }
  }
  if (cidr === null) {
    if (outcome.kind !== 'reconciled') return `${ran}.`;
    const { added, removed } = outcome.result;
    return `${ran}: ${added.length} address${added.length === 1 ? '' : 'es'} added to WAF, ${removed.length} removed.`;
  }
  if (wantInWaf) return inWaf ? `${ran}: ${cidr} is in WAF now.` : `${ran}: ${cidr} is not in WAF.`;
  return inWaf
    ? `${ran}: ${cidr} is still in WAF (another active block keeps it there).`
    : `${ran}: ${cidr} is out of WAF now.`;
}

/** With `--json`, stdout holds only the document: a failed apply is noted on stderr. */
function warnIfFailed(outcome: ApplyOutcome, io: Io): void {
  if (outcome.kind === 'failed') {
    io.err(
      `edgeban: WAF not updated now (${outcome.why}); the reconciler's next run applies this\n`,
    );
  }
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

function addTarget(command: Command): Command {
  return command
    .option('--local', 'act on a running edgeban local --serve')
    .option(
      '--stack <name>',
      'act on a deployed stack (AWS credentials and region from the environment)',
    )
    .option('--json', 'print one JSON document');
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
      .description('end every block of an address or range now')
      .argument('<ip|cidr>', 'an address or CIDR, exactly as blocked')
      .option('--reason <text>', 'why, recorded in the history'),
  ).action(async (target: string, opts: UnblockOptions) => {
    await runUnblock(target, opts, io);
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
