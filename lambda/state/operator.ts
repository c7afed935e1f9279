/**
 * The operator commands of DESIGN section 4 (`list`, `check`, `history`,
 * `block`, `unblock`, `status`, `pause`, `resume`) as functions over the
 * state table. They return the commands' JSON shapes. Operators never edit
 * an IP set: they change the active blocks or the mode, and the reconciler
 * applies that to WAF (the CLI may run it right after, to apply at once).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { formatDuration } from '../core/duration';
import { formatSeconds } from '../core/formats/time';
import type { Guard } from '../core/guard';
import { cidrContains, cidrsOverlap, compareKeys, keyToCidr, parseCidr } from '../core/ip';
import type { EdgebanConfig, Mode, Rule } from '../core/types';
import { readMemberships } from '../reconciler/membership';
import {
  type ActiveBlock,
  blockProblem,
  cidrToKey,
  endKeyBlocks,
  type HistoryEvent,
  lagSeconds,
  putActiveBlock,
  readActiveBlocks,
  readHistory,
  readIngestStatus,
  readModeOverride,
  readReconcileStatus,
  recordEvent,
  writeModeOverride,
} from './blocks';

/** Base error of the operator commands. */
export class OperatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorError';
  }
}

/** The command was refused, or had nothing to do (CLI exit 1). The message says why. */
export class OperatorRefusedError extends OperatorError {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorRefusedError';
  }
}

/** An argument that is not valid (CLI exit 2). */
export class OperatorInputError extends OperatorError {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorInputError';
  }
}

/** What the operator commands work with. */
export interface OperatorDeps {
  readonly ddb: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly config: EdgebanConfig;
  readonly guard: Guard;
  /** The pipeline clock, epoch milliseconds. */
  readonly now: () => number;
}

/** One block as `list`, `check`, `block` and `unblock` show it. Times `YYYY-MM-DDTHH:MM:SSZ`. */
export interface BlockView {
  readonly key: string;
  /** Null for a manual block. */
  readonly rule: string | null;
  readonly source: 'rule' | 'manual';
  readonly reason: string | null;
  readonly by: string | null;
  /** Null for a manual block. */
  readonly firstExceeded: string | null;
  readonly blockedUntil: string;
  /** Null for a manual block. */
  readonly offences: number | null;
  /** Whether the reconciler has the key's address in an IP set. */
  readonly inWaf: boolean;
  /** Rule blocks only: the pair's peak window sum. */
  readonly peak?: number | null;
  /** Rule blocks only: the rule's window, as the config writes it (`5m`). */
  readonly window?: string | null;
}

/** `list`. */
export interface ListResult {
  readonly blocks: BlockView[];
}

/** `check`. */
export interface CheckResult {
  readonly ip: string;
  readonly blocked: boolean;
  readonly blocks: BlockView[];
  /** Why the address is guarded (`10.0.0.0/8 (private)`), or null. */
  readonly guardedBy: string | null;
}

/** One event of `history`. */
export interface HistoryView {
  readonly at: string;
  readonly kind: HistoryEvent['kind'];
  readonly key: string;
  readonly rule: string | null;
  readonly by: string | null;
  readonly reason: string | null;
}

/** `history`. */
export interface HistoryResult {
  readonly ip: string;
  readonly events: HistoryView[];
}

/** `unblock`: the blocks it ended, now ending at `at`. */
export interface UnblockResult {
  readonly key: string;
  readonly at: string;
  readonly by: string;
  readonly blocks: BlockView[];
}

/** A rule as the config writes it. */
export interface RuleView {
  readonly name: string;
  readonly threshold: number;
  readonly window: string;
  readonly method?: readonly string[];
  readonly path?: string;
  readonly host?: string;
  readonly status?: readonly (number | string)[];
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
  readonly duration?: string;
}

/** `status`. */
export interface StatusResult {
  /** The mode in force (the override, else the config's). */
  readonly mode: Mode;
  readonly rules: RuleView[];
  readonly ipSets: { name: string; version: 'IPV4' | 'IPV6'; size: number; capacity: number }[];
  /** Last reconcile run, or null when none ran. */
  readonly lastReconcile: string | null;
  /** Pipeline clock minus the newest log minute processed; null before any log. */
  readonly lagSeconds: number | null;
  /** The stored override (`pause`), or null. */
  readonly override: { mode: Mode; by: string | null; at: string } | null;
}

/** `pause` / `resume`: the mode that results. */
export interface ModeResult {
  readonly mode: Mode;
  readonly override: Mode | null;
  readonly by: string;
  readonly at: string;
}

/** Options of {@link manualBlock}. */
export interface ManualBlockOptions {
  /** @default - the config's `block.duration` */
  readonly forSeconds?: number;
  readonly reason?: string;
  /** Who blocks: the STS caller ARN, or the OS user locally. */
  readonly by: string;
}

/** Options of {@link unblock}. */
export interface UnblockOptions {
  /** Who unblocks: the STS caller ARN, or the OS user locally. */
  readonly by: string;
  readonly reason?: string;
}

/** An address or CIDR argument, canonical; host bits of a CIDR are cleared. */
function parseTarget(text: string): { cidr: string; key: string; prefix: number } {
  const c = parseCidr(text.trim());
  if (c === null) throw new OperatorInputError(`not an IP address or CIDR: ${text}`);
  return { cidr: c.cidr, key: cidrToKey(c.cidr), prefix: c.prefix };
}

/** `list` order: by key, then rule in config order, manual last. */
export function ruleOrder(config: EdgebanConfig): (a: ActiveBlock, b: ActiveBlock) => number {
  const index = new Map(config.rules.map((r, i) => [r.name, i]));
  const rank = (b: ActiveBlock): number =>
    b.rule === null ? config.rules.length : (index.get(b.rule) ?? config.rules.length - 0.5);
  return (a, b) => compareKeys(a.key, b.key) || rank(a) - rank(b);
}

/** A block as the operator commands show it. */
export function view(b: ActiveBlock, inWaf: boolean): BlockView {
  const common = {
    key: b.key,
    rule: b.rule,
    source: b.source,
    reason: b.reason,
    by: b.by,
    firstExceeded: b.firstExceeded === null ? null : formatSeconds(b.firstExceeded),
    blockedUntil: formatSeconds(b.until),
    offences: b.offences,
    inWaf,
  };
  if (b.source === 'manual') return common;
  return {
    ...common,
    peak: b.peak,
    window: b.window === null ? null : formatDuration(b.window * 60),
  };
}

function ruleView(r: Rule): RuleView {
  return {
    name: r.name,
    threshold: r.threshold,
    window: formatDuration(r.windowMinutes * 60),
    ...(r.methods === undefined ? {} : { method: r.methods }),
    ...(r.path === undefined ? {} : { path: r.path }),
    ...(r.host === undefined ? {} : { host: r.host }),
    ...(r.status === undefined ? {} : { status: r.status }),
    ipv4Prefix: r.ipv4Prefix,
    ipv6Prefix: r.ipv6Prefix,
    ...(r.durationSeconds === undefined ? {} : { duration: formatDuration(r.durationSeconds) }),
  };
}

/** Active blocks that have not ended by the clock (the reconciler sweeps the rest). */
async function current(deps: OperatorDeps): Promise<ActiveBlock[]> {
  const nowS = Math.floor(deps.now() / 1000);
  return (await readActiveBlocks(deps.ddb, deps.tableName)).filter((b) => b.until > nowS);
}

/** CIDRs the reconciler confirmed in any IP set. */
async function inWafSet(deps: OperatorDeps): Promise<Set<string>> {
  const found = new Set<string>();
  for (const m of (await readMemberships(deps.ddb, deps.tableName)).values()) {
    for (const c of m.confirmed) found.add(c);
  }
  return found;
}

/** `list`: every active block, by key, then rule in config order, manual last. */
export async function listBlocks(deps: OperatorDeps): Promise<ListResult> {
  const [blocks, inWaf] = await Promise.all([current(deps), inWafSet(deps)]);
  blocks.sort(ruleOrder(deps.config));
  return { blocks: blocks.map((b) => view(b, inWaf.has(keyToCidr(b.key)))) };
}

/** `check <ip>`: the active blocks covering an address (or overlapping a CIDR), and its guard. */
export async function checkAddress(deps: OperatorDeps, ip: string): Promise<CheckResult> {
  const target = parseTarget(ip);
  const [blocks, inWaf] = await Promise.all([current(deps), inWafSet(deps)]);
  const covering = blocks.filter((b) => cidrsOverlap(keyToCidr(b.key), target.cidr));
  covering.sort(ruleOrder(deps.config));
  return {
    ip: target.key,
    blocked: covering.length > 0,
    blocks: covering.map((b) => view(b, inWaf.has(keyToCidr(b.key)))),
    guardedBy: deps.guard.guardedBy(target.cidr),
  };
}

/**
 * `history <ip>`: the events of every key that covers the address (or
 * CIDR): the address itself and each range around it down to `minPrefix`,
 * oldest first.
 */
export async function history(deps: OperatorDeps, ip: string): Promise<HistoryResult> {
  const target = parseTarget(ip);
  const [addr] = target.cidr.split('/');
  const min =
    target.cidr.indexOf(':') < 0 ? deps.config.minPrefix.ipv4 : deps.config.minPrefix.ipv6;
  const keys: string[] = [];
  for (let prefix = target.prefix; prefix >= min; prefix--) {
    const c = parseCidr(`${addr}/${prefix}`);
    if (c !== null) keys.push(cidrToKey(c.cidr));
  }
  const events: HistoryEvent[] = [];
  // A few queries at a time: an IPv6 address has up to 81 covering keys.
  for (let i = 0; i < keys.length; i += 8) {
    const pages = await Promise.all(
      keys.slice(i, i + 8).map((k) => readHistory(deps.ddb, deps.tableName, k)),
    );
    for (const page of pages) events.push(...page);
  }
  events.sort((a, b) => a.at - b.at || compareKeys(a.key, b.key));
  return {
    ip: target.key,
    events: events.map((e) => ({
      at: formatSeconds(Math.floor(e.at / 1000)),
      kind: e.kind,
      key: e.key,
      rule: e.rule,
      by: e.by,
      reason: e.reason,
    })),
  };
}

/**
 * `block <ip|cidr>`: a manual block (not escalated; rule, firstExceeded and
 * offences null), replacing an earlier manual block of the same key.
 * @throws OperatorRefusedError for a guarded address or range, or one wider than `minPrefix`
 * @throws OperatorInputError for text that is not an address or CIDR, or a bad duration
 */
export async function manualBlock(
  deps: OperatorDeps,
  ipOrCidr: string,
  options: ManualBlockOptions,
): Promise<BlockView> {
  const target = parseTarget(ipOrCidr);
  const problem = blockProblem(target.key, deps.config, deps.guard);
  if (problem !== null) throw new OperatorRefusedError(`refused: ${problem}`);
  const seconds = options.forSeconds ?? deps.config.block.durationSeconds;
  if (!Number.isSafeInteger(seconds) || seconds < 1) {
    throw new OperatorInputError(
      `block duration must be a whole number of seconds >= 1, got ${seconds}`,
    );
  }
  const nowMs = deps.now();
  const start = Math.floor(nowMs / 1000);
  const block: ActiveBlock = {
    key: target.key,
    rule: null,
    source: 'manual',
    start,
    until: start + seconds,
    offences: null,
    peak: null,
    window: null,
    firstExceeded: null,
    reason: options.reason ?? null,
    by: options.by,
  };
  await recordEvent(deps.ddb, deps.tableName, {
    at: nowMs,
    kind: 'block',
    key: block.key,
    rule: null,
    by: block.by,
    reason: block.reason,
  });
  await putActiveBlock(deps.ddb, deps.tableName, block);
  return view(block, (await inWafSet(deps)).has(target.cidr));
}

/**
 * `unblock <ip|cidr>`: ends every block of the key now; only new traffic
 * can block it again.
 * @throws OperatorRefusedError when the key is not blocked, naming the blocked
 *   range that covers it if there is one
 * @throws OperatorInputError for text that is not an address or CIDR
 */
export async function unblock(
  deps: OperatorDeps,
  ipOrCidr: string,
  options: UnblockOptions,
): Promise<UnblockResult> {
  const target = parseTarget(ipOrCidr);
  const blocks = await current(deps);
  const ofKey = blocks.filter((b) => b.key === target.key);
  if (ofKey.length === 0) {
    const around = blocks
      .filter((b) => b.key !== target.key && cidrContains(keyToCidr(b.key), target.cidr))
      .map((b) => b.key)
      .sort(compareKeys);
    if (around.length > 0) {
      throw new OperatorRefusedError(
        `${target.key} is inside the blocked range ${around[0]}: unblock ${around[0]} instead`,
      );
    }
    throw new OperatorRefusedError(`${target.key} is not blocked`);
  }
  const nowMs = deps.now();
  const ended = await endKeyBlocks(deps.ddb, deps.tableName, deps.config, target.key, ofKey, {
    ms: nowMs,
    by: options.by,
    reason: options.reason ?? null,
  });
  const at = Math.floor(nowMs / 1000);
  const inWaf = (await inWafSet(deps)).has(target.cidr);
  ended.sort(ruleOrder(deps.config));
  return {
    key: target.key,
    at: formatSeconds(at),
    by: options.by,
    blocks: ended.map((b) => view({ ...b, until: Math.max(b.start, at) }, inWaf)),
  };
}

/** `status`. */
export async function status(deps: OperatorDeps): Promise<StatusResult> {
  const [override, reconciled, ingest] = await Promise.all([
    readModeOverride(deps.ddb, deps.tableName),
    readReconcileStatus(deps.ddb, deps.tableName),
    readIngestStatus(deps.ddb, deps.tableName),
  ]);
  return {
    mode: override?.mode ?? deps.config.mode,
    rules: deps.config.rules.map(ruleView),
    ipSets: (reconciled?.ipSets ?? []).map((s) => ({ ...s })),
    lastReconcile: reconciled === null ? null : formatSeconds(Math.floor(reconciled.at / 1000)),
    lagSeconds: lagSeconds(ingest, deps.now()),
    override:
      override === null
        ? null
        : {
            mode: override.mode,
            by: override.by,
            at: formatSeconds(Math.floor(override.at / 1000)),
          },
  };
}

/**
 * Stores a mode override (`pause` is `observe`), or clears it with null
 * (`resume`). The reconciler honours it on its next run, no redeploy.
 */
export async function setMode(
  deps: OperatorDeps,
  mode: Mode | null,
  by: string,
): Promise<ModeResult> {
  const at = deps.now();
  await writeModeOverride(deps.ddb, deps.tableName, mode === null ? null : { mode, by, at });
  return {
    mode: mode ?? deps.config.mode,
    override: mode,
    by,
    at: formatSeconds(Math.floor(at / 1000)),
  };
}
