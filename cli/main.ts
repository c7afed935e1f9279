/**
 * The `edgeban` command line. `run` parses arguments, runs one command and
 * returns its exit code; errors become one line on stderr, never a stack
 * trace.
 *
 * Only the command table loads up front: each command's action imports
 * what it needs (`import()`), so `--help` and a local replay start without
 * the AWS SDK or the local cloud, as the bundle in `dist/` keeps them in
 * chunks of their own.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ConfigError } from '../lambda/core/config';
import type { DoctorOptions } from './doctor';
import { CliError, oneLine } from './errors';
import { DEFAULT_CONCURRENCY } from './inputs';
import { registerReinstateCommand } from './lift';
import type { LocalOptions } from './local';
import { registerOperatorCommands } from './operator';
import type { ReplayCommandOptions } from './replay-command';

/** Where command output goes; tests capture it. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal (progress bars). */
  readonly tty: boolean;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  tty: process.stderr.isTTY === true,
};

function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${value}`);
    }
    return n;
  };
}

function buildProgram(io: Io, done: (code: number) => void): Command {
  const program = new Command('edgeban')
    .description('Turn AWS access logs into an expiring WAF blocklist.')
    .exitOverride()
    .showSuggestionAfterError(false)
    .configureOutput({
      writeOut: (text) => io.out(text),
      writeErr: (text) => io.err(text),
      outputError: (text, write) =>
        write(`${text.split('\n')[0]!.replace(/^error: /, 'edgeban: ')}\n`),
    });

  program
    .command('replay')
    .description('run the rules over logs offline and show what they would block')
    .argument('<inputs...>', 'log files, directories, or s3://bucket/prefix')
    .option(
      '--config <file>',
      'cdk.json, or a file holding the edgeban object (default ./cdk.json)',
    )
    .option('--threshold <n>', 'replace the rules by one rule named cli', integer('--threshold', 1))
    .option('--window <duration>', 'window of the --threshold rule', '5m')
    .option(
      '--ipv4-prefix <n>',
      'count IPv4 clients by this prefix in every rule',
      integer('--ipv4-prefix', 1),
    )
    .option(
      '--ipv6-prefix <n>',
      'count IPv6 clients by this prefix in every rule',
      integer('--ipv6-prefix', 1),
    )
    .option('--json', 'print one JSON document')
    .option('--clients', 'list every client with its request count')
    .option('--report <file>', 'write a self-contained HTML report for tuning thresholds')
    .option(
      '--since <time>',
      'only requests from this minute on (a date or ISO time, UTC unless a zone is given)',
    )
    .option('--until <time>', 'only requests before this minute (a date or ISO time)')
    .option(
      '--concurrency <n>',
      'S3 objects downloaded at once, ahead of the engine',
      integer('--concurrency', 1),
      DEFAULT_CONCURRENCY,
    )
    .option(
      '--workers <n>',
      'threads scanning local files at once (default: the available cores)',
      integer('--workers', 1),
    )
    .action(async (inputs: string[], opts: ReplayCommandOptions) => {
      const { replayCommand } = await import('./replay-command');
      done(await replayCommand(inputs, opts, io));
    });

  program
    .command('local')
    .description('run the whole pipeline on a local cloud (S3, DynamoDB, a WAFv2 emulator)')
    .option(
      '--logs <dir>',
      'put the files under DIR into local S3 and run until the pipeline settles',
    )
    .option(
      '--config <file>',
      'cdk.json, or a file holding the edgeban object (default ./cdk.json)',
    )
    .option('--json', 'print one JSON document (with --logs)')
    .option('--serve', 'keep running on the real clock for the operator commands')
    .action(async (opts: LocalOptions) => {
      const { runLocal } = await import('./local');
      done(await runLocal(opts, io));
    });

  program
    .command('doctor')
    .description('check an AWS account for what would make a first deploy of the config fail')
    .option(
      '--config <file>',
      'cdk.json, or a file holding the edgeban object (default ./cdk.json)',
    )
    .option('--region <region>', "the pipeline's Region, the log bucket's (default $AWS_REGION)")
    .option('--json', 'print one JSON document')
    .action(async (opts: DoctorOptions) => {
      const { doctorCommand } = await import('./doctor');
      done(await doctorCommand(opts, io));
    });

  registerOperatorCommands(program, io, done);
  registerReinstateCommand(program, io, done);

  return program;
}

/**
 * Runs the CLI with `argv` (without `node` and the script).
 * @returns the exit code
 */
export async function run(argv: string[], io: Io = processIo): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CliError) {
      io.err(`edgeban: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof ConfigError) {
      io.err(`edgeban: ${err.message}\n`);
      return 2;
    }
    io.err(`edgeban: internal error: ${oneLine(err)}\n`);
    return 1;
  }
}
