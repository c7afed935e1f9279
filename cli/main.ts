/**
 * The `edgeban` command line. `run` parses arguments, runs one command and
 * returns its exit code; errors become one line on stderr, never a stack
 * trace.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ConfigError, parseConfig, readConfigFile } from '../lambda/core/config';
import type { EdgebanConfig } from '../lambda/core/types';
import { CliError, oneLine, UsageError } from './errors';
import { filterByKeyTime, parseTimeArg, resolveInputs, type TimeRange } from './inputs';
import { type LocalOptions, runLocal } from './local';
import { registerOperatorCommands } from './operator';
import { createProgress } from './progress';
import { DEFAULT_CONCURRENCY, runReplay } from './replay';
import { collectRuleReports, renderReport } from './report';
import { renderReplayText } from './text';

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

interface ReplayOptions {
  config?: string;
  threshold?: number;
  window: string;
  ipv4Prefix?: number;
  ipv6Prefix?: number;
  json?: boolean;
  clients?: boolean;
  report?: string;
  since?: string;
  until?: string;
  concurrency: number;
}

/** The `--since`/`--until` range, or undefined when neither is given. */
function replayRange(opts: ReplayOptions): TimeRange | undefined {
  if (opts.since === undefined && opts.until === undefined) return undefined;
  const since = opts.since === undefined ? null : parseTimeArg(opts.since, '--since');
  const until = opts.until === undefined ? null : parseTimeArg(opts.until, '--until');
  if (since !== null && until !== null && since >= until) {
    throw new UsageError(
      `--since must be before --until (to the minute), got ${opts.since} and ${opts.until}`,
    );
  }
  return { since, until };
}

/**
 * Loads the replay config: `--config FILE` (default `./cdk.json`), with the
 * ad-hoc `--threshold/--window` rule and prefix overrides applied before
 * validation, so every override is checked like the file itself.
 */
export function replayConfig(opts: ReplayOptions): EdgebanConfig {
  const path = opts.config ?? 'cdk.json';
  let raw: unknown;
  if (existsSync(path)) raw = readConfigFile(path);
  else if (opts.config !== undefined || opts.threshold === undefined) {
    throw new UsageError(
      `config file not found: ${path} (give --config FILE, or --threshold N for an ad-hoc rule)`,
    );
  }
  let object: Record<string, unknown> = {};
  if (typeof raw === 'string') {
    object = JSON.parse(raw) as Record<string, unknown>;
  } else if (raw !== undefined && raw !== null) {
    object = { ...(raw as Record<string, unknown>) };
  }
  if (opts.threshold !== undefined) {
    object.rules = [{ name: 'cli', threshold: opts.threshold, window: opts.window }];
  }
  if (opts.ipv4Prefix !== undefined || opts.ipv6Prefix !== undefined) {
    const rules = Array.isArray(object.rules)
      ? (object.rules as Record<string, unknown>[])
      : (parseConfig(object).rules.map((r) => ({
          name: r.name,
          threshold: r.threshold,
          window: `${r.windowMinutes}m`,
        })) as Record<string, unknown>[]);
    object.rules = rules.map((r) => ({
      ...r,
      ...(opts.ipv4Prefix !== undefined ? { ipv4Prefix: opts.ipv4Prefix } : {}),
      ...(opts.ipv6Prefix !== undefined ? { ipv6Prefix: opts.ipv6Prefix } : {}),
    }));
  }
  return parseConfig(object);
}

function s3Client(): S3Client {
  const local = process.env.AWS_ENDPOINT_URL_S3 !== undefined;
  return new S3Client({
    region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    forcePathStyle: local,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: local ? 2 : 3,
  });
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
    .action(async (inputs: string[], opts: ReplayOptions) => {
      const config = replayConfig(opts);
      const range = replayRange(opts);
      let sources = await resolveInputs(inputs, s3Client);
      let objectsOutOfRange = 0;
      if (range !== undefined) {
        const filtered = filterByKeyTime(sources, range);
        sources = filtered.kept;
        objectsOutOfRange = filtered.outside;
      }
      const progress = io.tty ? createProgress() : undefined;
      const result = await runReplay(sources, config, {
        clients: opts.clients,
        progress,
        concurrency: opts.concurrency,
        ...(range === undefined ? {} : { range, objectsOutOfRange }),
      });
      if (opts.report !== undefined) {
        const html = renderReport(result.document, collectRuleReports(result.engine, config));
        try {
          writeFileSync(opts.report, html);
        } catch (err) {
          throw new UsageError(`cannot write report ${opts.report}: ${oneLine(err)}`);
        }
      }
      if (opts.json) io.out(`${JSON.stringify(result.document, null, 2)}\n`);
      else io.out(renderReplayText(result.document));
      done(0);
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
      done(await runLocal(opts, io));
    });

  registerOperatorCommands(program, io, done);

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
