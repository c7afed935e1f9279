/**
 * The read-only function's work: the widget for one event (its page and
 * filter), with a fresh token in each action button; or the widget's
 * documentation when the console asks with `describe`.
 */
import type { OperatorDeps } from '../state/operator';
import { WIDGET_DOCS } from './describe';
import type { WidgetEvent } from './event';
import { loadView } from './model';
import { renderWidget } from './render';
import { mintToken } from './token';

/** What the read-only function works with. */
export interface ViewDeps {
  readonly operator: OperatorDeps;
  /**
   * The key tokens are minted with (the acting function verifies with the
   * same); null when it could not be read: the widget then shows no action
   * buttons, and says why.
   */
  readonly tokenKey: Uint8Array | null;
  /** This function's ARN: paging and the filter call it again. */
  readonly viewEndpoint: string;
  /** The acting function's ARN: Unblock and Block call it. */
  readonly actEndpoint: string;
}

/** The widget's HTML for an event, or its Markdown documentation for `describe`. */
export async function view(deps: ViewDeps, ev: WidgetEvent): Promise<string> {
  if (ev.describe) return WIDGET_DOCS;
  const loaded = await loadView(deps.operator, ev);
  const { dashboardName: dashboard, widgetId: widget } = ev.context;
  const key = deps.tokenKey;
  return renderWidget({
    view: loaded,
    context: ev.context,
    viewEndpoint: deps.viewEndpoint,
    actEndpoint: deps.actEndpoint,
    mint:
      key === null
        ? null
        : (action, target) => mintToken(key, { action, target, dashboard, widget }, loaded.nowMs),
  });
}
