/**
 * One file's requests into an engine, with `--since`/`--until` applied:
 * what replay does per file, in this thread and in each worker thread.
 */
import type { Readable } from 'node:stream';
import type { Engine } from '../lambda/core/engine';
import { scanStream } from '../lambda/core/scan';
import type { FileScan, ParsedRequest } from '../lambda/core/types';
import type { TimeRange } from './inputs';

/** One file's scan, with the requests the range left out. */
export interface CountedScan {
  readonly scan: FileScan;
  readonly outside: number;
}

/**
 * Scans inputs into `engine`, counting only requests in `range` (when
 * bounded). Shared by this thread and the replay workers.
 */
export function fileCounter(
  engine: Engine,
  range: TimeRange | null,
  onLines?: (seen: number) => void,
): (input: Readable) => Promise<CountedScan> {
  // The engine's own needs: IPv4 clients by value, no address string per line.
  const needs = engine.needs;
  const since = range?.since ?? null;
  const until = range?.until ?? null;
  let outside = 0;
  const count = (req: ParsedRequest): void => {
    const ms = req.minute * 60_000;
    if ((since !== null && ms < since) || (until !== null && ms >= until)) outside++;
    else engine.count(req);
  };
  const plain = range === null ? (req: ParsedRequest) => engine.count(req) : count;
  // With a progress bar, report lines while a large object is read, not only after it.
  let seen = 0;
  const countShown = (req: ParsedRequest): void => {
    plain(req);
    if ((++seen & 8191) === 0) onLines?.(seen);
  };
  return async (input) => {
    seen = 0;
    const before = outside;
    const scan =
      onLines !== undefined
        ? await scanStream(input, { needs }, countShown)
        : range === null
          ? await engine.scan(input)
          : await scanStream(input, { needs }, count);
    // Out-of-range requests are left out as if their lines were not there.
    scan.lines -= outside - before;
    scan.requests -= outside - before;
    return { scan, outside: outside - before };
  };
}
