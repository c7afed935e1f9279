/**
 * What the read-only widget shows, read from the state table through the
 * operator commands (`list`, `check`, `status`: the CLI's own logic) and the
 * event log.
 */
import {
  type BlockView,
  type CheckResult,
  checkAddress,
  history,
  listBlocks,
  type OperatorDeps,
  OperatorInputError,
  type StatusResult,
  status,
} from '../state/operator';
import type { WidgetEvent } from './event';
import { field, pageParam } from './event';
import { type LoggedEvent, readRecentEvents } from './events';

/** Rows on one page of the table. */
export const PAGE_SIZE = 50;

/** Recent events shown under the table. */
export const RECENT_EVENTS = 20;

/** The filter the viewer typed, and what `check` said of it. */
export interface FilterView {
  readonly text: string;
  /** Null when the text is not an address or CIDR. */
  readonly check: CheckResult | null;
  /** Why the text was not understood. */
  readonly error: string | null;
}

/** Everything one render shows. */
export interface WidgetView {
  /** The pipeline clock at the read, epoch milliseconds. */
  readonly nowMs: number;
  readonly status: StatusResult;
  /** This page's rows. */
  readonly rows: readonly BlockView[];
  /** Active blocks in the table (after the filter). */
  readonly total: number;
  /** Distinct keys among them. */
  readonly keys: number;
  readonly page: number;
  readonly pages: number;
  readonly filter: FilterView | null;
  /** Newest first: of every key, or (with a filter) of the address and the ranges around it. */
  readonly events: readonly LoggedEvent[];
  /** The address whose events are shown, or null for every key's. */
  readonly eventsOf: string | null;
  /** Rule thresholds by name (peak is shown against them). */
  readonly thresholds: ReadonlyMap<string, number>;
}

async function filtered(
  deps: OperatorDeps,
  text: string,
): Promise<{ blocks: BlockView[]; filter: FilterView; events: LoggedEvent[] | null }> {
  try {
    const [check, past] = await Promise.all([checkAddress(deps, text), history(deps, text)]);
    // `history`'s events, oldest first, of the address and the ranges around it: newest first here.
    const events = past.events
      .slice(-RECENT_EVENTS)
      .reverse()
      .map((e) => ({ ...e, at: Date.parse(e.at) }));
    return { blocks: check.blocks, filter: { text, check, error: null }, events };
  } catch (err) {
    if (err instanceof OperatorInputError) {
      return { blocks: [], filter: { text, check: null, error: err.message }, events: null };
    }
    throw err;
  }
}

/** Reads what the widget shows for one event (its page and filter). */
export async function loadView(deps: OperatorDeps, ev: WidgetEvent): Promise<WidgetView> {
  const nowMs = deps.now();
  // `*` is the "Show all" button's way to clear a filter still typed in the form.
  const typed = field(ev, 'filter');
  const filterText = typed === '*' ? '' : typed;
  const [listed, st, events] = await Promise.all([
    filterText === ''
      ? listBlocks(deps).then((l) => ({ blocks: l.blocks, filter: null, events: null }))
      : filtered(deps, filterText),
    status(deps),
    readRecentEvents(deps.ddb, deps.tableName, nowMs, { limit: RECENT_EVENTS }),
  ]);
  const total = listed.blocks.length;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const page = Math.min(pageParam(ev), pages);
  return {
    nowMs,
    status: st,
    rows: listed.blocks.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE),
    total,
    keys: new Set(listed.blocks.map((b) => b.key)).size,
    page,
    pages,
    filter: listed.filter,
    events: listed.events ?? events,
    eventsOf: listed.events === null ? null : (listed.filter?.check?.ip ?? null),
    thresholds: new Map(deps.config.rules.map((r) => [r.name, r.threshold])),
  };
}
