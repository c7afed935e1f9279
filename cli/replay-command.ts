/**
 * The `replay` command's action: config and range from the options, inputs
 * resolved, the replay run, then the document, the text or the report.
 * Loaded by `main.ts` only when `replay` runs, so other commands (and
 * `--help`) start without the engine, the tables or the AWS SDK.
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import { parseConfig, readConfigFile } from '../lambda/core/config';
import type { EdgebanConfig } from '../lambda/core/types';
import { oneLine, UsageError } from './errors';
import { filterByKeyTime, parseTimeArg, resolveInputs, type TimeRange } from './inputs';
import type { Io } from './main';
import { createProgress } from './progress';
import { runReplay } from './replay';
import { collectRuleReports, renderReport } from './report';
import { renderReplayText } from './text';

/** The `replay` command's options, as commander parses them. */
export interface ReplayCommandOptions {
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
  /** Threads scanning local files; undefined: the available cores. */
  workers?: number;
}

/** The `--since`/`--until` range, or undefined when neither is given. */
function replayRange(opts: ReplayCommandOptions): TimeRange | undefined {
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
export function replayConfig(opts: ReplayCommandOptions): EdgebanConfig {
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

/** The S3 client of `s3://` inputs; the SDK loads only here. */
async function s3Client(): Promise<S3Client> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  const local = process.env.AWS_ENDPOINT_URL_S3 !== undefined;
  return new S3Client({
    region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    forcePathStyle: local,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: local ? 2 : 3,
  });
}

/** Runs `replay`; returns the exit code (errors are thrown as {@link UsageError} and the like). */
export async function replayCommand(
  inputs: string[],
  opts: ReplayCommandOptions,
  io: Io,
): Promise<number> {
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
    ...(opts.workers === undefined ? {} : { workers: opts.workers }),
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
  return 0;
}
