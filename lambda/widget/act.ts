/**
 * The acting function's work: Unblock and Block from the widget, through
 * the operator commands (`unblock`, `block`: the state table, the CLI's
 * refusals) and then the reconciler, as the CLI does. An action runs only
 * with a token that the read-only function minted for it (token.ts).
 *
 * The console does not say who invoked the function, and `widgetContext`
 * carries no identity, so actions are recorded as by the console widget;
 * CloudTrail's Lambda data events name the caller.
 */
import { parseDuration } from '../core/duration';
import { manualBlock, type OperatorDeps, OperatorError, unblock } from '../state/operator';
import { field, type WidgetEvent } from './event';
import { esc } from './html';
import { WIDGET_CSS } from './style';
import { TokenError, verifyToken } from './token';

/** Who the state table records for an action taken in the widget. */
export const WIDGET_ACTOR = 'console widget';

/** Longest reason kept from the form. */
const MAX_REASON = 256;

/** What the acting function works with. */
export interface ActDeps {
  readonly operator: OperatorDeps;
  readonly tokenKey: Uint8Array;
  /**
   * Brings WAF to the state table (the reconciler), or asks for it.
   * @param changedAt epoch ms of the change
   * @returns one sentence on how the change reaches WAF
   */
  readonly apply: (changedAt: number) => Promise<string>;
}

/** The outcome of one action. */
export interface ActResult {
  /** `done`, `refused` (the CLI would exit 1 or 2), or `denied` (no valid token). */
  readonly outcome: 'done' | 'refused' | 'denied';
  /** One line for the log and the pop-up. */
  readonly message: string;
  /** The pop-up's HTML. */
  readonly html: string;
}

function page(
  ev: WidgetEvent,
  outcome: ActResult['outcome'],
  message: string,
  detail = '',
): ActResult {
  const cls = outcome === 'done' ? 'eb-ok' : outcome === 'denied' ? 'eb-error' : 'eb-warn';
  const html = `<div class="cwdb-no-default-styles"></div><style>${WIDGET_CSS}</style><div class="eb eb-${ev.context.theme}" data-outcome="${outcome}"><div class="${cls} eb-result">${esc(message)}</div>${detail}<p class="eb-note">Refresh the widget to see the table as it is now.</p></div>`;
  return { outcome, message, html };
}

function claim(ev: WidgetEvent, action: 'unblock' | 'block', target: string) {
  return {
    action,
    target,
    dashboard: ev.context.dashboardName,
    widget: ev.context.widgetId,
  } as const;
}

async function doUnblock(deps: ActDeps, ev: WidgetEvent, key: string): Promise<ActResult> {
  const dashboard = ev.context.dashboardName;
  const result = await unblock(deps.operator, key, {
    by: WIDGET_ACTOR,
    reason: dashboard === '' ? 'from the console widget' : `from dashboard ${dashboard}`,
  });
  const applied = await deps.apply(deps.operator.now());
  const rules = result.blocks.map((b) => b.rule ?? 'manual').join(', ');
  return page(ev, 'done', `Unblocked ${result.key} at ${result.at} (ended: ${rules}). ${applied}`);
}

async function doBlock(deps: ActDeps, ev: WidgetEvent): Promise<ActResult> {
  const target = field(ev, 'target');
  if (target === '') return page(ev, 'refused', 'Type an address or CIDR to block.');
  const durationText = field(ev, 'duration');
  let forSeconds: number | undefined;
  if (durationText !== '') {
    const s = parseDuration(durationText);
    if (s === null) {
      return page(
        ev,
        'refused',
        `The duration must be like 90s, 30m, 4h or 7d, got ${durationText}.`,
      );
    }
    forSeconds = s;
  }
  const reason = field(ev, 'reason').slice(0, MAX_REASON);
  const block = await manualBlock(deps.operator, target, {
    by: WIDGET_ACTOR,
    ...(forSeconds === undefined ? {} : { forSeconds }),
    ...(reason === '' ? {} : { reason }),
  });
  const applied = await deps.apply(deps.operator.now());
  return page(ev, 'done', `Blocked ${block.key} until ${block.blockedUntil}. ${applied}`);
}

/**
 * Runs the action an event asks for, if its token allows it.
 * Refusals (guarded, too wide, not blocked, a bad token) come back as
 * readable results, never as errors; state table or WAF failures throw.
 */
export async function act(deps: ActDeps, ev: WidgetEvent): Promise<ActResult> {
  const action = ev.params.action;
  const nowMs = deps.operator.now();
  try {
    if (action === 'unblock') {
      const key = typeof ev.params.key === 'string' ? ev.params.key.trim().slice(0, 64) : '';
      verifyToken(deps.tokenKey, ev.params.token, claim(ev, 'unblock', key), nowMs);
      return await doUnblock(deps, ev, key);
    }
    if (action === 'block') {
      verifyToken(deps.tokenKey, ev.params.token, claim(ev, 'block', '*'), nowMs);
      return await doBlock(deps, ev);
    }
    return page(ev, 'denied', 'Unknown action: use the buttons of the edgeban widget.');
  } catch (err) {
    if (err instanceof TokenError) return page(ev, 'denied', `Refused: ${err.message}.`);
    if (err instanceof OperatorError) {
      const text = err.message.replace(/^refused: /, '');
      return page(ev, 'refused', `Refused: ${text}.`);
    }
    throw err;
  }
}
