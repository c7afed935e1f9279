/**
 * How many objects ingest counts at once: as many as fit in the function's
 * memory, by an estimate of each object's worst case from its stored size.
 * An object too large to share the memory waits for the others and then
 * runs alone: ingest slows down for it, never runs out of memory.
 *
 * The figures come from `npm run bench` (the many-clients case); the
 * arithmetic is in docs/deploy.md ("Sizing").
 */

const MIB = 1024 * 1024;

/** The measured and assumed figures the estimate is built on. */
export const INGEST_SIZING = {
  /**
   * Peak resident bytes per distinct client while counting, with the
   * default rule, garbage-collector headroom included (bench: 496 at
   * 450,000 clients, 273 at 800,000; rounded up for a second rule a
   * client matches).
   */
  bytesPerClient: 600,
  /**
   * Fewest gzip bytes a log line with a client of its own takes (bench
   * files: about 96 for CloudFront, 88 for ALB; a quarter of that as the
   * margin for logs that compress better).
   */
  gzipBytesPerLine: 24,
  /** An object's fixed cost: zlib's window, the read and parse buffers. */
  objectBytes: 16 * MIB,
  /** The Node.js runtime, the SDK clients and the code, before any object. */
  runtimeBytes: 160 * MIB,
  /** Share of the function's memory ingest plans to use (the rest is slack). */
  usable: 0.85,
} as const;

/**
 * Memory an object may need at worst: every line a new client.
 * @param size stored (gzip) bytes; undefined when the event did not say
 * @returns bytes, or Infinity when the size is unknown (the object runs alone)
 */
export function objectMemory(size: number | undefined): number {
  if (size === undefined || !Number.isFinite(size) || size < 0) return Number.POSITIVE_INFINITY;
  const s = INGEST_SIZING;
  return s.objectBytes + Math.ceil(size / s.gzipBytesPerLine) * s.bytesPerClient;
}

/**
 * Bytes the objects of one invocation may take together.
 * @param memoryMb the function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`)
 */
export function ingestBudget(memoryMb: number): number {
  const s = INGEST_SIZING;
  return Math.max(s.objectBytes, memoryMb * MIB * s.usable - s.runtimeBytes);
}

/**
 * Admits work by the memory it may take, first come first served: a piece
 * starts when its bytes fit beside those running; one larger than the
 * whole budget waits until nothing runs, then runs alone.
 */
export class MemoryGate {
  private used = 0;
  private running = 0;
  private readonly waiting: { bytes: number; start: () => void }[] = [];

  constructor(readonly budget: number) {}

  /** Runs `work` once `bytes` fit, and frees them when it settles. */
  async run<T>(bytes: number, work: () => Promise<T>): Promise<T> {
    const need = Math.min(bytes, this.budget);
    await new Promise<void>((start) => {
      this.waiting.push({ bytes: need, start });
      this.admit();
    });
    try {
      return await work();
    } finally {
      this.used -= need;
      this.running--;
      this.admit();
    }
  }

  /** Pieces running now. */
  get active(): number {
    return this.running;
  }

  private admit(): void {
    for (;;) {
      const head = this.waiting[0];
      if (head === undefined) return;
      if (this.running > 0 && this.used + head.bytes > this.budget) return;
      this.waiting.shift();
      this.used += head.bytes;
      this.running++;
      head.start();
    }
  }
}
