/**
 * Replay's downloads: remote objects fetched ahead of the engine with
 * bounded concurrency and a memory budget, handed over in input order.
 */
import { Readable } from 'node:stream';
import type { Source } from './inputs';

/**
 * Bytes of downloaded objects held in memory ahead of the engine, at most;
 * an object larger than a share of it streams when its turn comes instead.
 */
const PREFETCH_BUDGET = 64 * 1024 * 1024;

/** An object downloaded ahead: its bytes, and how the download ended. */
interface Fetched {
  readonly chunks: Buffer[];
  /** open() failed: nothing was read. */
  readonly openError?: unknown;
  /** The body broke after `chunks`. */
  readonly readError?: unknown;
}

/** Downloads one object into memory; never rejects. */
async function download(source: Source, live: Set<Readable>): Promise<Fetched> {
  let body: Readable;
  try {
    body = await source.open();
  } catch (openError) {
    return { chunks: [], openError };
  }
  live.add(body);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return { chunks };
  } catch (readError) {
    return { chunks, readError };
  } finally {
    live.delete(body);
  }
}

/** The downloaded bytes as a stream that ends, or breaks, as the download did. */
function replayed(fetched: Fetched): Readable {
  const chunks = fetched.chunks;
  let i = 0;
  return new Readable({
    read() {
      if (i < chunks.length) this.push(chunks[i++]);
      else if (fetched.readError !== undefined) this.destroy(fetched.readError as Error);
      else this.push(null);
    },
  });
}

/**
 * Opens the sources in input order while downloading up to `concurrency`
 * remote objects ahead, within {@link PREFETCH_BUDGET}. Each opened stream
 * is what a sequential open and read would have given, so results do not
 * depend on the concurrency.
 */
export class Prefetcher {
  private readonly ahead = new Map<number, Promise<Fetched>>();
  private readonly live = new Set<Readable>();
  private next = 0;
  private held = 0;
  private readonly share: number;

  constructor(
    private readonly sources: readonly Source[],
    private readonly concurrency: number,
  ) {
    this.share = PREFETCH_BUDGET / Math.max(1, concurrency);
  }

  private fill(from: number): void {
    this.next = Math.max(this.next, from);
    while (this.next < this.sources.length && this.next < from + this.concurrency) {
      const source = this.sources[this.next]!;
      if (source.remote && source.size <= this.share) {
        if (this.ahead.size > 0 && this.held + source.size > PREFETCH_BUDGET) return;
        this.held += source.size;
        this.ahead.set(this.next, download(source, this.live));
      }
      this.next++;
    }
  }

  /**
   * The bytes of source `i` (called with 0, 1, 2, ... in order), or the
   * error of opening it.
   */
  async open(i: number): Promise<{ stream: Readable } | { error: unknown }> {
    this.fill(i);
    const source = this.sources[i]!;
    const pending = this.ahead.get(i);
    if (pending === undefined) {
      try {
        return { stream: await source.open() };
      } catch (error) {
        return { error };
      }
    }
    const fetched = await pending;
    this.ahead.delete(i);
    this.held -= source.size;
    // Room freed: start the next downloads while this object is scanned.
    this.fill(i + 1);
    if (fetched.openError !== undefined) return { error: fetched.openError };
    return { stream: replayed(fetched) };
  }

  /** Stops downloads still running (after an error). */
  close(): void {
    for (const body of this.live) body.destroy();
    this.live.clear();
  }
}
