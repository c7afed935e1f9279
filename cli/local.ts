/**
 * `edgeban local` (DESIGN.md section 6): the whole pipeline on the local
 * cloud. With no options it plays the bundled attack scenario; `--logs
 * DIR` puts a directory of logs into local S3 and prints what the
 * pipeline decided once it settles; `--serve` keeps the pipeline running
 * on the real clock for the operator commands (`--local`).
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, relative, sep } from 'node:path';
import { ConfigError, parseConfig, readConfigFile } from '../lambda/core/config';
import { Engine } from '../lambda/core/engine';
import { formatSeconds } from '../lambda/core/formats/time';
import type { EdgebanConfig } from '../lambda/core/types';
import { type Clock, realClock, SimulatedClock } from '../local/clock';
import { LOCAL_CREDENTIALS } from '../local/cloud';
import { discoveryPath, removeDiscovery, writeDiscovery } from '../local/discovery';
import { type LocalPipeline, type PipelineOptions, startPipeline } from '../local/pipeline';
import { playScenario } from '../local/scenario';
import { serveWidget, type WidgetServer } from '../local/widget-server';
import { CliError, oneLine, UsageError } from './errors';
import { resolveInputs } from './inputs';
import type { Io } from './main';
import { table } from './text';

/** Options of `edgeban local`. */
export interface LocalOptions {
  logs?: string;
  config?: string;
  json?: boolean;
  serve?: boolean;
}

/** The `local --logs --json` document (DESIGN.md section 6). */
export interface LocalLogsDocument {
  ipSets: { IPV4: string[]; IPV6: string[] };
  blocks: { key: string; rule: string; peak: number; blockedUntil: string }[];
  summary: {
    objects: number;
    requests: number;
    rejected: number;
    decisions: number;
    wafUpdates: number;
  };
}

/** Options of {@link runLogs} beyond the config: pipeline settings for tests and benches. */
export type LogsRunOptions = Partial<Omit<PipelineOptions, 'config' | 'clock'>> & {
  /** Called once the pipeline is up, before any object is put (to set faults). */
  readonly onReady?: (pipeline: LocalPipeline) => void;
};

/** Test hooks of {@link runLocal}. */
export interface LocalHooks {
  /** Stops `--serve` (instead of SIGINT/SIGTERM). */
  readonly signal?: AbortSignal;
  /** Extra pipeline options (fault proxies, WAF faults, duplicates). */
  readonly pipeline?: LogsRunOptions;
  /** Where `--serve` writes its discovery file. @default - {@link discoveryPath} */
  readonly discoveryPath?: string;
  /** Called once `--serve` is up, with its pipeline. */
  readonly onServe?: (pipeline: LocalPipeline) => void;
}

/** The config and its raw form (the discovery file carries the raw one). */
interface LoadedConfig {
  readonly config: EdgebanConfig;
  readonly raw: Record<string, unknown>;
  readonly source: string;
}

/**
 * `--config FILE`, else `./cdk.json` when there is one, else the shipped
 * defaults (unlike replay, the local cloud is a demo that needs no set-up).
 */
export function localConfig(path: string | undefined): LoadedConfig {
  const file = path ?? 'cdk.json';
  if (!existsSync(file)) {
    if (path !== undefined) throw new UsageError(`config file not found: ${path}`);
    return { config: parseConfig({}), raw: {}, source: 'the default config' };
  }
  let raw = readConfigFile(file);
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw) as unknown;
    } catch {
      throw new ConfigError(`${file}: edgeban must be a JSON object or a JSON string of one`);
    }
  }
  const object = (raw ?? {}) as Record<string, unknown>;
  try {
    return { config: parseConfig(object), raw: object, source: file };
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${file}: ${err.message}`, err.field);
    throw err;
  }
}

/** A log file under the `--logs` directory and the object key it gets. */
interface LogFile {
  readonly path: string;
  readonly key: string;
}

async function logFiles(dir: string): Promise<LogFile[]> {
  if (!existsSync(dir)) throw new UsageError(`no such file or directory: ${dir}`);
  const isDir = statSync(dir).isDirectory();
  const sources = await resolveInputs([dir], () => {
    throw new UsageError('--logs takes a local directory');
  });
  return sources.map((s) => ({
    path: s.name,
    key: isDir ? relative(dir, s.name).split(sep).join('/') : basename(s.name),
  }));
}

/** The end of the latest log minute of the files (epoch ms), or null when they hold no request. */
async function latestMinuteEnd(
  files: readonly LogFile[],
  config: EdgebanConfig,
): Promise<number | null> {
  let latest: number | null = null;
  for (const f of files) {
    const scan = await new Engine(config).scan(
      createReadStream(f.path, { highWaterMark: 256 * 1024 }),
    );
    if (scan.maxMinute !== null && (latest === null || scan.maxMinute > latest))
      latest = scan.maxMinute;
  }
  return latest === null ? null : (latest + 1) * 60_000;
}

/** What a `--logs` run produced. */
export interface LogsRun {
  readonly document: LocalLogsDocument;
  /** Where the clock started (epoch ms). */
  readonly clockStart: number;
  /** Messages the ingest queue gave up on (dead-lettered). */
  readonly deadLetters: number;
  /** WAF calls per reconcile run. */
  readonly wafCallsPerRun: number[];
  /** Objects ingest skipped (not an access log) or found damaged. */
  readonly skipped: number;
  readonly damaged: number;
}

/**
 * Puts every file under `dir` into local S3 (key = path relative to `dir`)
 * on a simulated clock that starts at the end of the latest log minute,
 * with no horizon, runs the pipeline until it settles, and reads back what
 * it decided and what WAF holds.
 */
export async function runLogs(
  dir: string,
  config: EdgebanConfig,
  extra: LogsRunOptions = {},
): Promise<LogsRun> {
  const files = await logFiles(dir);
  const clockStart =
    (await latestMinuteEnd(files, config)) ?? Math.floor(Date.now() / 60_000) * 60_000;
  const clock = new SimulatedClock(clockStart);
  const pipeline = await startPipeline({
    sleep: async () => {},
    ...extra,
    config,
    clock,
    horizon: false,
  });
  try {
    extra.onReady?.(pipeline);
    for (const f of files) await pipeline.upload(f.key, await readFile(f.path));
    await pipeline.settle();
    const decisions = await pipeline.decisions();
    const ledger = await pipeline.ledger();
    const wafUpdates = pipeline.ipSets.reduce(
      (n, s) => n + pipeline.cloud.waf.ipSet({ id: s.id }).updates,
      0,
    );
    const document: LocalLogsDocument = {
      ipSets: pipeline.wafAddresses(),
      blocks: decisions.map((d) => ({
        key: d.key,
        rule: d.rule,
        peak: d.peak,
        blockedUntil: formatSeconds(d.blockedUntil),
      })),
      summary: {
        objects: ledger.objects,
        requests: ledger.requests,
        rejected: ledger.rejected,
        decisions: decisions.length,
        wafUpdates,
      },
    };
    return {
      document,
      clockStart,
      deadLetters: pipeline.ingestQueue.deadLetters().length,
      wafCallsPerRun: pipeline.runs.map((r) => r.wafCalls),
      skipped: ledger.skipped,
      damaged: ledger.damaged,
    };
  } finally {
    await pipeline.stop();
  }
}

function renderLogsText(run: LogsRun, dir: string, config: EdgebanConfig): string {
  const { document: doc } = run;
  const s = doc.summary;
  const parts = [
    `edgeban local: ${s.objects} objects from ${dir} through the local pipeline, ` +
      `clock at ${formatSeconds(run.clockStart / 1000)}`,
    `${s.requests} requests, ${s.rejected} rejected lines` +
      (run.skipped > 0 ? `, ${run.skipped} skipped objects` : '') +
      (run.damaged > 0 ? `, ${run.damaged} damaged objects` : '') +
      `; ${s.decisions} decisions; ${s.wafUpdates} WAF updates (mode ${config.mode})`,
  ];
  if (doc.blocks.length === 0) parts.push('\nNo decisions: no key exceeded a rule.');
  else {
    parts.push(
      `\nBlocks (${doc.blocks.length})\n${table(
        ['key', 'rule', 'peak', 'blocked until'],
        doc.blocks.map((b) => [b.key, b.rule, b.peak, b.blockedUntil]),
      )}`,
    );
  }
  const held = [...doc.ipSets.IPV4, ...doc.ipSets.IPV6];
  parts.push(
    held.length === 0
      ? '\nWAF IP sets: empty'
      : `\nWAF IP sets (${held.length} addresses)\n${table(
          ['version', 'address'],
          [...doc.ipSets.IPV4.map((a) => ['IPV4', a]), ...doc.ipSets.IPV6.map((a) => ['IPV6', a])],
        )}`,
  );
  return `${parts.join('\n')}\n`;
}

async function logsCommand(opts: LocalOptions, io: Io, hooks: LocalHooks): Promise<number> {
  const dir = opts.logs as string;
  const { config } = localConfig(opts.config);
  const run = await runLogs(dir, config, hooks.pipeline);
  if (opts.json) io.out(`${JSON.stringify(run.document, null, 2)}\n`);
  else io.out(renderLogsText(run, dir, config));
  if (run.deadLetters > 0) {
    io.err(
      `edgeban: ${run.deadLetters} log objects failed ingest ${hooks.pipeline?.maxReceiveCount ?? 5} times ` +
        'and went to the dead-letter queue; the result is incomplete\n',
    );
    return 1;
  }
  return 0;
}

function waitForStop(signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve) => {
    const done = (why: string) => () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(why);
    };
    const onInt = done('SIGINT');
    const onTerm = done('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    if (signal?.aborted) onInt();
    signal?.addEventListener('abort', done('stop'), { once: true });
  });
}

function clockTime(clock: Clock): string {
  return new Date(clock.now()).toISOString().slice(11, 19);
}

async function serveCommand(opts: LocalOptions, io: Io, hooks: LocalHooks): Promise<number> {
  const { config, raw, source } = localConfig(opts.config);
  const clock = realClock;
  const pipeline = await startPipeline({
    // Ingest's reconciler messages coalesce as in AWS, in one-second buckets.
    reconcileCoalesceMs: 1000,
    ...hooks.pipeline,
    config,
    clock,
    horizon: true,
    onReconcile: (run) => {
      const r = run.result;
      const changes = [
        ...r.added.map((c) => `+${c}`),
        ...r.removed.map((c) => `-${c}`),
        ...r.consoleUnblocks.map((k) => `unblocked in console: ${k}`),
      ];
      if (changes.length > 0) {
        io.out(`${clockTime(clock)}  WAF ${changes.join(' ')} (${run.trigger})\n`);
      }
    },
    logger: {
      info: () => {},
      warn: (message, ...extra) =>
        io.err(
          `${clockTime(clock)}  warning: ${message} ${JSON.stringify(Object.assign({}, ...extra))}\n`,
        ),
      error: (message, ...extra) =>
        io.err(
          `${clockTime(clock)}  error: ${message} ${JSON.stringify(Object.assign({}, ...extra))}\n`,
        ),
    },
  });
  const path = hooks.discoveryPath ?? discoveryPath();
  let widget: WidgetServer | undefined; // console widget (local/widget-server.ts)
  try {
    pipeline.startSchedule(60_000);
    widget = await serveWidget(pipeline);
    const { endpoints } = pipeline.cloud;
    writeDiscovery(
      {
        pid: process.pid,
        endpoints,
        region: 'us-east-1',
        bucket: pipeline.bucket,
        tableName: pipeline.tableName,
        ipSets: pipeline.ipSets,
        config: raw,
        startedAt: formatSeconds(Math.floor(clock.now() / 1000)),
      },
      path,
    );
    const sets = pipeline.ipSets.map((s) => s.name).join(', ');
    io.out(
      `edgeban local is serving (pid ${process.pid}), config from ${source}, mode ${config.mode}\n\n` +
        `${table(
          ['service', 'endpoint', 'resource'],
          [
            ['S3', endpoints.s3, `bucket ${pipeline.bucket}`],
            ['DynamoDB', endpoints.dynamodb, `table ${pipeline.tableName}`],
            ['WAFv2', endpoints.wafv2, `IP sets ${sets} (${config.scope})`],
          ],
        )}\n\n` +
        `discovery file: ${path}\n\n` +
        'Point the AWS CLI at it (s3rver accepts only this key pair):\n' +
        `  export AWS_ACCESS_KEY_ID=${LOCAL_CREDENTIALS.accessKeyId} AWS_SECRET_ACCESS_KEY=${LOCAL_CREDENTIALS.secretAccessKey} ` +
        `AWS_REGION=us-east-1 AWS_ENDPOINT_URL_S3=${endpoints.s3}\n` +
        'Upload logs (each object goes through the pipeline at once):\n' +
        `  aws s3 cp access.log.gz s3://${pipeline.bucket}/\n` +
        'Review blocks:\n' +
        '  npm run --silent edgeban -- list --local\n' +
        `  or in the console widget, as CloudWatch would show it: ${widget.url}\n` +
        `Replay what is in the bucket:\n  npm run --silent edgeban -- replay s3://${pipeline.bucket}/\n\n` +
        'The reconciler runs on each ingest message and every minute. Stop with Ctrl-C.\n',
    );
    hooks.onServe?.(pipeline);
    await waitForStop(hooks.signal);
    io.out('stopping\n');
  } finally {
    removeDiscovery(path);
    await widget?.close();
    await pipeline.stop();
  }
  return 0;
}

async function scenarioCommand(io: Io): Promise<number> {
  await playScenario({ out: (text) => io.out(text) });
  return 0;
}

/**
 * Runs `edgeban local`.
 * @returns the exit code (DESIGN.md section 4)
 */
export async function runLocal(
  opts: LocalOptions,
  io: Io,
  hooks: LocalHooks = {},
): Promise<number> {
  try {
    if (opts.serve && opts.logs !== undefined) {
      throw new UsageError(
        '--serve and --logs cannot be combined: upload logs to the served bucket',
      );
    }
    if (opts.json && opts.logs === undefined) throw new UsageError('--json needs --logs DIR');
    if (opts.logs !== undefined) return await logsCommand(opts, io, hooks);
    if (opts.serve) return await serveCommand(opts, io, hooks);
    if (opts.config !== undefined) {
      throw new UsageError(
        'the scenario uses its own config; give --config with --logs or --serve',
      );
    }
    return await scenarioCommand(io);
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`edgeban: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof ConfigError) {
      io.err(`edgeban: ${err.message}\n`);
      return 2;
    }
    io.err(`edgeban: local: ${oneLine(err)}\n`);
    return 1;
  }
}
