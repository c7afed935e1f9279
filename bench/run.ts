/**
 * `npm run bench`: the engine's cost as a ratio to bare streaming gunzip of
 * the same file, in the same process (DESIGN.md section 7).
 *
 * Per format: generate (or reuse from `.bench/`) the deterministic log file,
 * warm up once each, then alternate bare gunzip and the full engine (a fresh
 * `Engine`, `scan` then `decisions`) `--runs` times, swapping which goes
 * first every round, with a garbage collection before each run. The ratio
 * is taken per round (engine / gunzip of the same round) and its median
 * reported. Peak RSS is measured apart, in a fresh `node` process running
 * the bundled engine once (`process.resourceUsage().maxRSS`), because a
 * process that has already run everything else cannot show one run's peak.
 *
 * Exit code 0, or with `--strict` 1 when a target is missed; 2 on bad usage.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Table from 'cli-table3';
import { Command, InvalidArgumentError } from 'commander';
import { build } from 'esbuild';
import type { ProbeResult } from './child';
import { type BenchFormat, BenchOptionError, benchFile, resolveOptions } from './generate';
import {
  BENCH_CONFIG,
  bareGunzip,
  type Cost,
  collectGarbage,
  ENGINE_GUNZIP_CHUNK,
  fullEngine,
  measure,
  naiveReadline,
} from './measure';

/** Targets of DESIGN.md section 7 and the bench issue. */
export const TARGETS = {
  ratio: { cloudfront: 1.3, alb: 1.4 } satisfies Record<BenchFormat, number>,
  /** Peak RSS with the three bench rules and 22k clients, MiB. */
  rssMb: 200,
} as const;

const MB = 1024 * 1024;
const HERE = dirname(fileURLToPath(import.meta.url));
const CACHE_DIR = resolve(HERE, '..', '.bench');

/** Options of one bench run. */
export interface BenchOptions {
  /** One-minute load average when the run started (the noise it ran in). */
  readonly loadAverage?: number;
  readonly lines: number;
  readonly runs: number;
  readonly formats: readonly BenchFormat[];
  readonly seed: number;
  readonly reference: boolean;
  readonly rss: boolean;
}

/** One format's figures. */
export interface FormatResult {
  readonly format: BenchFormat;
  readonly file: string;
  readonly gzipBytes: number;
  readonly bytes: number;
  readonly lines: number;
  readonly requests: number;
  readonly rejected: number;
  readonly gunzip: Series;
  /** Gunzip with the engine's 64 KiB output chunks (informational). */
  readonly gunzip64: Series;
  readonly engine: Series & { readonly decideMs: Stat };
  /** Engine / gunzip wall time, per round. */
  readonly ratio: Stat;
  /** Engine / gunzip CPU time, per round. */
  readonly cpuRatio: Stat;
  /** Engine / 64 KiB-chunk gunzip wall time, per round (informational, no target). */
  readonly ratio64: Stat;
  readonly linesPerSecond: { readonly engine: number; readonly gunzip: number };
  /** Peak RSS of a fresh process running it once, MiB; null when not measured. */
  readonly peakRssMb: { readonly engine: number | null; readonly gunzip: number | null };
  readonly decisions: { readonly total: number; readonly byRule: Record<string, number> };
  /** readline + split over gunzip, for scale (`--reference`). */
  readonly reference: { readonly ratio: Stat; readonly cpuRatio: Stat } | null;
  readonly targets: { readonly ratio: number; readonly rssMb: number };
  readonly pass: { readonly ratio: boolean; readonly rss: boolean; readonly valid: boolean };
}

interface Series {
  readonly wallMs: Stat;
  readonly cpuMs: Stat;
}

/** A sample's median, spread and values. */
export interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly values: readonly number[];
}

/** Median, min and max of a non-empty sample. */
export function stat(values: readonly number[]): Stat {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, values };
}

function progress(message: string): void {
  process.stderr.write(`${message}\n`);
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
function probe(script: string, mode: 'engine' | 'gunzip', file: string): Promise<ProbeResult> {
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
  const { path: file, generated } = await benchFile(
    { format, lines: o.lines, seed: o.seed },
    CACHE_DIR,
  );
  progress(`${format}: ${generated ? 'generated' : 'cached'} ${file}`);
  const gzipBytes = statSync(file).size;

  progress(`${format}: warm-up`);
  const bytes = await bareGunzip(file);
  const warm = await fullEngine(file);
  if (o.reference) await naiveReadline(file, format);

  const gunzipCosts: Cost[] = [];
  const gunzip64Costs: Cost[] = [];
  const engineCosts: Cost[] = [];
  const decideMs: number[] = [];
  const referenceCosts: Cost[] = [];
  const timeGunzip = async () => {
    collectGarbage();
    gunzipCosts.push((await measure(() => bareGunzip(file))).cost);
  };
  const timeGunzip64 = async () => {
    collectGarbage();
    gunzip64Costs.push((await measure(() => bareGunzip(file, ENGINE_GUNZIP_CHUNK))).cost);
  };
  const timeEngine = async () => {
    collectGarbage();
    const { cost, result } = await measure(() => fullEngine(file));
    engineCosts.push(cost);
    decideMs.push(result.decideMs);
  };
  for (let round = 0; round < o.runs; round++) {
    // Swapping the order each round cancels any first-or-second bias.
    if (round % 2 === 0) {
      await timeGunzip();
      await timeEngine();
      await timeGunzip64();
    } else {
      await timeGunzip64();
      await timeEngine();
      await timeGunzip();
    }
    if (o.reference) {
      collectGarbage();
      referenceCosts.push((await measure(() => naiveReadline(file, format))).cost);
    }
    const g = gunzipCosts[round]!.wallMs;
    const e = engineCosts[round]!.wallMs;
    progress(
      `${format}: round ${round + 1}/${o.runs}: gunzip ${g.toFixed(0)} ms, engine ${e.toFixed(0)} ms, ratio ${(e / g).toFixed(2)}, gunzip 64K ${gunzip64Costs[round]!.wallMs.toFixed(0)} ms`,
    );
  }

  let engineRss: number | null = null;
  let gunzipRss: number | null = null;
  if (probeScript !== null) {
    progress(`${format}: peak RSS probes`);
    engineRss = (await probe(probeScript, 'engine', file)).maxRssBytes / MB;
    gunzipRss = (await probe(probeScript, 'gunzip', file)).maxRssBytes / MB;
  }

  const ratio = stat(engineCosts.map((c, i) => c.wallMs / gunzipCosts[i]!.wallMs));
  const ratio64 = stat(engineCosts.map((c, i) => c.wallMs / gunzip64Costs[i]!.wallMs));
  const cpuRatio = stat(engineCosts.map((c, i) => c.cpuMs / gunzipCosts[i]!.cpuMs));
  const engineWall = stat(engineCosts.map((c) => c.wallMs));
  const gunzipWall = stat(gunzipCosts.map((c) => c.wallMs));
  const byRule: Record<string, number> = {};
  for (const rule of BENCH_CONFIG.rules) byRule[rule.name] = 0;
  for (const d of warm.decisions) byRule[d.rule] = (byRule[d.rule] ?? 0) + 1;
  const target = TARGETS.ratio[format];
  const lines = warm.scan.lines;
  return {
    format,
    file,
    gzipBytes,
    bytes,
    lines,
    requests: warm.scan.requests,
    rejected: warm.scan.rejected,
    gunzip: { wallMs: gunzipWall, cpuMs: stat(gunzipCosts.map((c) => c.cpuMs)) },
    gunzip64: {
      wallMs: stat(gunzip64Costs.map((c) => c.wallMs)),
      cpuMs: stat(gunzip64Costs.map((c) => c.cpuMs)),
    },
    engine: {
      wallMs: engineWall,
      cpuMs: stat(engineCosts.map((c) => c.cpuMs)),
      decideMs: stat(decideMs),
    },
    ratio,
    cpuRatio,
    ratio64,
    linesPerSecond: {
      engine: lines / (engineWall.median / 1000),
      gunzip: lines / (gunzipWall.median / 1000),
    },
    peakRssMb: { engine: engineRss, gunzip: gunzipRss },
    decisions: { total: warm.decisions.length, byRule },
    reference: o.reference
      ? {
          ratio: stat(referenceCosts.map((c, i) => c.wallMs / gunzipCosts[i]!.wallMs)),
          cpuRatio: stat(referenceCosts.map((c, i) => c.cpuMs / gunzipCosts[i]!.cpuMs)),
        }
      : null,
    targets: { ratio: target, rssMb: TARGETS.rssMb },
    pass: {
      ratio: ratio.median <= target,
      rss: engineRss === null || engineRss <= TARGETS.rssMb,
      valid: warm.scan.rejected === 0 && warm.scan.requests === o.lines,
    },
  };
}

function passed(r: FormatResult): boolean {
  return r.pass.ratio && r.pass.rss && r.pass.valid;
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtMb(n: number | null): string {
  return n === null ? '-' : `${n.toFixed(0)} MB`;
}

/** The human-readable report. */
export function renderTable(results: readonly FormatResult[], o: BenchOptions): string {
  const table = new Table({
    head: ['', ...results.map((r) => r.format)],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  const row = (label: string, cell: (r: FormatResult) => string) => {
    table.push([label, ...results.map(cell)]);
  };
  const x = (n: number) => `${n.toFixed(2)}x`;
  row('gunzip ms (median)', (r) => fmtInt(r.gunzip.wallMs.median));
  row('engine ms (median)', (r) => fmtInt(r.engine.wallMs.median));
  row('ratio engine/gunzip', (r) => `${x(r.ratio.median)} (${x(r.ratio.min)}-${x(r.ratio.max)})`);
  row('target', (r) => `<= ${r.targets.ratio}x`);
  row('ratio vs 64K gunzip', (r) => x(r.ratio64.median));
  row('engine lines/s', (r) => fmtInt(r.linesPerSecond.engine));
  row(
    'CPU ms gunzip / engine',
    (r) =>
      `${fmtInt(r.gunzip.cpuMs.median)} / ${fmtInt(r.engine.cpuMs.median)} (${x(r.cpuRatio.median)})`,
  );
  row(
    'peak RSS engine (gunzip)',
    (r) => `${fmtMb(r.peakRssMb.engine)} (${fmtMb(r.peakRssMb.gunzip)}), <= ${r.targets.rssMb} MB`,
  );
  row(
    'decisions',
    (r) =>
      `${r.decisions.total} (${Object.entries(r.decisions.byRule)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
  );
  row('requests / rejected', (r) => `${fmtInt(r.requests)} / ${fmtInt(r.rejected)}`);
  row('result', (r) => {
    const failed = [
      r.pass.ratio ? null : 'ratio',
      r.pass.rss ? null : 'rss',
      r.pass.valid ? null : 'lines',
    ].filter((f) => f !== null);
    return failed.length === 0 ? 'PASS' : `FAIL (${failed.join(', ')})`;
  });
  const notes = [
    `${fmtInt(o.lines)} lines per file, ${o.runs} alternating runs each after one warm-up, seed ${o.seed}, node ${process.version}.`,
    'ratio: median of per-round engine / bare createGunzip() wall time (same file, same process); targets apply to it.',
    `load average ${(o.loadAverage ?? loadavg()[0]!).toFixed(1)} at start, now ${loadavg()[0]!.toFixed(1)}, on ${availableParallelism()} CPUs: wall ratios are noise when the load passes the CPU count.`,
    "vs 64K gunzip: the same against gunzip with the engine's own 64 KiB output chunks (cheaper than the 16 KiB default); informational.",
    'CPU: process.cpuUsage() user+system deltas, zlib threads included; CPU ratio = engine / bare gunzip.',
    'peak RSS: process.resourceUsage().maxRSS of a fresh node process running the bundled engine (or bare gunzip) once; 1 MB = 2^20 bytes.',
  ];
  for (const r of results) {
    if (r.reference !== null) {
      notes.push(
        `${r.format}: readline + split takes ${r.reference.ratio.median.toFixed(2)}x bare gunzip wall, ${r.reference.cpuRatio.median.toFixed(2)}x its CPU (for scale).`,
      );
    }
    notes.push(
      `${r.format}: ${fmtInt(r.bytes / MB)} MB uncompressed, ${fmtInt(r.gzipBytes / MB)} MB gzip; decisions() ${r.engine.decideMs.median.toFixed(0)} ms of the engine run.`,
    );
  }
  return `${table.toString()}\n${notes.join('\n')}\n`;
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
    .description('edgeban engine cost relative to bare streaming gunzip')
    .option(
      '--lines <n>',
      'request lines per generated file',
      positiveInt('lines', 1000),
      1_000_000,
    )
    .option('--runs <n>', 'timed runs of each, after one warm-up', positiveInt('runs', 1), 5)
    .option('--format <format>', 'cloudfront, alb or both', 'both')
    .option('--seed <n>', 'generator seed', positiveInt('seed', 0), 1)
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
    json?: boolean;
    strict?: boolean;
    reference?: boolean;
    rss: boolean;
  }>();
  const formats: BenchFormat[] =
    opts.format === 'both' ? ['cloudfront', 'alb'] : [opts.format as BenchFormat];
  if (!['cloudfront', 'alb', 'both'].includes(opts.format)) {
    process.stderr.write(`error: format must be cloudfront, alb or both, got ${opts.format}\n`);
    return 2;
  }
  const o: BenchOptions = {
    loadAverage: loadavg()[0]!,
    lines: opts.lines,
    runs: opts.runs,
    formats,
    seed: opts.seed,
    reference: opts.reference === true,
    rss: opts.rss,
  };
  try {
    for (const format of formats) resolveOptions({ format, lines: o.lines, seed: o.seed });
  } catch (err) {
    if (err instanceof BenchOptionError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  const probeScript = o.rss ? await bundleProbe() : null;
  const results: FormatResult[] = [];
  for (const format of formats) results.push(await benchFormat(format, o, probeScript));
  const pass = results.every(passed);
  if (opts.json) {
    const doc = {
      node: process.version,
      cpus: availableParallelism(),
      loadAverage: { start: o.loadAverage, end: loadavg()[0]! },
      lines: o.lines,
      runs: o.runs,
      seed: o.seed,
      rules: BENCH_CONFIG.rules,
      results,
      pass,
    };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    process.stdout.write(renderTable(results, o));
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
