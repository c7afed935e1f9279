/**
 * Builds the `edgeban` CLI into `dist/`: one ES module bundle of our code
 * (esbuild), split into chunks so that each dynamic `import()` of the CLI
 * (the AWS SDK adapters, the local cloud, the replay workers) stays lazy and
 * `edgeban --help` loads only the command table. npm packages stay external:
 * Node resolves them from node_modules when a chunk that needs them loads.
 *
 * Runs as the `prepare` script, so `npm ci` alone leaves `dist/edgeban.js`
 * ready for `npx edgeban`; plain JavaScript so it needs no TypeScript loader.
 *
 * Usage: `node scripts/build-cli.mjs [--if-stale] [OUTDIR]` (default `dist`).
 * With `--if-stale` it builds only when a source is newer than the bundle,
 * so `npm run edgeban` runs the code of the checkout after a pull or an
 * edit without paying for a build every time.
 */
import { readdirSync, statSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The CLI's entry points: the command line, and the replay worker thread it starts. */
export const ENTRY_POINTS = {
  edgeban: join(ROOT, 'bin', 'edgeban.ts'),
  'replay-worker': join(ROOT, 'cli', 'replay-worker.ts'),
};

/** Folders whose files go into the bundle. */
const SOURCES = ['bin', 'cli', 'lambda', 'local'];

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Whether the bundle in `outdir` is missing or older than a source file,
 * `package.json` or this script.
 * @param {string} outdir
 */
export function isStale(outdir) {
  let built;
  try {
    built = statSync(join(outdir, 'edgeban.js')).mtimeMs;
  } catch {
    return true;
  }
  const inputs = [
    ...SOURCES.map((d) => newestMtime(join(ROOT, d))),
    statSync(join(ROOT, 'package.json')).mtimeMs,
    statSync(fileURLToPath(import.meta.url)).mtimeMs,
  ];
  return inputs.some((m) => m > built);
}

/**
 * Builds the CLI into `outdir` (emptied first).
 * @param {string} outdir
 * @param {{ metafile?: boolean }} [options]
 * @returns {Promise<import('esbuild').BuildResult>}
 */
export async function buildCli(outdir, options = {}) {
  // esbuild loads only when a build is due (`--if-stale` usually skips it).
  const { build } = await import('esbuild');
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ENTRY_POINTS,
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    chunkNames: 'chunks/[name]-[hash]',
    metafile: options.metafile === true,
    logLevel: 'error',
  });
  await chmod(join(outdir, 'edgeban.js'), 0o755);
  return result;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const ifStale = args.includes('--if-stale');
  const outdir = resolve(ROOT, args.find((a) => !a.startsWith('--')) ?? 'dist');
  if (!ifStale || isStale(outdir)) await buildCli(outdir);
}
