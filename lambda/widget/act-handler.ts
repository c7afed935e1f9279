/**
 * The console widget's acting function: Unblock and Block. Who may act is
 * who may invoke it (`lambda:InvokeFunction`, with the viewer's own
 * credentials); an action needs a token the read-only function minted
 * (token.ts). It writes the state table and wakes the reconciler with the
 * message ingest sends; the reconciler, the single writer, changes WAF.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ENV } from '../shared/contract';
import { requireEnv, wakeReconciler } from '../shared/runtime';
import { act } from './act';
import { parseWidgetEvent } from './event';
import { operatorFromEnv, tokenKeyLoader } from './runtime';

const logger = new Logger({ serviceName: 'edgeban-widget-act' });
const operator = operatorFromEnv((err) =>
  logger.warn('CloudFront ranges not refreshed; using the cached or shipped ones', {
    error: String(err),
  }),
);
const queueUrl = requireEnv(ENV.reconcilerQueueUrl);
const tokenKey = tokenKeyLoader();
const sqs = new SQSClient({});

async function nudge(): Promise<string> {
  let woken = true;
  await wakeReconciler(sqs, queueUrl, 'widget', (err) => {
    woken = false;
    logger.warn('could not wake the reconciler', { error: String(err) });
  });
  return woken
    ? 'The reconciler was woken to apply it to WAF now.'
    : 'The reconciler applies it to WAF on its next run, within a minute.';
}

/** Runs one action; the pop-up shows the outcome. */
export async function handler(event: unknown): Promise<string> {
  const ev = parseWidgetEvent(event);
  const result = await act(
    { operator: await operator(), tokenKey: await tokenKey(), apply: nudge },
    ev,
  );
  // Who pressed is in CloudTrail's Lambda data events; this log says what was done.
  logger.info('widget action', {
    action: String(ev.params.action),
    outcome: result.outcome,
    message: result.message,
    dashboard: ev.context.dashboardName,
  });
  return result.html;
}
