import { afterEach, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../lambda/shared/contract';
import { sqsEvent } from './env';

const saved = { ...process.env };

afterEach(() => {
  process.env = { ...saved };
  vi.unstubAllGlobals();
  vi.resetModules();
});

function setEnv(values: Record<string, string>): void {
  for (const name of Object.values(ENV)) delete process.env[name];
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    ...values,
  });
}

describe('ingest handler', () => {
  it('fails at init naming the missing variable', async () => {
    setEnv({ [ENV.config]: '{}', [ENV.reconcilerQueueUrl]: 'https://sqs.example/q' });
    await expect(import('../../lambda/ingest/handler')).rejects.toThrow(
      `environment variable ${ENV.tableName} is not set`,
    );
  });

  it('fails at init on an invalid config, naming the variable', async () => {
    setEnv({
      [ENV.tableName]: 't',
      [ENV.config]: '{"rules":[{"name":"x","threshold":0,"window":"5m"}]}',
      [ENV.reconcilerQueueUrl]: 'https://sqs.example/q',
    });
    await expect(import('../../lambda/ingest/handler')).rejects.toThrow(
      new RegExp(`^environment variable ${ENV.config}: .*threshold`),
    );
  });

  it('reports a malformed message and accepts the S3 test event', async () => {
    setEnv({
      [ENV.tableName]: 't',
      [ENV.config]: '{}',
      [ENV.reconcilerQueueUrl]: 'https://sqs.example/q',
    });
    // The CloudFront ranges source is mocked: it answers that it is unavailable.
    const fetch = vi.fn(async () => ({ ok: false, status: 503, json: async () => ({}) }));
    vi.stubGlobal('fetch', fetch);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const { handler } = await import('../../lambda/ingest/handler');
    const res = await handler(
      sqsEvent([JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent' }), 'not json']),
    );
    expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'msg-1' }] });
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});
