import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../lambda/core/config';

describe('parseConfig realtime', () => {
  it('defaults to no real-time distributions, sampling 100, on-demand', () => {
    expect(parseConfig({}).realtime).toEqual({
      distributionIds: [],
      samplingRate: 100,
      replaceExistingConfig: false,
    });
  });

  it('reads distributions, provisioned shards and the replace flag', () => {
    const c = parseConfig({
      realtime: {
        distributionIds: ['E2QWRUHAPOMQZL'],
        samplingRate: 100,
        shards: 2,
        replaceExistingConfig: true,
      },
    });
    expect(c.realtime).toEqual({
      distributionIds: ['E2QWRUHAPOMQZL'],
      samplingRate: 100,
      shards: 2,
      replaceExistingConfig: true,
    });
  });

  it('refuses a sampling rate other than 100 with one line', () => {
    expect(() => parseConfig({ realtime: { samplingRate: 50 } })).toThrow(
      'realtime.samplingRate must be 100 (exact counts need every request), got 50',
    );
    expect(() => parseConfig({ realtime: { samplingRate: '100' } })).toThrow(ConfigError);
  });

  it('refuses a distribution counted from both sources', () => {
    expect(() =>
      parseConfig({
        logs: { enableOn: ['E2QWRUHAPOMQZL'] },
        realtime: { distributionIds: ['E2QWRUHAPOMQZL'] },
      }),
    ).toThrow(
      'realtime.distributionIds[0] must not also be in logs.enableOn (a distribution is counted from one source), got "E2QWRUHAPOMQZL"',
    );
  });

  it('refuses bad ids, repeats, shards, flags, unknown keys and REGIONAL scope', () => {
    expect(() => parseConfig({ realtime: { distributionIds: ['d111.cloudfront.net'] } })).toThrow(
      /^realtime.distributionIds\[0\] must be a CloudFront distribution id/,
    );
    expect(() =>
      parseConfig({ realtime: { distributionIds: ['E2QWRUHAPOMQZL', 'E2QWRUHAPOMQZL'] } }),
    ).toThrow(/must not repeat/);
    expect(() => parseConfig({ realtime: { shards: 0 } })).toThrow(
      'realtime.shards must be an integer from 1 to 500, got 0',
    );
    expect(() => parseConfig({ realtime: { replaceExistingConfig: 'yes' } })).toThrow(
      'realtime.replaceExistingConfig must be true or false, got "yes"',
    );
    expect(() => parseConfig({ realtime: { shard: 2 } })).toThrow(
      'unknown field realtime.shard (did you mean shards?)',
    );
    expect(() =>
      parseConfig({ scope: 'REGIONAL', realtime: { distributionIds: ['E2QWRUHAPOMQZL'] } }),
    ).toThrow(/^realtime.distributionIds must be empty when scope is REGIONAL/);
  });
});
