/**
 * The console widget's acting function: Unblock and Block. Who may act is
 * who may invoke it (`lambda:InvokeFunction`, with the viewer's own
 * credentials); an action needs a token the read-only function minted
 * (token.ts). It writes the state table and wakes the reconciler with the
 * message ingest sends; the reconciler, the single writer, changes WAF.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ENV } from '../shared/contract';
import { act } from './act';
import { parseWidgetEvent } from './event';
import { env, operatorFromEnv, tokenKeyLoader } from './runtime';

const logger = new Logger({ serviceName: 'edgeban-widget-act' });
const operator = operatorFromEnv();
const queueUrl = env(ENV.reconcilerQueueUrl);
const tokenKey = tokenKeyLoader();
const sqs = new SQSClient({});

async function nudge(changedAt: number): Promise<string> {
  try {
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({ source: 'widget', at: new Date(changedAt).toISOString() }),
      }),
    );
    return 'The reconciler was woken to apply it to WAF now.';
  } catch (err) {
    logger.warn('could not wake the reconciler', { error: String(err) });
    return 'The reconciler applies it to WAF on its next run, within a minute.';
  }
}

/** Runs one action; the pop-up shows the outcome. */
export async function handler(event: unknown): Promise<string> {
  const ev = parseWidgetEvent(event);
  const result = await act({ operator, tokenKey: await tokenKey(), apply: nudge }, ev);
  // Who pressed is in CloudTrail's Lambda data events; this log says what was done.
  logger.info('widget action', {
    action: String(ev.params.action),
    outcome: result.outcome,
    message: result.message,
    dashboard: ev.context.dashboardName,
  });
  return result.html;
}
