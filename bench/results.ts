/**
 * The bench's targets and the shapes of its figures, shared by the runner,
 * the process-level cases and the report.
 */
import type { BenchFormat } from './generate';
import type { Stat } from './stat';

/** Targets of DESIGN.md section 7 and the bench issue. */
export const TARGETS = {
  /** Engine / floor (gunzip, 64 KiB chunks), in process. */
  ratio: { cloudfront: 1.3, alb: 1.4 } satisfies Record<BenchFormat, number>,
  /** Peak RSS with the three bench rules and 22k clients, MiB. */
  rssMb: 200,
  /** 1M CloudFront lines from about 450,000 clients, default rule. */
  clients: { count: 450_000, rssMb: 300, timeRatio: 2 },
} as const;

/** Targets of the process-level cases (the bench issue). */
export const CLI_TARGETS = {
  /** `edgeban --help`, ms over `node -e 0`. */
  helpMs: 60,
  /** Replay of a one-line file, ms over `node -e 0`. */
  oneLineMs: 200,
  /** Replay end to end / gunzip process, per format. */
  replayRatio: { cloudfront: 1.5, alb: 1.6 } satisfies Record<BenchFormat, number>,
  /** One worker per core / one worker: wall at most, total CPU at most. */
  parallel: { wallRatio: 0.9, cpuRatio: 1.1 },
} as const;

/** The cases `--cases` picks from. */
export const CASES = ['engine', 'clients', 'cli', 'parallel'] as const;
export type BenchCase = (typeof CASES)[number];

/** Options of one bench run. */
export interface BenchOptions {
  /** One-minute load average when the run started (the noise it ran in). */
  readonly loadAverage?: number;
  readonly lines: number;
  readonly runs: number;
  readonly formats: readonly BenchFormat[];
  readonly seed: number;
  readonly reference: boolean;
  readonly rss: boolean;
  readonly cases?: readonly BenchCase[];
}

/** One format's in-process figures. */
export interface FormatResult {
  readonly format: BenchFormat;
  readonly file: string;
  readonly gzipBytes: number;
  readonly bytes: number;
  readonly lines: number;
  readonly requests: number;
  readonly rejected: number;
  /** The floor: gunzip with 64 KiB output chunks. */
  readonly gunzip: Series;
  /** Gunzip with zlib's default 16 KiB chunks (informational). */
  readonly gunzip16: Series;
  /**
   * Gunzip with the engine's own output chunks (1 MiB), a faster gunzip
   * than the floor (informational: the engine's inflate stage alone).
   */
  readonly gunzipOwn: Series;
  readonly engine: Series & { readonly decideMs: Stat };
  /** Engine / floor wall time, per round. */
  readonly ratio: Stat;
  /** Engine / floor CPU time, per round. */
  readonly cpuRatio: Stat;
  /** Engine / 16 KiB gunzip wall time, per round (informational, no target). */
  readonly ratio16: Stat;
  /** Engine / gunzip with the engine's own chunks, per round (informational, no target). */
  readonly ratioOwn: Stat;
  readonly linesPerSecond: { readonly engine: number; readonly gunzip: number };
  /** Peak RSS of a fresh process running it once, MiB; null when not measured. */
  readonly peakRssMb: { readonly engine: number | null; readonly gunzip: number | null };
  readonly decisions: { readonly total: number; readonly byRule: Record<string, number> };
  /** Why the decisions of a timed run were wrong, or null. */
  readonly invalid: string | null;
  /** readline + split over gunzip, for scale (`--reference`). */
  readonly reference: { readonly ratio: Stat; readonly cpuRatio: Stat } | null;
  readonly targets: { readonly ratio: number; readonly rssMb: number };
  readonly pass: { readonly ratio: boolean; readonly rss: boolean; readonly valid: boolean };
}

/** The many-clients case. */
export interface ClientsResult {
  readonly lines: number;
  readonly clients: { readonly few: number; readonly many: number };
  readonly fewMs: Stat;
  readonly manyMs: Stat;
  /** Many-clients time / few-clients time, per round. */
  readonly timeRatio: Stat;
  readonly peakRssMb: {
    readonly few: number | null;
    readonly many: number | null;
    readonly gunzip: number | null;
  };
  /** (peak RSS of the engine - peak RSS of gunzip) / clients, for the many-clients file. */
  readonly bytesPerClient: number | null;
  readonly invalid: string | null;
  readonly pass: boolean;
}

/** Everything one bench run measured. */
export interface BenchReport {
  readonly formats: readonly FormatResult[];
  readonly clients: ClientsResult | null;
  readonly startup: StartupResult | null;
  readonly endToEnd: readonly EndToEndResult[];
  readonly parallel: ParallelResult | null;
}

export interface Series {
  readonly wallMs: Stat;
  readonly cpuMs: Stat;
}

/** Start-up figures: medians of alternating runs. */
export interface StartupResult {
  readonly nodeMs: Stat;
  readonly helpMs: Stat;
  readonly oneLineMs: Stat;
  readonly pass: { readonly help: boolean; readonly oneLine: boolean };
}

/** End-to-end replay of one file against a gunzip process. */
export interface EndToEndResult {
  readonly format: BenchFormat;
  readonly gunzipMs: Stat;
  readonly replayMs: Stat;
  readonly ratio: Stat;
  readonly cpu: { readonly gunzipMs: Stat; readonly replayMs: Stat };
  readonly target: number;
  readonly invalid: string | null;
  readonly pass: boolean;
}

/** The parallel case: per worker count, wall, CPU and lines per CPU second. */
export interface ParallelResult {
  readonly files: number;
  readonly linesPerFile: number;
  readonly rows: readonly {
    readonly workers: number;
    readonly wallMs: Stat;
    readonly cpuMs: Stat;
    /** Lines per second of CPU: holds as workers grow when the code scales. */
    readonly linesPerCpuSecond: number;
  }[];
  readonly wallRatio: Stat;
  readonly cpuRatio: Stat;
  readonly identical: boolean;
  readonly invalid: string | null;
  readonly pass: boolean;
}
