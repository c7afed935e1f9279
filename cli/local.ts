/**
 * `edgeban local`: the whole pipeline on the local cloud.
 */
import type { Io } from './main';

/** Options of `edgeban local`. */
export interface LocalOptions {
  logs?: string;
  config?: string;
  json?: boolean;
  serve?: boolean;
}

/**
 * Runs `edgeban local`.
 * @returns the exit code
 */
export async function runLocal(_opts: LocalOptions, io: Io): Promise<number> {
  io.err('edgeban: local is not ready yet\n');
  return 1;
}
