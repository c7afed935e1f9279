/**
 * The `DistributionRealtimeLogs` custom resource (`lambda/attach/realtime-logs.ts`)
 * against a mocked CloudFront client: every cache behavior gets edgeban's
 * real-time log config, a foreign one is refused unless told, the previous
 * ones come back on delete.
 */
import {
  CloudFrontClient,
  type DistributionConfig,
  GetDistributionConfigCommand,
  NoSuchDistribution,
  PreconditionFailed,
  UpdateDistributionCommand,
} from '@aws-sdk/client-cloudfront';
import { S3Client } from '@aws-sdk/client-s3';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  ForeignRealtimeConfigError,
  parseRealtimePhysicalId,
  realtimePhysicalId,
} from '../../lambda/attach/realtime-logs';
import { type AttachDeps, onEvent } from '../../lambda/attach/resources';
import { customResourceEvent } from '../fixtures/cfn-event';

const DIST = 'E2QWRUHEXAMPLE';
const OURS = 'arn:aws:cloudfront::123456789012:realtime-log-config/edgeban-realtime';
const OURS_NEXT = 'arn:aws:cloudfront::123456789012:realtime-log-config/edgeban-realtime-2';
const THEIRS = 'arn:aws:cloudfront::123456789012:realtime-log-config/analytics';

const cloudfront = mockClient(CloudFrontClient);

function deps(): AttachDeps {
  return {
    cloudfront: new CloudFrontClient({ region: 'us-east-1' }),
    wafv2: new WAFV2Client({ region: 'us-east-1' }),
    s3: new S3Client({ region: 'us-east-1' }),
    sleep: async () => {},
    random: () => 0.5,
  };
}

function distribution(
  defaultArn?: string,
  paths: Record<string, string | undefined> = {},
): DistributionConfig {
  const items = Object.entries(paths).map(([PathPattern, arn]) => ({
    PathPattern,
    TargetOriginId: 'origin',
    ViewerProtocolPolicy: 'redirect-to-https' as const,
    ...(arn === undefined ? {} : { RealtimeLogConfigArn: arn }),
  }));
  return {
    CallerReference: 'ref',
    Comment: 'site',
    Enabled: true,
    Origins: { Quantity: 0, Items: [] },
    DefaultCacheBehavior: {
      TargetOriginId: 'origin',
      ViewerProtocolPolicy: 'redirect-to-https',
      ...(defaultArn === undefined ? {} : { RealtimeLogConfigArn: defaultArn }),
    },
    CacheBehaviors: { Quantity: items.length, Items: items },
  };
}

function event(
  requestType: 'Create' | 'Update' | 'Delete',
  props: Record<string, unknown>,
  extra: { physicalId?: string; old?: Record<string, unknown> } = {},
): CloudFormationCustomResourceEvent {
  return customResourceEvent(requestType, props, {
    resourceType: 'Custom::EdgebanDistributionRealtimeLogs',
    logicalId: 'RealtimeE2QWRUHEXAMPLE',
    ...extra,
  });
}

const props = (arn = OURS, replace: boolean | string = false) => ({
  Kind: 'DistributionRealtimeLogs',
  DistributionId: DIST,
  RealtimeLogConfigArn: arn,
  ReplaceExisting: replace,
});

function arnsSent(): { default: string | undefined; paths: (string | undefined)[] }[] {
  return cloudfront.commandCalls(UpdateDistributionCommand).map((c) => {
    const config = c.args[0].input.DistributionConfig!;
    return {
      default: config.DefaultCacheBehavior?.RealtimeLogConfigArn,
      paths: (config.CacheBehaviors?.Items ?? []).map((b) => b.RealtimeLogConfigArn),
    };
  });
}

beforeEach(() => {
  cloudfront.reset();
  cloudfront.on(UpdateDistributionCommand).resolves({});
});

describe('DistributionRealtimeLogs', () => {
  it('attaches the config to the default and every path behavior, with the ETag read', async () => {
    cloudfront.on(GetDistributionConfigCommand).resolves({
      DistributionConfig: distribution(undefined, { '/api/*': undefined, '/img/*': undefined }),
      ETag: 'E1',
    });
    const res = await onEvent(event('Create', props()), deps());
    expect(arnsSent()).toEqual([{ default: OURS, paths: [OURS, OURS] }]);
    expect(cloudfront.commandCalls(UpdateDistributionCommand)[0]!.args[0].input.IfMatch).toBe('E1');
    expect(parseRealtimePhysicalId(res.PhysicalResourceId)).toEqual({
      distributionId: DIST,
      previous: { d: '', p: {} },
    });
  });

  it('refuses a foreign real-time config with one line naming the behavior', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distribution(undefined, { '/api/*': THEIRS }), ETag: 'E1' });
    await expect(onEvent(event('Create', props()), deps())).rejects.toThrow(
      ForeignRealtimeConfigError,
    );
    await expect(onEvent(event('Create', props()), deps())).rejects.toThrow(
      `distribution ${DIST} cache behavior /api/* has real-time log config ${THEIRS} that edgeban did not set; set realtime.replaceExistingConfig to true to replace it`,
    );
    expect(cloudfront.commandCalls(UpdateDistributionCommand)).toHaveLength(0);
  });

  it('replaces a foreign config when told, and puts it back on delete', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolvesOnce({
        DistributionConfig: distribution(THEIRS, { '/api/*': THEIRS, '/img/*': undefined }),
        ETag: 'E1',
      })
      .resolves({
        DistributionConfig: distribution(OURS, { '/api/*': OURS, '/img/*': OURS }),
        ETag: 'E2',
      });
    const created = await onEvent(event('Create', props(OURS, 'true')), deps());
    expect(parseRealtimePhysicalId(created.PhysicalResourceId)!.previous).toEqual({
      d: THEIRS,
      p: { '/img/*': '' },
    });
    await onEvent(event('Delete', props(), { physicalId: created.PhysicalResourceId }), deps());
    expect(arnsSent()).toEqual([
      { default: OURS, paths: [OURS, OURS] },
      { default: THEIRS, paths: [THEIRS, undefined] },
    ]);
  });

  it('leaves behaviors someone changed since alone on delete', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distribution(THEIRS, { '/api/*': OURS }), ETag: 'E2' });
    const id = realtimePhysicalId(DIST, { d: '', p: {} });
    await onEvent(event('Delete', props(), { physicalId: id }), deps());
    expect(arnsSent()).toEqual([{ default: THEIRS, paths: [undefined] }]);
  });

  it('keeps the pre-edgeban configs across an update that renames our config', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distribution(OURS, { '/api/*': OURS }), ETag: 'E3' });
    const id = realtimePhysicalId(DIST, { d: THEIRS, p: {} });
    const res = await onEvent(
      event('Update', props(OURS_NEXT), { physicalId: id, old: props(OURS) }),
      deps(),
    );
    expect(res.PhysicalResourceId).toBe(id);
    expect(arnsSent()).toEqual([{ default: OURS_NEXT, paths: [OURS_NEXT] }]);
  });

  it('retries a lost ETag race on a fresh read', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distribution(), ETag: 'E1' });
    cloudfront
      .on(UpdateDistributionCommand)
      .rejectsOnce(new PreconditionFailed({ message: 'etag', $metadata: {} }))
      .resolves({});
    await onEvent(event('Create', props()), deps());
    expect(cloudfront.commandCalls(UpdateDistributionCommand)).toHaveLength(2);
  });

  it('does nothing on delete of a distribution that is gone, or of a create that failed', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .rejects(new NoSuchDistribution({ message: 'gone', $metadata: {} }));
    const id = realtimePhysicalId(DIST, { d: '', p: {} });
    await expect(onEvent(event('Delete', props(), { physicalId: id }), deps())).resolves.toEqual({
      PhysicalResourceId: id,
    });
    await expect(
      onEvent(event('Delete', props(), { physicalId: 'failed-create' }), deps()),
    ).resolves.toEqual({
      PhysicalResourceId: 'failed-create',
    });
    expect(cloudfront.commandCalls(UpdateDistributionCommand)).toHaveLength(0);
  });

  it('refuses to remember more previous configs than a physical id holds', () => {
    const p: Record<string, string> = {};
    for (let i = 0; i < 20; i++) p[`/path${i}/*`] = `${THEIRS}-${i}`;
    expect(() => realtimePhysicalId(DIST, { d: THEIRS, p })).toThrow(
      /too many different real-time log configs/,
    );
  });
});
