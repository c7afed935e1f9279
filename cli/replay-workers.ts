/**
 * Parallel replay: local files scanned by worker threads, each with its own
 * engine, whose counts this thread then absorbs. Counting is a sum per
 * (key, rule, minute) and per client, so the merged engine holds exactly
 * what one engine reading every file would, whatever file went to which
 * worker; the document is byte for byte that of one thread.
 *
 * Files go out one at a time, largest first, to whichever thread is idle;
 * this thread is one of them (so `--workers 2` starts one worker), scanning
 * straight into the engine the others' counts are added to. Each thread
 * reads its file itself (`createReadStream`), so no bytes cross threads;
 * only the counts do, once, as typed arrays.
 */
import { createReadStream, existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Engine, EngineState } from '../lambda/core/engine';
import type { EdgebanConfig } from '../lambda/core/types';
import type { CountedScan } from './file-counter';
import type { TimeRange } from './inputs';

/** What a worker is started with (`workerData`). */
export interface WorkerSetup {
  readonly config: EdgebanConfig;
  readonly range: TimeRange | null;
}

/** This thread to a worker: a file to scan, or the end of the work. */
export type ToWorker = { readonly index: number; readonly path: string } | { readonly done: true };

/** A worker to this thread: one file's scan, or its engine's counts at the end. */
export type FromWorker =
  | { readonly index: number; readonly counted: CountedScan }
  | { readonly state: EngineState };

/** A local file to scan. */
export interface FileJob {
  readonly name: string;
  readonly size: number;
}

/**
 * The worker's script: `replay-worker.ts` beside this file when running from
 * source (through the tsx loader), else `replay-worker.js` at the top of the
 * bundle (`dist/`), this file being in a chunk below it or beside it.
 */
function startWorker(workerData: WorkerSetup): Worker {
  if (import.meta.url.endsWith('.ts')) {
    // From source (tests, tsx): register the tsx loader in the thread first.
    const script = new URL('./replay-worker.ts', import.meta.url).href;
    const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(script)}); });`;
    return new Worker(boot, { eval: true, workerData });
  }
  for (const rel of ['../replay-worker.js', './replay-worker.js']) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(url))) return new Worker(url, { workerData });
  }
  throw new Error('replay-worker.js is missing from the build: run npm run build:cli');
}

/** This thread's engine, and how it scans a file into it. */
export interface Local {
  readonly engine: Engine;
  readonly counter: (input: Readable) => Promise<CountedScan>;
}

/**
 * Scans `files` on `workers` threads, this one included, and adds the
 * other threads' counts to `local.engine`.
 * @param onFile called as files complete, with how many are done and the lines so far
 * @returns each file's scan, in input order
 */
export async function scanInWorkers(
  files: readonly FileJob[],
  config: EdgebanConfig,
  range: TimeRange | null,
  workers: number,
  local: Local,
  onFile?: (done: number, lines: number, bytes: number) => void,
): Promise<CountedScan[]> {
  const order = files.map((_, i) => i).sort((a, b) => files[b]!.size - files[a]!.size || a - b);
  const results: CountedScan[] = new Array(files.length);
  const setup: WorkerSetup = { config, range };
  let next = 0;
  let done = 0;
  let lines = 0;
  const threads: Worker[] = [];
  const complete = (index: number, counted: CountedScan) => {
    results[index] = counted;
    done++;
    lines += counted.scan.lines;
    onFile?.(done, lines, files[index]!.size);
  };
  const here = async () => {
    for (let i = order[next++]; i !== undefined; i = order[next++]) {
      const path = files[i]!.name;
      complete(i, await local.counter(createReadStream(path, { highWaterMark: 256 * 1024 })));
    }
  };
  const run = (worker: Worker) =>
    new Promise<EngineState>((resolve, reject) => {
      const feed = () => {
        const i = order[next++];
        worker.postMessage(
          (i === undefined
            ? { done: true }
            : { index: i, path: files[i]!.name }) satisfies ToWorker,
        );
      };
      worker.on('message', (msg: FromWorker) => {
        if ('state' in msg) {
          resolve(msg.state);
          return;
        }
        complete(msg.index, msg.counted);
        feed();
      });
      worker.on('error', reject);
      worker.on('exit', (code) => {
        reject(new Error(`replay worker exited with code ${code} before it finished`));
      });
      feed();
    });
  try {
    const others = Array.from({ length: workers - 1 }, () => {
      const worker = startWorker(setup);
      threads.push(worker);
      return run(worker);
    });
    const [, ...states] = await Promise.all([here(), ...others]);
    for (const state of states) local.engine.absorb(state);
    return results;
  } finally {
    for (const t of threads) void t.terminate();
  }
}
