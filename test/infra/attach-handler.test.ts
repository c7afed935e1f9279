/**
 * The attachment custom resource handler (`lambda/attach`) against mocked
 * CloudFront and S3 clients: the read-modify-write with ETag retries, the
 * web ACL it refuses to replace, what it restores on delete.
 */
import {
  AssociateDistributionWebACLCommand,
  CloudFrontClient,
  DisassociateDistributionWebACLCommand,
  type DistributionConfig,
  GetDistributionConfigCommand,
  NoSuchDistribution,
  PreconditionFailed,
  UpdateDistributionCommand,
} from '@aws-sdk/client-cloudfront';
import {
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { GetWebACLCommand, WAFNonexistentItemException, WAFV2Client } from '@aws-sdk/client-wafv2';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  ConcurrentUpdateError,
  ForeignWebAclError,
  UnreadableWebAclError,
} from '../../lambda/attach/distribution';
import {
  type AttachDeps,
  loggingPhysicalId,
  onEvent,
  parsePhysicalId,
  webAclPhysicalId,
} from '../../lambda/attach/resources';
import { customResourceEvent } from '../fixtures/cfn-event';

const DIST = 'E2QWRUHEXAMPLE';
const OURS =
  'arn:aws:wafv2:us-east-1:123456789012:global/webacl/edgeban/11111111-1111-1111-1111-111111111111';
const OURS_NEXT =
  'arn:aws:wafv2:us-east-1:123456789012:global/webacl/edgeban/22222222-2222-2222-2222-222222222222';
const THEIRS =
  'arn:aws:wafv2:us-east-1:123456789012:global/webacl/theirs/33333333-3333-3333-3333-333333333333';
const BUCKET = 'edgeban-logs.s3.amazonaws.com';

const cloudfront = mockClient(CloudFrontClient);
const s3 = mockClient(S3Client);
const wafv2 = mockClient(WAFV2Client);

function deps(): AttachDeps {
  return {
    cloudfront: new CloudFrontClient({ region: 'us-east-1' }),
    wafv2: new WAFV2Client({ region: 'us-east-1' }),
    s3: new S3Client({ region: 'eu-west-1' }),
    sleep: async () => {},
    random: () => 0.5,
  };
}

/** A distribution config as GetDistributionConfig returns it. */
function distributionConfig(fields: Partial<DistributionConfig> = {}): DistributionConfig {
  return {
    CallerReference: 'ref',
    Comment: 'site',
    Enabled: true,
    Origins: { Quantity: 0, Items: [] },
    DefaultCacheBehavior: { TargetOriginId: 'origin', ViewerProtocolPolicy: 'redirect-to-https' },
    WebACLId: '',
    Logging: { Enabled: false, IncludeCookies: false, Bucket: '', Prefix: '' },
    ...fields,
  };
}

function event(
  requestType: 'Create' | 'Update' | 'Delete',
  props: Record<string, unknown>,
  extra: { physicalId?: string; old?: Record<string, unknown> } = {},
): CloudFormationCustomResourceEvent {
  return customResourceEvent(requestType, props, {
    resourceType: 'Custom::EdgebanDistributionWebAcl',
    logicalId: 'WafDistribution',
    stackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/EdgebanWaf/x',
    ...extra,
  });
}

const webAcl = (arn = OURS, replace: boolean | string = false) => ({
  Kind: 'DistributionWebAcl',
  DistributionId: DIST,
  WebAclArn: arn,
  ReplaceExisting: replace,
});

/** The configs UpdateDistribution was sent, in order. */
function updates(): { IfMatch: string | undefined; config: DistributionConfig }[] {
  return cloudfront.commandCalls(UpdateDistributionCommand).map((c) => ({
    IfMatch: c.args[0].input.IfMatch,
    config: c.args[0].input.DistributionConfig as DistributionConfig,
  }));
}

/** The AssociateDistributionWebACL calls, in order. */
function associations(): Record<string, unknown>[] {
  return cloudfront
    .commandCalls(AssociateDistributionWebACLCommand)
    .map((c) => ({ ...c.args[0].input }));
}

/** The DisassociateDistributionWebACL calls, in order. */
function disassociations(): Record<string, unknown>[] {
  return cloudfront
    .commandCalls(DisassociateDistributionWebACLCommand)
    .map((c) => ({ ...c.args[0].input }));
}

/** CloudFront's answer while a new web ACL has not reached it, or without wafv2:GetWebACL. */
function unreadable(): Error {
  return Object.assign(
    new Error('Unable to verify read permissions on Web ACL. Please retry the request.'),
    { name: 'InvalidWebACLId' },
  );
}

function preconditionFailed(): PreconditionFailed {
  return new PreconditionFailed({
    message: 'The request failed because it didn’t meet the preconditions',
    $metadata: {},
  });
}

beforeEach(() => {
  cloudfront.reset();
  s3.reset();
  wafv2.reset();
});

describe('DistributionWebAcl', () => {
  it('associates the web ACL with a distribution that has none and remembers none', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig(), ETag: 'E1' });
    cloudfront.on(AssociateDistributionWebACLCommand).resolves({ ETag: 'E2' });

    const result = await onEvent(event('Create', webAcl()), deps());

    expect(result.PhysicalResourceId).toBe(`${DIST}|webacl|`);
    expect(associations()).toEqual([{ Id: DIST, WebACLArn: OURS, IfMatch: 'E1' }]);
    // CloudFront's own association call: the rest of the config is never sent back.
    expect(updates()).toHaveLength(0);
  });

  it('refuses to replace a web ACL it did not set when replaceExistingWebAcl is false', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: THEIRS }), ETag: 'E1' });

    const run = onEvent(event('Create', webAcl(OURS, 'false')), deps());

    await expect(run).rejects.toThrow(ForeignWebAclError);
    await expect(run).rejects.toThrow(/replaceExistingWebAcl/);
    expect(associations()).toHaveLength(0);
    expect(disassociations()).toHaveLength(0);
  });

  it('replaces a foreign web ACL when allowed and keeps it to restore', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: THEIRS }), ETag: 'E1' });
    cloudfront.on(AssociateDistributionWebACLCommand).resolves({ ETag: 'E2' });

    const result = await onEvent(event('Create', webAcl(OURS, 'true')), deps());

    expect(result.PhysicalResourceId).toBe(webAclPhysicalId(DIST, THEIRS));
    expect(result.Data).toEqual({ PreviousWebAclId: THEIRS });
    expect(associations().map((a) => a.WebACLArn)).toEqual([OURS]);
  });

  it('retries on an ETag mismatch with a fresh read and decides again', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolvesOnce({ DistributionConfig: distributionConfig(), ETag: 'E1' })
      .resolvesOnce({ DistributionConfig: distributionConfig({ WebACLId: THEIRS }), ETag: 'E7' });
    cloudfront.on(AssociateDistributionWebACLCommand).rejectsOnce(preconditionFailed());

    // Someone put their web ACL on meanwhile: the fresh read sees it and refuses.
    await expect(onEvent(event('Create', webAcl()), deps())).rejects.toThrow(ForeignWebAclError);
    expect(associations().map((a) => a.IfMatch)).toEqual(['E1']);
  });

  it('gives up after five ETag mismatches in a row', async () => {
    let etag = 0;
    cloudfront
      .on(GetDistributionConfigCommand)
      .callsFake(async () => ({ DistributionConfig: distributionConfig(), ETag: `E${++etag}` }));
    cloudfront.on(AssociateDistributionWebACLCommand).rejects(preconditionFailed());

    await expect(onEvent(event('Create', webAcl()), deps())).rejects.toThrow(ConcurrentUpdateError);
    expect(associations().map((a) => a.IfMatch)).toEqual(['E1', 'E2', 'E3', 'E4', 'E5']);
  });

  it('waits out a new web ACL that CloudFront cannot read yet, with growing bounded waits', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig(), ETag: 'E1' });
    cloudfront
      .on(AssociateDistributionWebACLCommand)
      .rejectsOnce(unreadable())
      .rejectsOnce(unreadable())
      .rejectsOnce(unreadable())
      .resolves({ ETag: 'E2' });
    const waits: number[] = [];

    const result = await onEvent(event('Create', webAcl()), {
      ...deps(),
      sleep: async (ms) => {
        waits.push(ms);
      },
      random: () => 1,
    });

    expect(result.PhysicalResourceId).toBe(`${DIST}|webacl|`);
    expect(associations()).toHaveLength(4);
    expect(waits).toEqual([1000, 2000, 4000]);
  });

  it('gives up on a web ACL CloudFront never reads, in one line naming the permission', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig(), ETag: 'E1' });
    cloudfront.on(AssociateDistributionWebACLCommand).rejects(unreadable());
    const waits: number[] = [];

    const run = onEvent(event('Create', webAcl()), {
      ...deps(),
      sleep: async (ms) => {
        waits.push(ms);
      },
      random: () => 1,
    });

    await expect(run).rejects.toThrow(UnreadableWebAclError);
    await expect(run).rejects.toThrow(/^[^\n]*lacks wafv2:GetWebACL[^\n]*$/);
    await expect(run).rejects.toThrow(/in 10 tries over 111s \(InvalidWebACLId\)/);
    // Ten tries, nine waits that double from 1 s and stop growing at 20 s.
    expect(associations()).toHaveLength(10);
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16000, 20000, 20000, 20000, 20000]);
  });

  it('does not retry errors other than an ETag mismatch or an unreadable web ACL', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig(), ETag: 'E1' });
    cloudfront
      .on(AssociateDistributionWebACLCommand)
      .rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));

    await expect(onEvent(event('Create', webAcl()), deps())).rejects.toThrow('denied');
    expect(associations()).toHaveLength(1);
  });

  it('writes nothing when the distribution already has this web ACL', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: OURS }), ETag: 'E1' });

    const result = await onEvent(event('Create', webAcl()), deps());

    expect(result.PhysicalResourceId).toBe(`${DIST}|webacl|`);
    expect(associations()).toHaveLength(0);
  });

  it('restores the previous web ACL on delete', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: OURS }), ETag: 'E3' });
    cloudfront.on(AssociateDistributionWebACLCommand).resolves({ ETag: 'E4' });

    await onEvent(
      event('Delete', webAcl(), { physicalId: webAclPhysicalId(DIST, THEIRS) }),
      deps(),
    );

    expect(associations()).toEqual([{ Id: DIST, WebACLArn: THEIRS, IfMatch: 'E3' }]);
    expect(disassociations()).toHaveLength(0);
  });

  it('removes the web ACL on delete when there was none before', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: OURS }), ETag: 'E3' });
    cloudfront.on(DisassociateDistributionWebACLCommand).resolves({ ETag: 'E4' });

    await onEvent(event('Delete', webAcl(), { physicalId: webAclPhysicalId(DIST, '') }), deps());

    expect(disassociations()).toEqual([{ Id: DIST, IfMatch: 'E3' }]);
    expect(associations()).toHaveLength(0);
  });

  it('retries the restore on an ETag mismatch', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolvesOnce({ DistributionConfig: distributionConfig({ WebACLId: OURS }), ETag: 'E3' })
      .resolvesOnce({ DistributionConfig: distributionConfig({ WebACLId: OURS }), ETag: 'E5' });
    cloudfront
      .on(AssociateDistributionWebACLCommand)
      .rejectsOnce(preconditionFailed())
      .resolves({ ETag: 'E6' });

    await onEvent(
      event('Delete', webAcl(), { physicalId: webAclPhysicalId(DIST, THEIRS) }),
      deps(),
    );

    expect(associations().map((a) => [a.IfMatch, a.WebACLArn])).toEqual([
      ['E3', THEIRS],
      ['E5', THEIRS],
    ]);
  });

  it('leaves a web ACL someone else put there since alone on delete', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: THEIRS }), ETag: 'E3' });

    await onEvent(event('Delete', webAcl(), { physicalId: webAclPhysicalId(DIST, '') }), deps());

    expect(associations()).toHaveLength(0);
    expect(disassociations()).toHaveLength(0);
  });

  it('keeps restoring the previous web ACL through transient InvalidWebACLId while WAF still has it', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: OURS }), ETag: 'E3' });
    cloudfront
      .on(AssociateDistributionWebACLCommand)
      .rejectsOnce(unreadable())
      .rejectsOnce(unreadable())
      .resolves({ ETag: 'E4' });
    wafv2.on(GetWebACLCommand).resolves({ WebACL: undefined, LockToken: 'token' });

    await onEvent(
      event('Delete', webAcl(), { physicalId: webAclPhysicalId(DIST, THEIRS) }),
      deps(),
    );

    expect(associations().map((a) => a.WebACLArn)).toEqual([THEIRS, THEIRS, THEIRS]);
    // The distribution is never left without a web ACL.
    expect(disassociations()).toHaveLength(0);
    expect(wafv2.commandCalls(GetWebACLCommand)[0]?.args[0].input).toEqual({
      Name: 'theirs',
      Id: '33333333-3333-3333-3333-333333333333',
      Scope: 'CLOUDFRONT',
    });
  });

  it('falls back to no web ACL only when WAF confirms the previous one is gone', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: OURS }), ETag: 'E3' });
    cloudfront.on(AssociateDistributionWebACLCommand).rejects(unreadable());
    cloudfront.on(DisassociateDistributionWebACLCommand).resolves({ ETag: 'E4' });
    wafv2
      .on(GetWebACLCommand)
      .rejects(new WAFNonexistentItemException({ message: 'not found', $metadata: {} }));

    await onEvent(
      event('Delete', webAcl(), { physicalId: webAclPhysicalId(DIST, THEIRS) }),
      deps(),
    );

    expect(associations().map((a) => a.WebACLArn)).toEqual([THEIRS]);
    expect(disassociations()).toEqual([{ Id: DIST, IfMatch: 'E3' }]);
  });

  it('fails the delete, leaving the distribution as it is, when the previous web ACL stays unreadable and WAF cannot tell', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: OURS }), ETag: 'E3' });
    cloudfront.on(AssociateDistributionWebACLCommand).rejects(unreadable());
    wafv2
      .on(GetWebACLCommand)
      .rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));

    await expect(
      onEvent(event('Delete', webAcl(), { physicalId: webAclPhysicalId(DIST, THEIRS) }), deps()),
    ).rejects.toThrow(UnreadableWebAclError);
    expect(associations()).toHaveLength(10);
    expect(disassociations()).toHaveLength(0);
  });

  it('succeeds on delete when the distribution is gone', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .rejects(new NoSuchDistribution({ message: 'gone', $metadata: {} }));

    const result = await onEvent(
      event('Delete', webAcl(), { physicalId: webAclPhysicalId(DIST, THEIRS) }),
      deps(),
    );

    expect(result.PhysicalResourceId).toBe(webAclPhysicalId(DIST, THEIRS));
  });

  it('does nothing on delete after a create that failed before changing anything', async () => {
    await onEvent(event('Delete', webAcl(), { physicalId: 'req-1234' }), deps());

    expect(cloudfront.calls()).toHaveLength(0);
  });

  it('moves to a new web ACL on update and keeps what was there before edgeban', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: OURS }), ETag: 'E1' });
    cloudfront.on(AssociateDistributionWebACLCommand).resolves({ ETag: 'E2' });
    const physicalId = webAclPhysicalId(DIST, THEIRS);

    const result = await onEvent(
      event('Update', webAcl(OURS_NEXT), { physicalId, old: webAcl(OURS) }),
      deps(),
    );

    // Same physical id: CloudFormation sends no delete, the original is still known.
    expect(result.PhysicalResourceId).toBe(physicalId);
    expect(associations().map((a) => a.WebACLArn)).toEqual([OURS_NEXT]);
  });

  it('gets a new physical id when the distribution changes, so the old one is restored', async () => {
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ WebACLId: '' }), ETag: 'E1' });
    cloudfront.on(AssociateDistributionWebACLCommand).resolves({ ETag: 'E2' });

    const result = await onEvent(
      event(
        'Update',
        { ...webAcl(), DistributionId: 'E3NEWDISTRIBUTION' },
        { physicalId: webAclPhysicalId(DIST, THEIRS), old: webAcl() },
      ),
      deps(),
    );

    expect(result.PhysicalResourceId).toBe(webAclPhysicalId('E3NEWDISTRIBUTION', ''));
  });
});

describe('DistributionLogging', () => {
  const logging = (prefix = 'cf/') => ({
    Kind: 'DistributionLogging',
    DistributionId: DIST,
    Bucket: BUCKET,
    Prefix: prefix,
  });

  it('switches logging to the bucket and prefix and keeps the previous logging', async () => {
    const before = {
      Enabled: true,
      IncludeCookies: true,
      Bucket: 'old.s3.amazonaws.com',
      Prefix: 'x/',
    };
    cloudfront
      .on(GetDistributionConfigCommand)
      .resolves({ DistributionConfig: distributionConfig({ Logging: before }), ETag: 'E1' });
    cloudfront.on(UpdateDistributionCommand).resolves({ ETag: 'E2' });

    const result = await onEvent(event('Create', logging()), deps());

    expect(updates()[0]?.config.Logging).toEqual({
      Enabled: true,
      IncludeCookies: true,
      Bucket: BUCKET,
      Prefix: 'cf/',
    });
    expect(parsePhysicalId(result.PhysicalResourceId, 'logging')).toEqual({
      distributionId: DIST,
      previous: {
        enabled: true,
        bucket: 'old.s3.amazonaws.com',
        prefix: 'x/',
        includeCookies: true,
      },
    });
  });

  it('retries the logging rewrite while CloudFront cannot read the web ACL the config names', async () => {
    cloudfront.on(GetDistributionConfigCommand).resolves({
      DistributionConfig: distributionConfig({ WebACLId: OURS }),
      ETag: 'E1',
    });
    cloudfront.on(UpdateDistributionCommand).rejectsOnce(unreadable()).resolves({ ETag: 'E2' });

    await onEvent(event('Create', logging()), deps());

    expect(updates()).toHaveLength(2);
    expect(updates()[1]?.config.WebACLId).toBe(OURS);
  });

  it('restores the previous logging on delete while the logs still go to edgeban', async () => {
    const previous = { enabled: false, bucket: '', prefix: '', includeCookies: false };
    cloudfront.on(GetDistributionConfigCommand).resolves({
      DistributionConfig: distributionConfig({
        Logging: { Enabled: true, IncludeCookies: false, Bucket: BUCKET, Prefix: 'cf/' },
      }),
      ETag: 'E5',
    });
    cloudfront.on(UpdateDistributionCommand).resolves({ ETag: 'E6' });

    await onEvent(
      event('Delete', logging(), { physicalId: loggingPhysicalId(DIST, previous) }),
      deps(),
    );

    expect(updates()[0]?.config.Logging).toEqual({
      Enabled: false,
      IncludeCookies: false,
      Bucket: '',
      Prefix: '',
    });
  });

  it('leaves logging someone pointed elsewhere alone on delete', async () => {
    cloudfront.on(GetDistributionConfigCommand).resolves({
      DistributionConfig: distributionConfig({
        Logging: {
          Enabled: true,
          IncludeCookies: false,
          Bucket: 'theirs.s3.amazonaws.com',
          Prefix: '',
        },
      }),
      ETag: 'E5',
    });
    const previous = { enabled: false, bucket: '', prefix: '', includeCookies: false };

    await onEvent(
      event('Delete', logging(), { physicalId: loggingPhysicalId(DIST, previous) }),
      deps(),
    );

    expect(updates()).toHaveLength(0);
  });

  it('keeps the previous logging through any string, in the physical id', () => {
    fc.assert(
      fc.property(
        fc.record({
          enabled: fc.boolean(),
          bucket: fc.string(),
          prefix: fc.string(),
          includeCookies: fc.boolean(),
        }),
        fc.stringMatching(/^E[A-Z0-9]{9,19}$/),
        (previous, distributionId) => {
          const id = loggingPhysicalId(distributionId, previous);
          expect(parsePhysicalId(id, 'logging')).toEqual({ distributionId, previous });
          expect(parsePhysicalId(id, 'webacl')).toBeNull();
        },
      ),
    );
  });
});

describe('BucketEventBridge', () => {
  const props = {
    Kind: 'BucketEventBridge',
    BucketName: 'my-logs',
    ExpectedBucketOwner: '123456789012',
  };

  it('turns EventBridge on and writes every existing destination back unchanged', async () => {
    const queue = {
      Id: 'theirs',
      QueueArn: 'arn:aws:sqs:eu-west-1:123456789012:their-queue',
      Events: ['s3:ObjectCreated:*' as const],
    };
    const lambda = {
      Id: 'thumbs',
      LambdaFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:thumbs',
      Events: ['s3:ObjectRemoved:*' as const],
    };
    s3.on(GetBucketNotificationConfigurationCommand).resolves({
      QueueConfigurations: [queue],
      LambdaFunctionConfigurations: [lambda],
    });
    s3.on(PutBucketNotificationConfigurationCommand).resolves({});

    await onEvent(event('Create', props), deps());

    const put = s3.commandCalls(PutBucketNotificationConfigurationCommand);
    expect(put).toHaveLength(1);
    expect(put[0]?.args[0].input).toEqual({
      Bucket: 'my-logs',
      ExpectedBucketOwner: '123456789012',
      SkipDestinationValidation: true,
      NotificationConfiguration: {
        QueueConfigurations: [queue],
        LambdaFunctionConfigurations: [lambda],
        EventBridgeConfiguration: {},
      },
    });
  });

  it('writes nothing when EventBridge is already on', async () => {
    s3.on(GetBucketNotificationConfigurationCommand).resolves({ EventBridgeConfiguration: {} });

    await onEvent(event('Create', props), deps());

    expect(s3.commandCalls(PutBucketNotificationConfigurationCommand)).toHaveLength(0);
  });

  it('leaves the bucket as it is on delete', async () => {
    await onEvent(event('Delete', props, { physicalId: 'my-logs|eventbridge' }), deps());

    expect(s3.calls()).toHaveLength(0);
  });
});

describe('onEvent', () => {
  it('rejects an unknown kind with a one-line reason', async () => {
    await expect(onEvent(event('Create', { Kind: 'Nope' }), deps())).rejects.toThrow(
      /^custom resource property Kind is missing or invalid, got "Nope"$/,
    );
  });

  it('rejects a missing distribution id', async () => {
    await expect(
      onEvent(event('Create', { Kind: 'DistributionWebAcl', WebAclArn: OURS }), deps()),
    ).rejects.toThrow(/DistributionId/);
  });
});
