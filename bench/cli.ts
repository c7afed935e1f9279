/**
 * The bench's process-level cases: the built CLI (`dist/`-style bundle)
 * started as a user starts it, timed against `node` itself and against
 * streaming gunzip in a separate `node` process.
 *
 * - start-up: `edgeban --help` and a one-line replay against `node -e 0`;
 * - end to end: `replay --json` of a 1M-line file against a process that
 *   only gunzips it (64 KiB chunks), start-up included on both sides;
 * - parallel: 8 files of 250k lines with `--workers 1` and with one worker
 *   per core, wall and CPU (user + system of the whole process, worker and
 *   zlib threads included, read at exit by a preloaded probe).
 *
 * Every replay's decisions are checked against the generator's known
 * attackers; a mismatch fails the bench.
 */
import { spawn } from 'node:child_process';
import { copyFile, link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseConfig } from '../lambda/core/config';
import type { Decision } from '../lambda/core/types';
import { buildCli } from '../scripts/build-cli.mjs';
import { benchFile, type GenerateOptions, generateText, knownAttackers } from './generate';
import { BENCH_CONFIG, checkDecisions, FLOOR_GUNZIP_CHUNK } from './measure';
import {
  CLI_TARGETS,
  type EndToEndResult,
  type ParallelResult,
  type StartupResult,
} from './results';
import { stat } from './stat';

/** One process run. */
interface Run {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly stdout: string;
}

const CPU_PROBE = `import { writeFileSync } from 'node:fs';
process.on('exit', () => {
  const u = process.cpuUsage();
  writeFileSync(process.env.EDGEBAN_BENCH_CPU, String((u.user + u.system) / 1000));
});
`;

const GUNZIP_SCRIPT = `import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
let bytes = 0;
await pipeline(
  createReadStream(process.argv[2]),
  createGunzip({ chunkSize: ${FLOOR_GUNZIP_CHUNK}, highWaterMark: ${4 * FLOOR_GUNZIP_CHUNK} }),
  new Writable({ write(chunk, _e, done) { bytes += chunk.length; done(); } }),
);
process.stdout.write(String(bytes));
`;

/** The bundle and helper scripts under `cache`. */
export interface CliKit {
  readonly edgeban: string;
  readonly gunzip: string;
  readonly probe: string;
  readonly config: string;
  readonly cache: string;
}

/** Builds the CLI as `npm ci` does (into `cache/cli`) and writes the helper scripts. */
export async function prepareCli(cache: string): Promise<CliKit> {
  const outdir = join(cache, 'cli');
  await buildCli(outdir);
  const gunzip = join(cache, 'gunzip64.mjs');
  const probe = join(cache, 'cpu-probe.mjs');
  const config = join(cache, 'bench-config.json');
  await writeFile(gunzip, GUNZIP_SCRIPT);
  await writeFile(probe, CPU_PROBE);
  await writeFile(config, JSON.stringify(BENCH_CONFIG));
  return { edgeban: join(outdir, 'edgeban.js'), gunzip, probe, config, cache };
}

/** Runs `node args...` to completion; with `cpu`, reads its CPU time through the probe. */
async function node(kit: CliKit, args: string[], cpu = false): Promise<Run> {
  const cpuFile = join(kit.cache, `cpu-${process.pid}.txt`);
  const argv = cpu ? ['--import', pathToFileURL(kit.probe).href, ...args] : args;
  const t0 = performance.now();
  const stdout = await new Promise<string>((done, fail) => {
    const child = spawn(process.execPath, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, EDGEBAN_BENCH_CPU: cpuFile },
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', fail);
    child.on('close', (code) => {
      if (code === 0) done(Buffer.concat(out).toString());
      else fail(new Error(`node ${args.join(' ')} exited ${code}: ${err.trim().split('\n')[0]}`));
    });
  });
  const wallMs = performance.now() - t0;
  const cpuMs = cpu ? Number(await readFile(cpuFile, 'utf8')) : Number.NaN;
  return { wallMs, cpuMs, stdout };
}

function decisionsOf(json: string): Pick<Decision, 'rule' | 'key'>[] {
  return (JSON.parse(json) as { decisions: Pick<Decision, 'rule' | 'key'>[] }).decisions;
}

/** `node -e 0`, `edgeban --help` and a one-line replay, alternating, `runs` times each. */
export async function benchStartup(kit: CliKit, runs: number): Promise<StartupResult> {
  const oneLine = join(kit.cache, 'one-line.log');
  // The header and first request line of a generated CloudFront file.
  const lines = generateText({ format: 'cloudfront', lines: 1000, seed: 1 }, 1);
  await writeFile(oneLine, `${lines.next().value ?? ''}${lines.next().value ?? ''}`);
  const nodeMs: number[] = [];
  const helpMs: number[] = [];
  const oneLineMs: number[] = [];
  // One untimed round first: the page cache and the bundle's compile cache.
  for (let round = -1; round < runs; round++) {
    const a = await node(kit, ['-e', '0']);
    const b = await node(kit, [kit.edgeban, '--help']);
    const c = await node(kit, [kit.edgeban, 'replay', '--threshold', '5', '--json', oneLine]);
    if (JSON.parse(c.stdout).summary.requests !== 1) throw new Error('one-line replay miscounted');
    if (round < 0) continue;
    nodeMs.push(a.wallMs);
    helpMs.push(b.wallMs);
    oneLineMs.push(c.wallMs);
  }
  const n = stat(nodeMs);
  const help = stat(helpMs);
  const one = stat(oneLineMs);
  return {
    nodeMs: n,
    helpMs: help,
    oneLineMs: one,
    pass: {
      help: help.median - n.median <= CLI_TARGETS.helpMs,
      oneLine: one.median - n.median <= CLI_TARGETS.oneLineMs,
    },
  };
}

/** Replay of a generated file, end to end, against a gunzip process; `runs` alternating rounds. */
export async function benchEndToEnd(
  kit: CliKit,
  opts: GenerateOptions,
  runs: number,
): Promise<EndToEndResult> {
  const { path } = await benchFile(opts, kit.cache);
  const known = knownAttackers(opts);
  const config = parseConfig(BENCH_CONFIG);
  const gunzip: Run[] = [];
  const replay: Run[] = [];
  let invalid: string | null = null;
  const timeReplay = async () => {
    const r = await node(
      kit,
      [kit.edgeban, 'replay', '--config', kit.config, '--json', path],
      true,
    );
    invalid ??= checkDecisions(decisionsOf(r.stdout), known, config);
    replay.push(r);
  };
  await node(kit, [kit.gunzip, path]);
  for (let round = 0; round < runs; round++) {
    if (round % 2 === 0) {
      gunzip.push(await node(kit, [kit.gunzip, path], true));
      await timeReplay();
    } else {
      await timeReplay();
      gunzip.push(await node(kit, [kit.gunzip, path], true));
    }
  }
  const ratio = stat(replay.map((r, i) => r.wallMs / gunzip[i]!.wallMs));
  const target = CLI_TARGETS.replayRatio[opts.format];
  return {
    format: opts.format,
    gunzipMs: stat(gunzip.map((r) => r.wallMs)),
    replayMs: stat(replay.map((r) => r.wallMs)),
    ratio,
    cpu: { gunzipMs: stat(gunzip.map((r) => r.cpuMs)), replayMs: stat(replay.map((r) => r.cpuMs)) },
    target,
    invalid,
    pass: invalid === null && ratio.median <= target,
  };
}

/** Hard-links (or copies) the parallel case's files into one folder. */
async function parallelDir(kit: CliKit, files: number, lines: number, seed: number) {
  const dir = join(kit.cache, `parallel-${files}x${lines}-s${seed}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const base = Date.UTC(2024, 4, 1, 0, 0, 0) / 1000;
  for (let k = 0; k < files; k++) {
    // Consecutive hours of the same site: the same clients, hour after hour.
    const { path } = await benchFile(
      { format: 'cloudfront', lines, seed, start: base + k * 3600 },
      kit.cache,
    );
    const to = join(dir, `part-${k}.log.gz`);
    await link(path, to).catch(() => copyFile(path, to));
  }
  return dir;
}

/** The parallel case: `--workers 1` against one worker per core, `runs` alternating rounds. */
export async function benchParallel(
  kit: CliKit,
  files: number,
  lines: number,
  seed: number,
  runs: number,
): Promise<ParallelResult> {
  const dir = await parallelDir(kit, files, lines, seed);
  const known = knownAttackers({ format: 'cloudfront', lines, seed });
  const config = parseConfig(BENCH_CONFIG);
  const counts = [...new Set([1, availableParallelism()])];
  const byCount = new Map<number, Run[]>(counts.map((c) => [c, []]));
  let invalid: string | null = null;
  let identical = true;
  let reference: string | null = null;
  for (let round = 0; round < runs; round++) {
    const order = round % 2 === 0 ? counts : [...counts].reverse();
    for (const workers of order) {
      const r = await node(
        kit,
        [
          kit.edgeban,
          'replay',
          '--config',
          kit.config,
          '--json',
          '--workers',
          String(workers),
          dir,
        ],
        true,
      );
      invalid ??= checkDecisions(decisionsOf(r.stdout), known, config);
      reference ??= r.stdout;
      if (r.stdout !== reference) identical = false;
      byCount.get(workers)!.push(r);
    }
  }
  const one = byCount.get(1)!;
  const many = byCount.get(counts[counts.length - 1]!)!;
  const wallRatio = stat(many.map((r, i) => r.wallMs / one[i]!.wallMs));
  const cpuRatio = stat(many.map((r, i) => r.cpuMs / one[i]!.cpuMs));
  const rows = counts.map((workers) => {
    const cpuMs = stat(byCount.get(workers)!.map((r) => r.cpuMs));
    return {
      workers,
      wallMs: stat(byCount.get(workers)!.map((r) => r.wallMs)),
      cpuMs,
      linesPerCpuSecond: (files * lines) / (cpuMs.median / 1000),
    };
  });
  const t = CLI_TARGETS.parallel;
  return {
    files,
    linesPerFile: lines,
    rows,
    wallRatio,
    cpuRatio,
    identical,
    invalid,
    pass:
      invalid === null &&
      identical &&
      wallRatio.median <= t.wallRatio &&
      cpuRatio.median <= t.cpuRatio,
  };
}
