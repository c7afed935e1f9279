/**
 * The edgeban engine: streams log files through the parsers, counts
 * requests per (key, rule, minute) and turns the counts into decisions.
 * Pure code: the CLI, the Lambda handlers and the tests share it.
 */
import type { Readable } from 'node:stream';
import { ClientIds } from './clients';
import { grown, type MinuteCounts, PairTable } from './counter';
import {
  type EvaluateOptions,
  emptyPairState,
  endOfMinute,
  evaluateSeries,
  type PairState,
  type RuleTiming,
} from './decide';
import { Guard, loadCloudFrontSnapshot } from './guard';
import { compareKeys, formatIpv4, maskKey } from './ip';
import { compileFilter, fieldNeeds, type RequestFilter } from './rules';
import { scanStream } from './scan';
import type { Decision, EdgebanConfig, FieldNeeds, FileScan, ParsedRequest, Rule } from './types';

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

/**
 * An engine's counts as plain data (typed arrays and strings), for moving
 * them between threads: {@link Engine.state} and {@link Engine.absorb}.
 */
export interface EngineState {
  readonly stale: number;
  /** Client addresses in first-seen order. */
  readonly ips: string[];
  /** Requests per client, in the order of `ips`. */
  readonly requests: Float64Array;
  /** Per rule: keys, and their minutes and counts (key i at `offsets[i]` to `offsets[i + 1]`). */
  readonly rules: {
    readonly keys: string[];
    readonly offsets: Uint32Array;
    readonly minutes: Int32Array;
    readonly counts: Float64Array;
  }[];
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
  // Clients live in typed arrays indexed by a per-client id, not in one
  // object each: with hundreds of thousands of clients, objects and their
  // headers would cost several times the counts they hold.
  private readonly clientIds = new ClientIds();
  private requests = new Float64Array(1024);
  /** 1 when the client is guarded: counted in `requests`, never toward a rule. */
  private guarded = new Uint8Array(1024);
  /** Per rule: the client's key id in that rule's table plus one; 0 until it first matches. */
  private keyOf: Int32Array[];
  /** Per rule: masked key → minute counts. */
  private readonly tables: PairTable[];
  private readonly onRequest = (req: ParsedRequest): void => this.count(req);
  /**
   * The fields the rules need, IPv4 clients by value ({@link count} reads
   * `ipv4` first): what a scan feeding {@link count} should ask parsers for.
   */
  readonly needs: FieldNeeds;

  constructor(
    private readonly config: EdgebanConfig,
    options: EngineOptions = {},
  ) {
    this.rules = config.rules;
    this.filters = this.rules.map(compileFilter);
    this.tables = this.rules.map(() => new PairTable());
    this.keyOf = this.rules.map(() => new Int32Array(1024));
    this.guard = options.guard ?? defaultGuard(config);
    this.minMinute = options.minMinute ?? -Infinity;
    this.needs = { ...fieldNeeds(this.rules), addressValue: true };
  }

  /** Streams one file (plain or gzip) through the engine. Never rejects for bad input. */
  scan(input: Readable): Promise<FileScan> {
    return scanStream(input, { needs: this.needs }, this.onRequest);
  }

  /** Counts one parsed request (the scanner's callback; public for adapters). */
  count(req: ParsedRequest): void {
    const v4 = req.ipv4 ?? -1;
    let client: number;
    if (v4 >= 0) {
      client = this.clientIds.findV4(v4);
      if (client < 0) client = this.addClient(formatIpv4(v4), v4);
    } else {
      client = this.clientIds.findText(req.ip);
      if (client < 0) client = this.addClient(req.ip);
    }
    this.requests[client]!++;
    if (this.guarded[client] === 1) return;
    const minute = req.minute;
    if (minute < this.minMinute) {
      this.stale++;
      return;
    }
    const filters = this.filters;
    for (let r = 0; r < filters.length; r++) {
      const filter = filters[r];
      if (filter === null || filter!(req)) {
        // Series are attached on a client's first matching request, so rules
        // that few clients match (a login path, 4xx) cost nothing per client.
        const id = this.keyOf[r]![client]! - 1;
        this.tables[r]!.add(
          id >= 0 ? id : this.linkKey(this.clientIds.texts[client]!, client, r),
          minute,
        );
      }
    }
  }

  private addClient(ip: string, v4 = -1): number {
    const id = this.clientIds.add(ip, v4);
    if (id === this.requests.length) {
      this.requests = grown(this.requests, id * 2);
      this.guarded = grown(this.guarded, id * 2);
      this.keyOf = this.keyOf.map((k) => grown(k, id * 2));
    }
    if (this.guard.isGuarded(ip)) this.guarded[id] = 1;
    return id;
  }

  private linkKey(ip: string, client: number, r: number): number {
    const rule = this.rules[r]!;
    const key = maskKey(ip, rule.ipv4Prefix, rule.ipv6Prefix);
    const table = this.tables[r]!;
    // At a full-length prefix the key is the address itself: one client, one
    // key, found through the client, so the table needs no lookup of its own.
    const id = key === ip ? table.fresh(key) : table.id(key);
    this.keyOf[r]![client] = id + 1;
    return id;
  }

  /** The id of a client's own-address key in rule `r`'s table, made on first use. */
  private keyOfClient(ip: string, r: number): number {
    const client = this.clientIds.findText(ip);
    const id = this.keyOf[r]![client]! - 1;
    return id >= 0 ? id : this.linkKey(ip, client, r);
  }

  /** The counts as plain data, for another engine to {@link absorb} (e.g. from a worker thread). */
  state(): EngineState {
    const ips = this.clientIds.texts.slice();
    const rules = this.tables.map((table) => {
      const keys: string[] = [];
      const series: MinuteCounts[] = [];
      let points = 0;
      for (const [key, counts] of table.entries()) {
        keys.push(key);
        series.push(counts);
        points += counts.minutes.length;
      }
      const offsets = new Uint32Array(keys.length + 1);
      const minutes = new Int32Array(points);
      const counts = new Float64Array(points);
      let at = 0;
      series.forEach((s, i) => {
        minutes.set(s.minutes, at);
        counts.set(s.counts, at);
        at += s.minutes.length;
        offsets[i + 1] = at;
      });
      return { keys, offsets, minutes, counts };
    });
    return { stale: this.stale, ips, requests: this.requests.slice(0, ips.length), rules };
  }

  /**
   * Adds another engine's counts (same config) to this one's: afterwards
   * the decisions and clients are those of one engine that read both
   * engines' inputs.
   */
  absorb(state: EngineState): void {
    this.stale += state.stale;
    state.ips.forEach((ip, i) => {
      let client = this.clientIds.findText(ip);
      if (client < 0) client = this.addClient(ip);
      this.requests[client]! += state.requests[i]!;
    });
    state.rules.forEach((rule, r) => {
      const table = this.tables[r]!;
      rule.keys.forEach((key, i) => {
        // A bare address key belongs to the client of that address (added above).
        const id = key.includes('/') ? table.id(key) : this.keyOfClient(key, r);
        for (let j = rule.offsets[i]!; j < rule.offsets[i + 1]!; j++) {
          table.add(id, rule.minutes[j]!, rule.counts[j]!);
        }
      });
    });
  }

  /**
   * Every (key, rule) pair with counts, minutes normalized.
   * @param overThreshold only pairs with more requests in all than their rule's threshold
   */
  *pairs(overThreshold = false): Generator<PairCounts> {
    for (let r = 0; r < this.tables.length; r++) {
      const over = overThreshold ? this.rules[r]!.threshold : 0;
      for (const [key, counts] of this.tables[r]!.entries(over))
        yield { ruleIndex: r, key, counts };
    }
  }

  /** Distinct client addresses seen. */
  get clientCount(): number {
    return this.clientIds.size;
  }

  /** Every client by requests descending, then address. */
  clients(): { ip: string; requests: number }[] {
    const requests = this.requests;
    const out: { ip: string; requests: number }[] = [];
    this.clientIds.texts.forEach((ip, id) => {
      out.push({ ip, requests: requests[id]! });
    });
    return out.sort((a, b) => b.requests - a.requests || compareKeys(a.ip, b.ip));
  }

  /**
   * Evaluates every pair's windows from scratch, as replay does (decision
   * time at the end of the firing minute), and returns one decision per
   * (key, rule) that fired, in contract order. Keys overlapping a guarded
   * range get no decision.
   */
  decisions(): Decision[] {
    const out: Decision[] = [];
    // A pair fires when a window holds more than the threshold, so pairs
    // with no more than that in all are skipped unevaluated.
    for (const pair of this.evaluateAll(true)) {
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

  /**
   * Every evaluable pair with its replay state (peaks of pairs that never fired included).
   * @param overThreshold only pairs that may fire (more requests in all than the threshold)
   */
  *evaluateAll(overThreshold = false): Generator<PairCounts & { state: PairState }> {
    const options: EvaluateOptions = { decisionTime: endOfMinute };
    const timings = this.rules.map((rule) => ruleTiming(rule, this.config));
    for (const pair of this.pairs(overThreshold)) {
      if (pair.key.includes('/') && this.guard.overlapsGuarded(pair.key) !== null) continue;
      const state = emptyPairState();
      evaluateSeries(pair.counts, timings[pair.ruleIndex]!, this.config.block, state, options);
      yield { ...pair, state };
    }
  }
}
