/**
 * Peak-RSS probe of `npm run bench`: run once, in a fresh process, either
 * the full engine or bare gunzip over one file, and print one JSON line with
 * the process's peak resident set size (`process.resourceUsage().maxRSS`,
 * whole process: V8, Node and the engine's state). The runner bundles this
 * file with esbuild and starts it with plain `node`, the way a Lambda runs
 * bundled code, so no TypeScript loader sits in the figure.
 *
 * Usage: `node child.mjs engine|engine-default|gunzip FILE` (`engine`: the
 * three bench rules; `engine-default`: the default config's one rule;
 * `gunzip`: the floor, 64 KiB chunks).
 */
import {
  BENCH_CONFIG,
  bareGunzip,
  DEFAULT_RULE_CONFIG,
  FLOOR_GUNZIP_CHUNK,
  fullEngine,
} from './measure';

/** The probe's answer. */
export interface ProbeResult {
  readonly mode: 'engine' | 'engine-default' | 'gunzip';
  /** Peak RSS of the whole process, bytes. */
  readonly maxRssBytes: number;
  /** RSS before the run started, bytes. */
  readonly startRssBytes: number;
  readonly wallMs: number;
  readonly lines: number;
  readonly decisions: number;
  readonly clients: number;
}

async function probe(mode: string, file: string): Promise<ProbeResult> {
  const startRssBytes = process.memoryUsage.rss();
  const t0 = performance.now();
  let lines = 0;
  let decisions = 0;
  let clients = 0;
  if (mode === 'engine' || mode === 'engine-default') {
    const run = await fullEngine(file, mode === 'engine' ? BENCH_CONFIG : DEFAULT_RULE_CONFIG);
    lines = run.scan.lines;
    decisions = run.decisions.length;
    clients = run.clients;
  } else if (mode === 'gunzip') {
    await bareGunzip(file, FLOOR_GUNZIP_CHUNK);
  } else {
    throw new Error(`mode must be engine, engine-default or gunzip, got ${mode}`);
  }
  return {
    mode,
    clients,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    startRssBytes,
    wallMs: performance.now() - t0,
    lines,
    decisions,
  };
}

const [mode = '', file = ''] = process.argv.slice(2);
probe(mode, file).then(
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
