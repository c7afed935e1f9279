import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { KinesisStreamEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../lambda/core/config';
import { realtimeFields } from '../../lambda/core/formats/realtime';
import { ENV } from '../../lambda/shared/contract';
import { ensureTable } from '../../lambda/state/table';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { realtimeRecords } from '../../local/realtime-records';

const saved = { ...process.env };
const sqs = mockClient(SQSClient);
let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud();
  await ensureTable(cloud.clients().dynamodb, 'rt-handler');
});
afterAll(async () => {
  await cloud.stop();
});
afterEach(() => {
  process.env = { ...saved };
  vi.unstubAllGlobals();
  vi.resetModules();
  sqs.reset();
});

const RAW = {
  rules: [{ name: 'flood', threshold: 20, window: '5m' }],
  realtime: { distributionIds: ['E2QWRUHAPOMQZL'] },
};

function setEnv(values: Record<string, string>): void {
  for (const name of Object.values(ENV)) delete process.env[name];
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    ...values,
  });
}

function event(ip: string, n: number): KinesisStreamEvent {
  const now = Date.now();
  const data = realtimeRecords(
    Array.from({ length: n }, (_, i) => ({ ip, at: now - 1000 + i })),
    realtimeFields(parseConfig(RAW)),
    ip,
  );
  return {
    Records: data.map((d, i) => {
      const sequence = String(49_000_000_000n + BigInt(i));
      return {
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: 'p',
          sequenceNumber: sequence,
          data: Buffer.from(d).toString('base64'),
          approximateArrivalTimestamp: now / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `shardId-${ip.replace(/\D/g, '').padStart(12, '0')}:${sequence}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::123456789012:role/r',
        awsRegion: 'us-east-1',
        eventSourceARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/edgeban',
      };
    }),
  };
}

describe('real-time handler', () => {
  it('fails at init naming the missing variable', async () => {
    setEnv({ [ENV.config]: '{}', [ENV.reconcilerQueueUrl]: 'https://sqs.example/q' });
    await expect(import('../../lambda/realtime/handler')).rejects.toThrow(
      `environment variable ${ENV.tableName} is not set`,
    );
  });

  it('tells the reconciler at once when a batch blocks, and not when it changes nothing', async () => {
    setEnv({
      [ENV.tableName]: 'rt-handler',
      [ENV.config]: JSON.stringify(RAW),
      [ENV.reconcilerQueueUrl]: 'https://sqs.example/q',
      AWS_ENDPOINT_URL_DYNAMODB: cloud.endpoints.dynamodb,
    });
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => ({ ok: false, status: 503, json: async () => ({}) })),
    );
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    sqs.on(SendMessageCommand).resolves({});
    const { handler } = await import('../../lambda/realtime/handler');
    expect(await handler(event('192.0.2.7', 21))).toEqual({ batchItemFailures: [] });
    const sent = sqs.commandCalls(SendMessageCommand);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.args[0].input.QueueUrl).toBe('https://sqs.example/q');
    expect(JSON.parse(sent[0]!.args[0].input.MessageBody ?? '{}')).toMatchObject({
      source: 'realtime',
    });
    // The same batch again (a redelivery): committed already, nothing changes, no message.
    expect(await handler(event('192.0.2.7', 21))).toEqual({ batchItemFailures: [] });
    expect(await handler(event('192.0.2.8', 5))).toEqual({ batchItemFailures: [] });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(1);
  });
});
