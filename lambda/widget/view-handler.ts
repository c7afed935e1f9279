/**
 * The console widget's read-only function. CloudWatch invokes it with the
 * viewer's own credentials, so who may look is who may invoke it
 * (`lambda:InvokeFunction`); its role may only read the state table and the
 * token key. It answers every call with HTML (or Markdown for `describe`).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ENV } from '../shared/contract';
import { requireEnv } from '../shared/runtime';
import { WIDGET_DOCS } from './describe';
import { parseWidgetEvent } from './event';
import { esc } from './html';
import { operatorFromEnv, tokenKeyLoader } from './runtime';
import { view } from './view';

const logger = new Logger({ serviceName: 'edgeban-widget' });
const operator = operatorFromEnv((err) =>
  logger.warn('CloudFront ranges not refreshed; using the cached or shipped ones', {
    error: String(err),
  }),
);
const actEndpoint = requireEnv(ENV.widgetActArn);
const tokenKey = tokenKeyLoader();

/** Renders the widget; a failure shows as one readable line in the widget. */
export async function handler(
  event: unknown,
  context: { readonly invokedFunctionArn: string },
): Promise<string> {
  const ev = parseWidgetEvent(event);
  if (ev.describe) return WIDGET_DOCS;
  let key: Uint8Array | null = null;
  try {
    key = await tokenKey();
  } catch (err) {
    logger.error('widget key not read: showing the widget without actions', { error: String(err) });
  }
  try {
    return await view(
      {
        operator: await operator(),
        tokenKey: key,
        viewEndpoint: context.invokedFunctionArn,
        actEndpoint,
      },
      ev,
    );
  } catch (err) {
    logger.error('widget render failed', { error: String(err) });
    return `<p>edgeban widget: could not read the state: ${esc(err instanceof Error ? err.message : String(err))}</p>`;
  }
}
