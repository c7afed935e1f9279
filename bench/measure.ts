/**
 * What `npm run bench` times: bare streaming gunzip, the full engine and a
 * naive line reader, each over one gzip file. Shared by the runner (timings,
 * in one process) and the child probe (peak RSS, in a fresh process).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createGunzip } from 'node:zlib';
import { parseConfig } from '../lambda/core/config';
import { Engine } from '../lambda/core/engine';
import type { Decision, FileScan } from '../lambda/core/types';
import type { BenchFormat } from './generate';

/** The three rules of DESIGN.md section 7. */
export const BENCH_CONFIG = {
  rules: [
    { name: 'flood', threshold: 2000, window: '5m' },
    { name: 'login', threshold: 20, window: '5m', method: 'POST', path: '/login' },
    { name: 'probes', threshold: 50, window: '1m', status: ['4xx'] },
  ],
} as const;

/** What one timed run cost. */
export interface Cost {
  /** Wall-clock milliseconds. */
  readonly wallMs: number;
  /** User + system CPU milliseconds of the whole process (zlib's threads included). */
  readonly cpuMs: number;
}

/** Runs `fn` and measures it. */
export async function measure<T>(fn: () => Promise<T>): Promise<{ cost: Cost; result: T }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await fn();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { cost: { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 }, result };
}

let gcFn: (() => void) | null | undefined;

/**
 * Collects garbage before a timed run, so that one run's leftovers are not
 * charged to the next. Enables `--expose-gc` at run time when the process
 * was not started with it.
 */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    const fromGlobal = (globalThis as { gc?: () => void }).gc;
    if (fromGlobal !== undefined) gcFn = fromGlobal;
    else {
      setFlagsFromString('--expose-gc');
      gcFn = (runInNewContext('gc') as (() => void) | undefined) ?? null;
    }
  }
  gcFn?.();
}

/**
 * Output chunk size of the second, informational baseline: what the engine's
 * own inflate stage uses (`lambda/core/scan.ts`). zlib's default (16 KiB)
 * costs markedly more per byte, so the engine is also compared with this.
 */
export const ENGINE_GUNZIP_CHUNK = 64 * 1024;

/**
 * The baseline: the file through `createGunzip()` into a sink that touches
 * every chunk. Returns the uncompressed byte count.
 * @param chunkSize zlib output chunk size
 * @default chunkSize - zlib's default (16 KiB): bare `createGunzip()`
 */
export async function bareGunzip(file: string, chunkSize?: number): Promise<number> {
  let bytes = 0;
  let touched = 0;
  await pipeline(
    createReadStream(file),
    chunkSize === undefined
      ? createGunzip()
      : createGunzip({ chunkSize, highWaterMark: 4 * chunkSize } as Parameters<
          typeof createGunzip
        >[0]),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        touched ^= chunk[chunk.length - 1] ?? 0;
        done();
      },
    }),
  );
  // Keeps the touch observable so that it cannot be optimized away.
  return touched === -1 ? -1 : bytes;
}

/** What one engine run produced. */
export interface EngineRun {
  readonly scan: FileScan;
  readonly decisions: Decision[];
  /** Milliseconds of `decisions()` alone (window evaluation). */
  readonly decideMs: number;
}

/** The full engine: a fresh {@link Engine} scans the file, then decides. */
export async function fullEngine(file: string): Promise<EngineRun> {
  const engine = new Engine(parseConfig(BENCH_CONFIG));
  const scan = await engine.scan(createReadStream(file));
  const t0 = performance.now();
  const decisions = engine.decisions();
  return { scan, decisions, decideMs: performance.now() - t0 };
}

/**
 * For scale only: gunzip, `readline` and `String.split` on the field
 * separator, the way a straightforward parser reads a log. Returns the
 * number of request lines.
 */
export async function naiveReadline(file: string, format: BenchFormat): Promise<number> {
  const sep = format === 'cloudfront' ? '\t' : ' ';
  const lines = createInterface({
    input: createReadStream(file).pipe(createGunzip()),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let n = 0;
  let fields = 0;
  for await (const line of lines) {
    if (line.startsWith('#')) continue;
    fields += line.split(sep).length;
    n++;
  }
  return fields > 0 ? n : 0;
}
