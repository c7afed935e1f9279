/**
 * `npx tsx bench/profile.ts [--format cloudfront|alb] [--lines N] [--top N]`:
 * CPU-profiles the full engine over a bench file (the V8 sampling profiler
 * through `node:inspector`), writes the `.cpuprofile` under `.bench/` (open
 * it in Chrome DevTools) and prints the functions with the most self time.
 * One warm-up run first, so that the profile shows optimized code.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type BenchFormat, benchFile } from './generate';
import { bareGunzip, collectGarbage, fullEngine } from './measure';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

/** One row of the self-time summary. */
export interface HotFunction {
  readonly name: string;
  readonly where: string;
  /** Share of all samples, 0 to 1. */
  readonly self: number;
}

/** Self time per function (samples summed over every node of the same frame). */
export function hotFunctions(profile: Profile, root: string): HotFunction[] {
  const total = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
  const byFrame = new Map<string, HotFunction & { hits: number }>();
  for (const n of profile.nodes) {
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url.startsWith('file://') ? fileURLToPath(url) : url;
    const where = file === '' ? '' : `${file.replace(`${root}/`, '')}:${lineNumber + 1}`;
    const name = functionName === '' ? '(anonymous)' : functionName;
    const key = `${name} ${where}`;
    const entry = byFrame.get(key) ?? { name, where, self: 0, hits: 0 };
    entry.hits += n.hitCount ?? 0;
    byFrame.set(key, entry);
  }
  return [...byFrame.values()]
    .map(({ name, where, hits }) => ({ name, where, self: total === 0 ? 0 : hits / total }))
    .sort((a, b) => b.self - a.self);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
  };
  const format = arg('format', 'cloudfront') as BenchFormat;
  const lines = Number(arg('lines', '1000000'));
  const top = Number(arg('top', '25'));
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const cache = join(root, '.bench');
  const { path } = await benchFile({ format, lines, seed: 1 }, cache);
  await bareGunzip(path);
  await fullEngine(path);
  collectGarbage();

  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  const t0 = performance.now();
  const run = await fullEngine(path);
  const wallMs = performance.now() - t0;
  const { profile } = (await session.post('Profiler.stop')) as { profile: Profile };
  session.disconnect();

  const out = join(cache, `engine-${format}-${lines}.cpuprofile`);
  await writeFile(out, JSON.stringify(profile));
  process.stdout.write(
    `${format}: ${run.scan.lines} lines in ${wallMs.toFixed(0)} ms (decisions ${run.decideMs.toFixed(0)} ms); profile ${out}\n`,
  );
  for (const f of hotFunctions(profile, root).slice(0, top)) {
    process.stdout.write(`${(f.self * 100).toFixed(1).padStart(5)}%  ${f.name}  ${f.where}\n`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
