import type { BuildResult } from 'esbuild';

/** The CLI's entry points (name → source file). */
export declare const ENTRY_POINTS: Record<string, string>;
/** Builds the CLI into `outdir` (emptied first). */
export declare function buildCli(
  outdir: string,
  options?: { metafile?: boolean },
): Promise<BuildResult<{ metafile: true }>>;
/** Whether the bundle in `outdir` is missing or older than a source. */
export declare function isStale(outdir: string): boolean;
