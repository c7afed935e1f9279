/**
 * What every operator command shares: the lazily loaded state layer and
 * backends, the target options, the mapping of errors to exit codes, and
 * the lines that say what the reconciler did with a change.
 */
import type { Command } from 'commander';
import { keyToCidr } from '../lambda/core/ip';
import type { OperatorDeps } from '../lambda/state/operator';
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

/**
 * The state layer, the membership reader and the backends pull in the AWS
 * SDK and the local cloud: they load when an operator command runs, never
 * for `--help` or `replay` (STYLE: the CLI loads only what a command needs).
 */
export type Heavy = typeof import('../lambda/state/operator') &
  typeof import('../lambda/state/lift') &
  Pick<typeof import('../lambda/reconciler/membership'), 'readMemberships'> &
  Pick<typeof import('./backend'), 'openBackend'>;
let heavy: Heavy | undefined;

export async function loadHeavy(): Promise<Heavy> {
  if (heavy === undefined) {
    const [state, lift, membership, backend] = await Promise.all([
      import('../lambda/state/operator'),
      import('../lambda/state/lift'),
      import('../lambda/reconciler/membership'),
      import('./backend'),
    ]);
    heavy = {
      ...state,
      ...lift,
      readMemberships: membership.readMemberships,
      openBackend: backend.openBackend,
    };
  }
  return heavy;
}

/** Options every operator command takes. */
export interface CommonOptions extends TargetOptions {
  readonly json?: boolean;
}

/** Maps what the state layer and the SDK throw to the CLI's exit codes. */
export function translate(err: unknown, backend: Backend, h: Heavy): unknown {
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

export async function withBackend<T>(
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

export function printJson(io: Io, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

/** Whether the reconciler has an address in any IP set (its membership records). */
export async function wafHolds(deps: OperatorDeps, cidr: string): Promise<boolean> {
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
export function outcomeLine(
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
export function warnIfFailed(outcome: ApplyOutcome, io: Io): void {
  if (outcome.kind === 'failed') {
    io.err(
      `edgeban: WAF not updated now (${outcome.why}); the reconciler's next run applies this\n`,
    );
  }
}

export function addTarget(command: Command): Command {
  return command
    .option('--local', 'act on a running edgeban local --serve')
    .option(
      '--stack <name>',
      'act on a deployed stack (AWS credentials and region from the environment)',
    )
    .option('--json', 'print one JSON document');
}
