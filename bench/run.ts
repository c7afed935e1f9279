/**
 * `npm run bench`: the engine's cost as a ratio to streaming gunzip of the
 * same file (DESIGN.md section 7), and the CLI as a user starts it.
 *
 * In process, per format: generate (or reuse from `.bench/`) the
 * deterministic log file, warm up once each, then alternate the floor
 * (gunzip with 64 KiB output chunks), the full engine (a fresh `Engine`
 * with empty address caches, `scan` then `decisions`) and, for
 * information, gunzip with zlib's default 16 KiB chunks, `--runs` times,
 * swapping the order every round, with a garbage collection before each
 * run. Ratios are taken per round and their median reported. Every timed
 * run's decisions must equal the generator's known attackers.
 *
 * Many clients: the default rule over the 1M-line CloudFront file of
 * 22,000 clients and one of 450,000, time ratio and peak RSS (a fresh
 * process each, `process.resourceUsage().maxRSS`), bytes per client.
 *
 * Process level (`bench/cli.ts`): start-up, end-to-end replay against a
 * gunzip process, and parallel replay.
 *
 * Exit code 0; 1 when decisions differ from the known attackers, or with
 * `--strict` when a target is missed; 2 on bad usage.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { build } from 'esbuild';
import { parseConfig } from '../lambda/core/config';
import { GUNZIP_CHUNK_BYTES } from '../lambda/core/scan';
import type { ProbeResult } from './child';
import { benchEndToEnd, benchParallel, benchStartup, prepareCli } from './cli';
import {
  type BenchFormat,
  BenchOptionError,
  benchFile,
  type GenerateOptions,
  knownAttackers,
  resolveOptions,
} from './generate';
import {
  BENCH_CONFIG,
  bareGunzip,
  type Cost,
  checkDecisions,
  collectGarbage,
  DEFAULT_RULE_CONFIG,
  FLOOR_GUNZIP_CHUNK,
  fullEngine,
  measure,
  naiveReadline,
} from './measure';
import { renderReport } from './render';
import {
  type BenchCase,
  type BenchOptions,
  type BenchReport,
  CASES,
  CLI_TARGETS,
  type ClientsResult,
  type EndToEndResult,
  type FormatResult,
  type ParallelResult,
  type Series,
  type StartupResult,
  TARGETS,
} from './results';
import { stat } from './stat';

export { type BenchOptions, type FormatResult, TARGETS } from './results';
export { type Stat, stat } from './stat';

const MB = 1024 * 1024;
const HERE = dirname(fileURLToPath(import.meta.url));
const CACHE_DIR = resolve(HERE, '..', '.bench');

function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

function series(costs: readonly Cost[]): Series {
  return { wallMs: stat(costs.map((c) => c.wallMs)), cpuMs: stat(costs.map((c) => c.cpuMs)) };
}

/** Bundles the peak-RSS probe into plain JavaScript for `node`. */
async function bundleProbe(): Promise<string> {
  const outfile = join(CACHE_DIR, 'probe.mjs');
  await mkdir(CACHE_DIR, { recursive: true });
  await build({
    entryPoints: [join(HERE, 'child.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

/** Runs the probe in a fresh process and returns its answer. */
function probe(script: string, mode: ProbeResult['mode'], file: string): Promise<ProbeResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [script, mode, file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', fail);
    child.on('close', (code) => {
      if (code === 0) done(JSON.parse(out) as ProbeResult);
      else fail(new Error(`${mode} probe exited ${code}: ${err.trim().split('\n')[0] ?? ''}`));
    });
  });
}

async function benchFormat(
  format: BenchFormat,
  o: BenchOptions,
  probeScript: string | null,
): Promise<FormatResult> {
  const gen: GenerateOptions = { format, lines: o.lines, seed: o.seed };
  const { path: file, generated } = await benchFile(gen, CACHE_DIR);
  progress(`${format}: ${generated ? 'generated' : 'cached'} ${file}`);
  const gzipBytes = statSync(file).size;
  const known = knownAttackers(gen);
  const config = parseConfig(BENCH_CONFIG);

  progress(`${format}: warm-up`);
  const bytes = await bareGunzip(file, FLOOR_GUNZIP_CHUNK);
  await bareGunzip(file);
  const warm = await fullEngine(file);
  let invalid = checkDecisions(warm.decisions, known, config);
  if (o.reference) await naiveReadline(file, format);

  const floor: Cost[] = [];
  const gunzip16: Cost[] = [];
  const gunzipOwn: Cost[] = [];
  const engine: Cost[] = [];
  const decideMs: number[] = [];
  const referenceCosts: Cost[] = [];
  /** One timed gunzip of the file into `into`; chunkSize undefined for zlib's default. */
  const timeGunzip = (into: Cost[], chunkSize?: number) => async () => {
    collectGarbage();
    into.push((await measure(() => bareGunzip(file, chunkSize))).cost);
  };
  const timeFloor = timeGunzip(floor, FLOOR_GUNZIP_CHUNK);
  const time16 = timeGunzip(gunzip16);
  const timeOwn = timeGunzip(gunzipOwn, GUNZIP_CHUNK_BYTES);
  const timeEngine = async () => {
    collectGarbage();
    const { cost, result } = await measure(() => fullEngine(file));
    engine.push(cost);
    decideMs.push(result.decideMs);
    invalid ??= checkDecisions(result.decisions, known, config);
  };
  for (let round = 0; round < o.runs; round++) {
    // Swapping the order each round cancels any first-or-second bias.
    const order = [timeFloor, timeEngine, time16, timeOwn];
    for (const step of round % 2 === 0 ? order : order.reverse()) await step();
    if (o.reference) {
      collectGarbage();
      referenceCosts.push((await measure(() => naiveReadline(file, format))).cost);
    }
    const g = floor[round]!.wallMs;
    const e = engine[round]!.wallMs;
    progress(
      `${format}: round ${round + 1}/${o.runs}: gunzip 64K ${g.toFixed(0)} ms, engine ${e.toFixed(0)} ms, ratio ${(e / g).toFixed(2)}, gunzip 16K ${gunzip16[round]!.wallMs.toFixed(0)} ms, gunzip 1M ${gunzipOwn[round]!.wallMs.toFixed(0)} ms`,
    );
  }

  let engineRss: number | null = null;
  let gunzipRss: number | null = null;
  if (probeScript !== null) {
    progress(`${format}: peak RSS probes`);
    engineRss = (await probe(probeScript, 'engine', file)).maxRssBytes / MB;
    gunzipRss = (await probe(probeScript, 'gunzip', file)).maxRssBytes / MB;
  }

  const ratio = stat(engine.map((c, i) => c.wallMs / floor[i]!.wallMs));
  const byRule: Record<string, number> = {};
  for (const rule of BENCH_CONFIG.rules) byRule[rule.name] = 0;
  for (const d of warm.decisions) byRule[d.rule] = (byRule[d.rule] ?? 0) + 1;
  const target = TARGETS.ratio[format];
  const lines = warm.scan.lines;
  const e = series(engine);
  const g = series(floor);
  return {
    format,
    file,
    gzipBytes,
    bytes,
    lines,
    requests: warm.scan.requests,
    rejected: warm.scan.rejected,
    gunzip: g,
    gunzip16: series(gunzip16),
    gunzipOwn: series(gunzipOwn),
    engine: { ...e, decideMs: stat(decideMs) },
    ratio,
    cpuRatio: stat(engine.map((c, i) => c.cpuMs / floor[i]!.cpuMs)),
    ratio16: stat(engine.map((c, i) => c.wallMs / gunzip16[i]!.wallMs)),
    ratioOwn: stat(engine.map((c, i) => c.wallMs / gunzipOwn[i]!.wallMs)),
    linesPerSecond: {
      engine: lines / (e.wallMs.median / 1000),
      gunzip: lines / (g.wallMs.median / 1000),
    },
    peakRssMb: { engine: engineRss, gunzip: gunzipRss },
    decisions: { total: warm.decisions.length, byRule },
    invalid,
    reference: o.reference
      ? {
          ratio: stat(referenceCosts.map((c, i) => c.wallMs / floor[i]!.wallMs)),
          cpuRatio: stat(referenceCosts.map((c, i) => c.cpuMs / floor[i]!.cpuMs)),
        }
      : null,
    targets: { ratio: target, rssMb: TARGETS.rssMb },
    pass: {
      ratio: ratio.median <= target,
      rss: engineRss === null || engineRss <= TARGETS.rssMb,
      valid: invalid === null && warm.scan.rejected === 0 && warm.scan.requests === o.lines,
    },
  };
}

/** The default rule over 22,000 and 450,000 clients' worth of the same line count. */
async function benchClients(o: BenchOptions, probeScript: string | null): Promise<ClientsResult> {
  const few: GenerateOptions = { format: 'cloudfront', lines: o.lines, seed: o.seed };
  const many: GenerateOptions = {
    ...few,
    clients: Math.round((o.lines * TARGETS.clients.count) / 1_000_000),
  };
  const fewFile = (await benchFile(few, CACHE_DIR)).path;
  const manyFile = (await benchFile(many, CACHE_DIR)).path;
  progress(`clients: ${fewFile} and ${manyFile}`);
  const config = parseConfig(DEFAULT_RULE_CONFIG);
  const knownFew = knownAttackers(few);
  const knownMany = knownAttackers(many);
  const fewCosts: Cost[] = [];
  const manyCosts: Cost[] = [];
  let invalid: string | null = null;
  const counted = { few: 0, many: 0 };
  const time = async (file: string, known: typeof knownFew, into: Cost[], key: 'few' | 'many') => {
    collectGarbage();
    const { cost, result } = await measure(() => fullEngine(file, DEFAULT_RULE_CONFIG));
    into.push(cost);
    counted[key] = result.clients;
    invalid ??= checkDecisions(result.decisions, known, config);
  };
  await fullEngine(fewFile, DEFAULT_RULE_CONFIG);
  await fullEngine(manyFile, DEFAULT_RULE_CONFIG);
  for (let round = 0; round < o.runs; round++) {
    const steps = [
      () => time(fewFile, knownFew, fewCosts, 'few'),
      () => time(manyFile, knownMany, manyCosts, 'many'),
    ];
    for (const step of round % 2 === 0 ? steps : steps.reverse()) await step();
    progress(
      `clients: round ${round + 1}/${o.runs}: ${counted.few} clients ${fewCosts[round]!.wallMs.toFixed(0)} ms, ${counted.many} clients ${manyCosts[round]!.wallMs.toFixed(0)} ms`,
    );
  }
  let rss: ClientsResult['peakRssMb'] = { few: null, many: null, gunzip: null };
  let bytesPerClient: number | null = null;
  if (probeScript !== null) {
    progress('clients: peak RSS probes');
    const m = await probe(probeScript, 'engine-default', manyFile);
    const f = await probe(probeScript, 'engine-default', fewFile);
    const g = await probe(probeScript, 'gunzip', manyFile);
    rss = { few: f.maxRssBytes / MB, many: m.maxRssBytes / MB, gunzip: g.maxRssBytes / MB };
    bytesPerClient = (m.maxRssBytes - g.maxRssBytes) / m.clients;
  }
  const timeRatio = stat(manyCosts.map((c, i) => c.wallMs / fewCosts[i]!.wallMs));
  return {
    lines: o.lines,
    clients: counted,
    fewMs: stat(fewCosts.map((c) => c.wallMs)),
    manyMs: stat(manyCosts.map((c) => c.wallMs)),
    timeRatio,
    peakRssMb: rss,
    bytesPerClient,
    invalid,
    pass:
      invalid === null &&
      timeRatio.median <= TARGETS.clients.timeRatio &&
      (rss.many === null || rss.many <= TARGETS.clients.rssMb),
  };
}

/** Whether every measured figure met its target and every run decided right. */
export function passed(report: BenchReport): boolean {
  return (
    report.formats.every((r) => r.pass.ratio && r.pass.rss && r.pass.valid) &&
    (report.clients?.pass ?? true) &&
    (report.startup === null || (report.startup.pass.help && report.startup.pass.oneLine)) &&
    report.endToEnd.every((r) => r.pass) &&
    (report.parallel?.pass ?? true)
  );
}

/** Whether every run's decisions matched the known attackers (a bench that fails this has no figures). */
export function valid(report: BenchReport): boolean {
  return (
    report.formats.every((r) => r.invalid === null) &&
    (report.clients?.invalid ?? null) === null &&
    report.endToEnd.every((r) => r.invalid === null) &&
    (report.parallel === null || (report.parallel.invalid === null && report.parallel.identical))
  );
}

function positiveInt(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${value}`);
    }
    return n;
  };
}

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('bench')
    .description('edgeban engine and CLI cost relative to streaming gunzip')
    .option(
      '--lines <n>',
      'request lines per generated file',
      positiveInt('lines', 1000),
      1_000_000,
    )
    .option('--runs <n>', 'timed runs of each, after one warm-up', positiveInt('runs', 1), 5)
    .option('--format <format>', 'cloudfront, alb or both', 'both')
    .option('--seed <n>', 'generator seed', positiveInt('seed', 0), 1)
    .option('--cases <list>', `comma-separated: ${CASES.join(', ')}`, CASES.join(','))
    .option('--json', 'print the figures as one JSON document')
    .option('--strict', 'exit 1 when a target is missed')
    .option('--reference', 'also time readline + split, for scale')
    .option('--no-rss', 'skip the peak-RSS probes')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.startsWith('error:') ? s : ''),
      writeOut: (s) => process.stdout.write(s),
    });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode ?? 2;
    return code === 0 ? 0 : 2;
  }
  const opts = program.opts<{
    lines: number;
    runs: number;
    format: string;
    seed: number;
    cases: string;
    json?: boolean;
    strict?: boolean;
    reference?: boolean;
    rss: boolean;
  }>();
  if (!['cloudfront', 'alb', 'both'].includes(opts.format)) {
    process.stderr.write(`error: format must be cloudfront, alb or both, got ${opts.format}\n`);
    return 2;
  }
  const cases = opts.cases.split(',').filter((c) => c !== '');
  const unknown = cases.filter((c) => !(CASES as readonly string[]).includes(c));
  if (unknown.length > 0 || cases.length === 0) {
    process.stderr.write(`error: cases must be among ${CASES.join(', ')}, got ${opts.cases}\n`);
    return 2;
  }
  const formats: BenchFormat[] =
    opts.format === 'both' ? ['cloudfront', 'alb'] : [opts.format as BenchFormat];
  const o: BenchOptions = {
    loadAverage: loadavg()[0]!,
    lines: opts.lines,
    runs: opts.runs,
    formats,
    seed: opts.seed,
    reference: opts.reference === true,
    rss: opts.rss,
    cases: cases as BenchCase[],
  };
  const has = (c: BenchCase) => o.cases!.includes(c);
  try {
    for (const format of formats) {
      resolveOptions({ format, lines: o.lines, seed: o.seed });
      knownAttackers({ format, lines: o.lines, seed: o.seed });
    }
  } catch (err) {
    if (err instanceof BenchOptionError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  const probeScript = o.rss ? await bundleProbe() : null;
  const report: {
    formats: FormatResult[];
    clients: ClientsResult | null;
    startup: StartupResult | null;
    endToEnd: EndToEndResult[];
    parallel: ParallelResult | null;
  } = { formats: [], clients: null, startup: null, endToEnd: [], parallel: null };
  if (has('engine')) {
    for (const format of formats) report.formats.push(await benchFormat(format, o, probeScript));
  }
  if (has('clients')) report.clients = await benchClients(o, probeScript);
  if (has('cli') || has('parallel')) {
    const kit = await prepareCli(CACHE_DIR);
    if (has('cli')) {
      progress('cli: start-up');
      report.startup = await benchStartup(kit, Math.max(11, o.runs * 2 + 1));
      for (const format of formats) {
        progress(`cli: ${format} replay end to end`);
        report.endToEnd.push(
          await benchEndToEnd(kit, { format, lines: o.lines, seed: o.seed }, o.runs),
        );
      }
    }
    if (has('parallel')) {
      progress('parallel: 8 files');
      report.parallel = await benchParallel(
        kit,
        8,
        Math.max(1000, Math.round(o.lines / 4)),
        o.seed,
        Math.max(3, Math.ceil(o.runs / 2)),
      );
    }
  }
  const pass = passed(report);
  const ok = valid(report);
  if (opts.json) {
    const doc = {
      node: process.version,
      cpus: availableParallelism(),
      loadAverage: { start: o.loadAverage, end: loadavg()[0]! },
      lines: o.lines,
      runs: o.runs,
      seed: o.seed,
      rules: BENCH_CONFIG.rules,
      targets: { ...TARGETS, cli: CLI_TARGETS },
      ...report,
      valid: ok,
      pass,
    };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    process.stdout.write(renderReport(report, o));
  }
  if (!ok) {
    process.stderr.write(
      'bench: decisions differ from the known attackers; the figures mean nothing\n',
    );
    return 1;
  }
  return opts.strict && !pass ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
