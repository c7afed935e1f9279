/**
 * The edgeban engine: streams log files through the parsers, counts
 * requests per (key, rule, minute) and turns the counts into decisions.
 * Pure code: the CLI, the Lambda handlers and the tests share it.
 */
import type { Readable } from 'node:stream';
import { MinuteCounts } from './counter';
import {
  type EvaluateOptions,
  emptyPairState,
  endOfMinute,
  evaluateSeries,
  type PairState,
  type RuleTiming,
} from './decide';
import { Guard, loadCloudFrontSnapshot } from './guard';
import { compareKeys, maskKey } from './ip';
import { compileFilter, fieldNeeds, type RequestFilter } from './rules';
import { scanStream } from './scan';
import type { Decision, EdgebanConfig, FileScan, ParsedRequest, Rule } from './types';

/** Options of {@link Engine}. */
export interface EngineOptions {
  /**
   * The guarded-address predicate.
   * @default - built from the config's allowlist and the shipped CloudFront snapshot
   */
  readonly guard?: Guard;
  /**
   * Requests in minutes before this epoch minute count toward no rule (the
   * live horizon); they are counted in {@link Engine.stale}.
   * @default - no horizon (replay)
   */
  readonly minMinute?: number;
}

/** What the engine knows about one client address. */
interface ClientEntry {
  readonly ip: string;
  requests: number;
  /** Per rule, the series of the client's masked key once it matched; null when guarded. */
  readonly series: (MinuteCounts | undefined)[] | null;
}

/** One (key, rule) pair's counts. */
export interface PairCounts {
  readonly ruleIndex: number;
  readonly key: string;
  readonly counts: MinuteCounts;
}

/** Builds the engine's default guard from a config. */
export function defaultGuard(config: EdgebanConfig): Guard {
  return new Guard({
    allowlist: config.allowlist,
    cloudfrontRanges: loadCloudFrontSnapshot().ranges,
  });
}

/** The timing a rule evaluates with, base duration resolved. */
export function ruleTiming(rule: Rule, config: EdgebanConfig): RuleTiming {
  return {
    threshold: rule.threshold,
    windowMinutes: rule.windowMinutes,
    durationSeconds: rule.durationSeconds ?? config.block.durationSeconds,
  };
}

/**
 * Sorts decisions as the CLI contract orders them: by `firstExceeded`, then
 * rule in config order, then key.
 */
export function sortDecisions(decisions: Decision[]): Decision[] {
  return decisions.sort(
    (a, b) =>
      a.firstExceeded - b.firstExceeded || a.ruleIndex - b.ruleIndex || compareKeys(a.key, b.key),
  );
}

/**
 * Counts requests across any number of files and decides blocks.
 *
 * @example
 * const engine = new Engine(parseConfig(raw));
 * for (const file of files) await engine.scan(createReadStream(file));
 * const decisions = engine.decisions();
 */
export class Engine {
  /** Requests outside the live horizon. */
  stale = 0;
  private readonly rules: readonly Rule[];
  private readonly filters: RequestFilter[];
  private readonly guard: Guard;
  private readonly minMinute: number;
  private readonly clientMap = new Map<string, ClientEntry>();
  /** Per rule: masked key → counts. */
  private readonly pairMaps: Map<string, MinuteCounts>[];
  private readonly onRequest = (req: ParsedRequest): void => this.count(req);

  constructor(
    private readonly config: EdgebanConfig,
    options: EngineOptions = {},
  ) {
    this.rules = config.rules;
    this.filters = this.rules.map(compileFilter);
    this.pairMaps = this.rules.map(() => new Map());
    this.guard = options.guard ?? defaultGuard(config);
    this.minMinute = options.minMinute ?? -Infinity;
  }

  /** Streams one file (plain or gzip) through the engine. Never rejects for bad input. */
  scan(input: Readable): Promise<FileScan> {
    return scanStream(input, { needs: fieldNeeds(this.rules) }, this.onRequest);
  }

  /** Counts one parsed request (the scanner's callback; public for adapters). */
  count(req: ParsedRequest): void {
    let client = this.clientMap.get(req.ip);
    if (client === undefined) client = this.addClient(req.ip);
    client.requests++;
    const series = client.series;
    if (series === null) return;
    if (req.minute < this.minMinute) {
      this.stale++;
      return;
    }
    const filters = this.filters;
    for (let r = 0; r < filters.length; r++) {
      const filter = filters[r];
      if (filter === null || filter!(req)) {
        (series[r] ?? this.seriesOf(client.ip, series, r)).add(req.minute);
      }
    }
  }

  private addClient(ip: string): ClientEntry {
    // Series are attached on a client's first matching request, so rules
    // that few clients match (a login path, 4xx) cost nothing per client.
    const series = this.guard.isGuarded(ip)
      ? null
      : new Array<MinuteCounts | undefined>(this.rules.length).fill(undefined);
    const entry: ClientEntry = { ip, requests: 0, series };
    this.clientMap.set(ip, entry);
    return entry;
  }

  private seriesOf(ip: string, series: (MinuteCounts | undefined)[], r: number): MinuteCounts {
    const rule = this.rules[r]!;
    const key = maskKey(ip, rule.ipv4Prefix, rule.ipv6Prefix);
    const map = this.pairMaps[r]!;
    let counts = map.get(key);
    if (counts === undefined) {
      counts = new MinuteCounts();
      map.set(key, counts);
    }
    series[r] = counts;
    return counts;
  }

  /** Every (key, rule) pair with counts, minutes normalized. */
  *pairs(): Generator<PairCounts> {
    for (let r = 0; r < this.pairMaps.length; r++) {
      for (const [key, counts] of this.pairMaps[r]!) {
        if (counts.minutes.length > 0) yield { ruleIndex: r, key, counts: counts.normalize() };
      }
    }
  }

  /** Every client by requests descending, then address. */
  clients(): { ip: string; requests: number }[] {
    return [...this.clientMap.values()]
      .map((c) => ({ ip: c.ip, requests: c.requests }))
      .sort((a, b) => b.requests - a.requests || compareKeys(a.ip, b.ip));
  }

  /**
   * Evaluates every pair's windows from scratch, as replay does (decision
   * time at the end of the firing minute), and returns one decision per
   * (key, rule) that fired, in contract order. Keys overlapping a guarded
   * range get no decision.
   */
  decisions(): Decision[] {
    const out: Decision[] = [];
    for (const pair of this.evaluateAll()) {
      const { state } = pair;
      const last = state.blocks[state.blocks.length - 1];
      if (state.firstExceeded === null || last === undefined) continue;
      out.push({
        key: pair.key,
        rule: this.rules[pair.ruleIndex]!.name,
        ruleIndex: pair.ruleIndex,
        peak: state.peak,
        firstExceeded: state.firstExceeded,
        blockedUntil: last.until,
        offences: last.offence,
        blocks: state.blocks,
      });
    }
    return sortDecisions(out);
  }

  /** Every evaluable pair with its replay state (peaks of pairs that never fired included). */
  *evaluateAll(): Generator<PairCounts & { state: PairState }> {
    const options: EvaluateOptions = { decisionTime: endOfMinute };
    const timings = this.rules.map((rule) => ruleTiming(rule, this.config));
    for (const pair of this.pairs()) {
      if (pair.key.includes('/') && this.guard.overlapsGuarded(pair.key) !== null) continue;
      const state = emptyPairState();
      evaluateSeries(pair.counts, timings[pair.ruleIndex]!, this.config.block, state, options);
      yield { ...pair, state };
    }
  }
}
