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
import { maskKey, resetIpCaches } from '../lambda/core/ip';
import type { Decision, EdgebanConfig, FileScan } from '../lambda/core/types';
import type { BenchFormat, KnownAttackers } from './generate';

/** The three rules of DESIGN.md section 7. */
export const BENCH_CONFIG = {
  rules: [
    { name: 'flood', threshold: 2000, window: '5m' },
    { name: 'login', threshold: 20, window: '5m', method: 'POST', path: '/login' },
    { name: 'probes', threshold: 50, window: '1m', status: ['4xx'] },
  ],
} as const;

/** The default config's one rule (`flood` 2000 in 5m), for the many-clients case. */
export const DEFAULT_RULE_CONFIG = {} as const;

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
 * Output chunk size of the floor: streaming gunzip with 64 KiB chunks.
 * zlib's default (16 KiB) costs markedly more per byte (every chunk is a
 * hop between zlib's thread and the main thread), so a floor at 16 KiB
 * would flatter the engine, whose own inflate stage uses larger chunks.
 */
export const FLOOR_GUNZIP_CHUNK = 64 * 1024;

/**
 * Streaming gunzip of the file into a sink that touches every chunk.
 * Returns the uncompressed byte count.
 * @param chunkSize zlib output chunk size; undefined for zlib's default (16 KiB, informational)
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

/**
 * The full engine: a fresh {@link Engine} scans the file, then decides.
 * The module-level address caches are emptied first, so that every timed
 * run starts as cold as a fresh process.
 */
export async function fullEngine(
  file: string,
  raw: unknown = BENCH_CONFIG,
): Promise<EngineRun & { readonly clients: number }> {
  resetIpCaches();
  const engine = new Engine(parseConfig(raw));
  const scan = await engine.scan(createReadStream(file));
  const t0 = performance.now();
  const decisions = engine.decisions();
  const decideMs = performance.now() - t0;
  return { scan, decisions, decideMs, clients: engine.clientCount };
}

/**
 * Compares decisions with the generator's known attackers, for the rules of
 * `config` (keys masked as each rule masks them). Returns null when they
 * match, else what differs; a bench run that does not match has no figure.
 */
export function checkDecisions(
  decisions: readonly Pick<Decision, 'rule' | 'key'>[],
  known: KnownAttackers,
  config: EdgebanConfig,
): string | null {
  const got = decisions.map((d) => `${d.rule} ${d.key}`).sort();
  const want = config.rules
    .flatMap((rule) =>
      (known[rule.name as keyof KnownAttackers] ?? []).map(
        (ip) => `${rule.name} ${maskKey(ip, rule.ipv4Prefix, rule.ipv6Prefix)}`,
      ),
    )
    .sort();
  const missing = want.filter((w) => !got.includes(w));
  const extra = got.filter((g) => !want.includes(g));
  if (missing.length === 0 && extra.length === 0) return null;
  return `decisions differ from the known attackers: missing [${missing.join(', ')}], unexpected [${extra.join(', ')}]`;
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
