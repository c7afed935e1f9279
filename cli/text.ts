/**
 * Human output of the CLI: short summaries and aligned tables.
 */
import { createRequire } from 'node:module';
import type TableType from 'cli-table3';
import type { EdgebanConfig, Mode } from '../lambda/core/types';
import type {
  BlockView,
  CheckResult,
  HistoryResult,
  ListResult,
  RuleView,
  StatusResult,
} from '../lambda/state/operator';
import type { ReplayDocument } from './replay';

/** cli-table3 on first use: the command table of `edgeban --help` starts without it. */
let tableClass: typeof TableType | undefined;

/** A borderless, aligned table. */
export function table(head: string[], rows: (string | number)[][]): string {
  tableClass ??= createRequire(import.meta.url)('cli-table3') as typeof TableType;
  const Table = tableClass;
  const t = new Table({
    head,
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const row of rows) t.push(row.map(String));
  return t
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

/** The text form of a replay: summary, problems, clients, decisions. */
export function renderReplayText(doc: ReplayDocument): string {
  const s = doc.summary;
  const parts: string[] = [];
  parts.push(
    `${s.files} files, ${s.lines} lines: ${s.requests} requests, ${s.rejected} rejected; ` +
      `${s.skippedFiles} skipped files, ${s.damagedFiles} damaged files`,
  );
  if (s.objectsOutOfRange !== undefined || s.requestsOutOfRange !== undefined) {
    parts.push(
      `Outside --since/--until: ${s.objectsOutOfRange ?? 0} objects by key time (not read), ` +
        `${s.requestsOutOfRange ?? 0} requests by log time (not counted)`,
    );
  }
  if (doc.problems.length > 0) {
    parts.push(
      `\nProblems\n${table(
        ['file', 'kind', 'count', 'reason'],
        doc.problems.map((p) => [p.file, p.kind, p.count ?? '', p.reason]),
      )}`,
    );
  }
  if (doc.clients !== undefined) {
    parts.push(
      `\nClients\n${table(
        ['client', 'requests'],
        doc.clients.map((c) => [c.ip, c.requests]),
      )}`,
    );
  }
  if (doc.decisions.length === 0) {
    parts.push('\nNo decisions: no key exceeded a rule.');
  } else {
    parts.push(
      `\nDecisions (${doc.decisions.length})\n${table(
        ['key', 'rule', 'peak', 'first exceeded', 'blocked until', 'offences'],
        doc.decisions.map((d) => [
          d.key,
          d.rule,
          d.peak,
          d.firstExceeded,
          d.blockedUntil,
          d.offences,
        ]),
      )}`,
    );
  }
  return `${parts.join('\n')}\n`;
}

/** A span of seconds in words: `3h 59m`, `45s`, `2d 4h`. */
export function span(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
  return `${m}m`;
}

/** Seconds from `nowMs` until an ISO time `YYYY-MM-DDTHH:MM:SSZ`. */
function secondsUntil(iso: string, nowMs: number): number {
  return Math.floor((Date.parse(iso) - nowMs) / 1000);
}

/** The text form of `list`: one row per active block. */
export function renderList(list: ListResult, nowMs: number): string {
  if (list.blocks.length === 0) return 'No active blocks.\n';
  const rows = list.blocks.map((b) => [
    b.key,
    b.rule ?? 'manual',
    `${b.blockedUntil} (${span(secondsUntil(b.blockedUntil, nowMs))})`,
    b.offences ?? '',
    b.peak ?? '',
    b.by ?? '',
    b.inWaf ? 'yes' : 'no',
    b.reason ?? '',
  ]);
  return `${table(['key', 'rule', 'blocked until', 'offences', 'peak', 'by', 'in WAF', 'reason'], rows)}\n${list.blocks.length} active block${list.blocks.length === 1 ? '' : 's'}.\n`;
}

function explainBlock(b: BlockView, ip: string, config: EdgebanConfig, nowMs: number): string {
  const via = b.key === ip ? '' : ` (through the range ${b.key})`;
  const until = `until ${b.blockedUntil}, ${span(secondsUntil(b.blockedUntil, nowMs))} from now`;
  if (b.source === 'manual') {
    const why = b.reason === null ? '' : `: "${b.reason}"`;
    return `manually blocked by ${b.by ?? 'unknown'}${via}${why}, ${until}`;
  }
  const rule = config.rules.find((r) => r.name === b.rule);
  const window = b.window ?? (rule === undefined ? '?' : `${rule.windowMinutes}m`);
  const threshold =
    rule === undefined
      ? 'a rule no longer in the config'
      : `more than the threshold of ${rule.threshold}`;
  const offence = b.offences === null ? '' : `, offence ${b.offences}`;
  return (
    `blocked by rule ${b.rule}${via}: a peak of ${b.peak ?? '?'} requests in ${window} ` +
    `(${threshold}), first exceeded ${b.firstExceeded ?? '?'}${offence}, ${until}`
  );
}

/** The text form of `check`: why an address is, or is not, blocked. */
export function renderCheck(
  check: CheckResult,
  config: EdgebanConfig,
  mode: Mode,
  nowMs: number,
): string {
  const lines: string[] = [];
  if (!check.blocked) {
    lines.push(
      check.guardedBy === null
        ? `${check.ip} is not blocked: no active block covers it.`
        : `${check.ip} is not blocked, and cannot be: it is guarded by ${check.guardedBy}.`,
    );
    return `${lines.join('\n')}\n`;
  }
  const inWaf = check.blocks.some((b) => b.inWaf);
  let where = inWaf ? 'in WAF' : 'not in WAF yet';
  if (!inWaf && mode === 'observe') where = 'not in WAF: the mode is observe';
  if (inWaf && mode === 'count') where = 'in WAF, counted only: the mode is count';
  lines.push(`${check.ip} is blocked (${where}):`);
  for (const b of check.blocks) lines.push(`  - ${explainBlock(b, check.ip, config, nowMs)}`);
  if (check.guardedBy !== null) {
    lines.push(
      `It is also guarded by ${check.guardedBy}: the reconciler keeps guarded addresses out of WAF.`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The text form of `history`: every event of the keys covering an address, oldest first. */
export function renderHistory(h: HistoryResult): string {
  if (h.events.length === 0) return `No blocks or unblocks recorded for ${h.ip}.\n`;
  return `${table(
    ['at', 'event', 'key', 'rule', 'by', 'reason'],
    h.events.map((e) => [e.at, e.kind, e.key, e.rule ?? '', e.by ?? '', e.reason ?? '']),
  )}\n`;
}

function ruleFilters(r: RuleView): string {
  const parts: string[] = [];
  if (r.method !== undefined) parts.push(`method ${r.method.join(',')}`);
  if (r.path !== undefined) parts.push(`path ${r.path}*`);
  if (r.host !== undefined) parts.push(`host ${r.host}`);
  if (r.status !== undefined) parts.push(`status ${r.status.join(',')}`);
  return parts.length === 0 ? 'all requests' : parts.join('; ');
}

function fill(size: number, capacity: number): string {
  if (capacity <= 0) return '-';
  const percent = (100 * size) / capacity;
  return size > 0 && percent < 1 ? '<1%' : `${Math.round(percent)}%`;
}

/** The text form of `status`: mode, reconciler, lag, rules and IP sets. */
export function renderStatus(s: StatusResult): string {
  const lines: string[] = [];
  const override =
    s.override === null
      ? ' (from the config)'
      : ` (set by ${s.override.by ?? 'unknown'} at ${s.override.at}; resume returns to the config's mode)`;
  lines.push(`mode            ${s.mode}${override}`);
  lines.push(`last reconcile  ${s.lastReconcile ?? 'never'}`);
  lines.push(
    `lag             ${s.lagSeconds === null ? 'no logs processed yet' : `${span(s.lagSeconds)} behind the newest log minute`}`,
  );
  lines.push('', 'Rules');
  lines.push(
    table(
      ['name', 'threshold', 'window', 'matches', 'prefix v4/v6', 'duration'],
      s.rules.map((r) => [
        r.name,
        r.threshold,
        r.window,
        ruleFilters(r),
        `/${r.ipv4Prefix} /${r.ipv6Prefix}`,
        r.duration ?? 'default',
      ]),
    ),
  );
  lines.push('', 'IP sets');
  lines.push(
    s.ipSets.length === 0
      ? 'not read yet: no reconcile has read WAF'
      : table(
          ['name', 'version', 'size', 'capacity', 'fill'],
          s.ipSets.map((i) => [i.name, i.version, i.size, i.capacity, fill(i.size, i.capacity)]),
        ),
  );
  return `${lines.join('\n')}\n`;
}
