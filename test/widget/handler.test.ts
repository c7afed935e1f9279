import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import { guardFor } from '../../lambda/core/guard';
import { ENV } from '../../lambda/shared/contract';
import { manualBlock } from '../../lambda/state/operator';
import { ensureTable } from '../../lambda/state/table';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { ACT_ARN, VIEW_ARN, widgetEvent } from './env';

const saved = { ...process.env };
const SECRET = 'Edgeban-edgeban-widget-key';
const KEY_VALUE = 'k'.repeat(64);
const QUEUE = 'https://sqs.us-east-1.amazonaws.com/123456789012/reconciler';
let cloud: LocalCloud;
const TABLE = 'edgeban-widget-handler';

beforeAll(async () => {
  cloud = await startLocalCloud();
  const { dynamodb } = cloud.clients();
  await ensureTable(dynamodb, TABLE);
  const ddb = DynamoDBDocumentClient.from(dynamodb);
  const config = parseConfig({});
  await manualBlock(
    { ddb, tableName: TABLE, config, guard: guardFor([]), now: Date.now },
    '192.0.2.7',
    { by: 'alice', reason: 'scanner' },
  );
});

afterAll(async () => {
  await cloud?.stop();
});

afterEach(() => {
  process.env = { ...saved };
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
  vi.resetModules();
});

function setEnv(values: Record<string, string>): void {
  for (const name of Object.values(ENV)) delete process.env[name];
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: cloud.endpoints.dynamodb,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    [ENV.tableName]: TABLE,
    [ENV.config]: '{}',
    [ENV.widgetKeySecret]: SECRET,
    [ENV.widgetActArn]: ACT_ARN,
    [ENV.reconcilerQueueUrl]: QUEUE,
    ...values,
  });
  // CloudFront's ranges: the source answers that it is unavailable (no network in tests).
  vi.stubGlobal(
    'fetch',
    vi.fn(async () => ({ ok: false, status: 503, json: async () => ({}) })),
  );
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
}

function mocks() {
  const ssm = mockClient(SSMClient);
  ssm
    .on(GetParameterCommand, {
      Name: `/aws/reference/secretsmanager/${SECRET}`,
      WithDecryption: true,
    })
    .resolves({ Parameter: { Value: KEY_VALUE } });
  const sqs = mockClient(SQSClient);
  sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
  return { ssm, sqs };
}

describe('the widget handlers', () => {
  it('fail at init naming a missing variable', async () => {
    setEnv({ [ENV.widgetKeySecret]: '' });
    await expect(import('../../lambda/widget/view-handler')).rejects.toThrow(
      `environment variable ${ENV.widgetKeySecret} is not set`,
    );
    vi.resetModules();
    setEnv({ [ENV.reconcilerQueueUrl]: '' });
    await expect(import('../../lambda/widget/act-handler')).rejects.toThrow(
      `environment variable ${ENV.reconcilerQueueUrl} is not set`,
    );
  });

  it('render with the key from Parameter Store, and act on the token they minted, waking the reconciler', async () => {
    setEnv({});
    const { ssm, sqs } = mocks();
    try {
      const viewer = await import('../../lambda/widget/view-handler');
      const html = await viewer.handler(widgetEvent(), { invokedFunctionArn: VIEW_ARN });
      expect(html).toContain('<tr data-key="192.0.2.7" data-source="manual"');
      expect(
        await viewer.handler(widgetEvent({ describe: true }), { invokedFunctionArn: VIEW_ARN }),
      ).toMatch(/^## edgeban: blocks/);
      // The key is read once per container.
      expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(1);
      const body = /\{&quot;action&quot;:&quot;unblock&quot;[^<]+\}/.exec(html)?.[0] ?? '';
      const params = JSON.parse(body.replace(/&quot;/g, '"')) as Record<string, unknown>;
      const actor = await import('../../lambda/widget/act-handler');
      const done = await actor.handler(widgetEvent({ params }));
      expect(done).toContain('data-outcome="done"');
      expect(done).toContain('Unblocked 192.0.2.7');
      expect(done).toContain('The reconciler was woken to apply it to WAF now.');
      const sent = sqs.commandCalls(SendMessageCommand);
      expect(sent).toHaveLength(1);
      expect(sent[0]?.args[0].input.QueueUrl).toBe(QUEUE);
      expect(JSON.parse(sent[0]?.args[0].input.MessageBody ?? '{}')).toMatchObject({
        source: 'widget',
      });
      // Replayed, the same button refuses: nothing is blocked any more.
      const again = await actor.handler(widgetEvent({ params }));
      expect(again).toContain('Refused: 192.0.2.7 is not blocked.');
    } finally {
      ssm.restore();
      sqs.restore();
    }
  });

  it('show the table without action buttons when the key cannot be read', async () => {
    setEnv({});
    const ssm = mockClient(SSMClient);
    ssm.on(GetParameterCommand).rejects(new Error('AccessDeniedException: not authorized'));
    const { dynamodb } = cloud.clients();
    await manualBlock(
      {
        ddb: DynamoDBDocumentClient.from(dynamodb),
        tableName: TABLE,
        config: parseConfig({}),
        guard: guardFor([]),
        now: Date.now,
      },
      '192.0.2.8',
      { by: 'bob' },
    );
    try {
      const viewer = await import('../../lambda/widget/view-handler');
      const html = await viewer.handler(widgetEvent(), { invokedFunctionArn: VIEW_ARN });
      expect(html).toContain('<tr data-key="192.0.2.8" data-source="manual"');
      expect(html).not.toContain('cwdb-action action="call" endpoint="' + ACT_ARN);
      expect(html).toContain('Unblock and Block are unavailable: the widget key could not be read');
      expect(
        await viewer.handler(widgetEvent({ describe: true }), { invokedFunctionArn: VIEW_ARN }),
      ).toMatch(/^## edgeban: blocks/);
    } finally {
      ssm.restore();
    }
  });

  it('show a state read failure as one line in the widget', async () => {
    setEnv({ [ENV.tableName]: 'no-such-table' });
    const { ssm, sqs } = mocks();
    try {
      const viewer = await import('../../lambda/widget/view-handler');
      const html = await viewer.handler(widgetEvent(), { invokedFunctionArn: VIEW_ARN });
      expect(html).toMatch(/^<p>edgeban widget: could not read the state: .+<\/p>$/);
    } finally {
      ssm.restore();
      sqs.restore();
    }
  });
});
