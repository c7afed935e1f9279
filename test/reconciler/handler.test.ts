import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../lambda/shared/contract';
import { LOCAL_CREDENTIALS, type LocalCloud, startLocalCloud } from '../../local/cloud';
import { addressesOf, newWorld, putBlocks, ruleBlock } from './env';

let cloud: LocalCloud;
const saved = { ...process.env };

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

afterEach(() => {
  process.env = { ...saved };
  vi.unstubAllGlobals();
  vi.resetModules();
});

describe('reconciler handler', () => {
  it('fails at init naming a missing environment variable', async () => {
    delete process.env[ENV.tableName];
    await expect(import('../../lambda/reconciler/handler')).rejects.toThrow(ENV.tableName);
  });

  it('fails at init naming a config that does not parse', async () => {
    process.env[ENV.tableName] = 'edgeban';
    process.env[ENV.config] = '{"mode":"loud"}';
    await expect(import('../../lambda/reconciler/handler')).rejects.toThrow(
      new RegExp(`${ENV.config}: .*mode`),
    );
  });

  it('runs one reconcile from its environment, whatever the event', async () => {
    const w = await newWorld(cloud);
    // The published CloudFront ranges are out of reach here: the shipped snapshot is used.
    vi.stubGlobal('fetch', () => Promise.reject(new Error('no network in tests')));
    Object.assign(process.env, {
      [ENV.tableName]: w.tableName,
      [ENV.config]: JSON.stringify({ rules: [{ name: 'flood', threshold: 100, window: '5m' }] }),
      [ENV.ipSets]: JSON.stringify(
        w.ipSets.map(({ name, id, version }) => ({ name, id, version })),
      ),
      [ENV.wafScope]: 'CLOUDFRONT',
      [ENV.wafRegion]: 'us-east-1',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: cloud.endpoints.dynamodb,
      AWS_ENDPOINT_URL_WAFV2: cloud.endpoints.wafv2,
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
    });
    await putBlocks(w, [ruleBlock({ ...w, clock: Date.now() }, '192.0.2.7')]);
    const { handler } = await import('../../lambda/reconciler/handler');
    await handler();
    expect(addressesOf(w, 0)).toEqual(['192.0.2.7/32']);
  });
});
