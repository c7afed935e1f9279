/**
 * `edgeban doctor` against mocked AWS clients (no account is reachable
 * here): what it reports for a healthy account, a new one, and each thing
 * that would make a first deploy fail; its exit codes (DESIGN section 4).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CloudFrontClient,
  type DistributionConfig,
  GetDistributionConfigCommand,
  NoSuchDistribution,
} from '@aws-sdk/client-cloudfront';
import { GetAccountSettingsCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  GetBucketLocationCommand,
  GetBucketNotificationConfigurationCommand,
  GetBucketOwnershipControlsCommand,
  NoSuchBucket,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import {
  ListIPSetsCommand,
  ListRuleGroupsCommand,
  ListWebACLsCommand,
  WAFV2Client,
} from '@aws-sdk/client-wafv2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DoctorDocument } from '../../cli/doctor';
import { type Io, run } from '../../cli/main';

const ACCOUNT = '123456789012';
const DIST = 'E2QWRUHEXAMPLE';
const THEIRS =
  'arn:aws:wafv2:us-east-1:123456789012:global/webacl/theirs/33333333-3333-3333-3333-333333333333';

const sts = mockClient(STSClient);
const lambda = mockClient(LambdaClient);
const wafv2 = mockClient(WAFV2Client);
const cloudfront = mockClient(CloudFrontClient);
const s3 = mockClient(S3Client);
const ssm = mockClient(SSMClient);

let dir: string;
const saved = { ...process.env };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeban-doctor-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A distribution that logs nowhere and has no web ACL. */
function distribution(fields: Partial<DistributionConfig> = {}): DistributionConfig {
  return {
    CallerReference: 'ref',
    Comment: 'site',
    Enabled: true,
    Origins: { Quantity: 1, Items: [{ Id: 'o', DomainName: 'origin.example.com' }] },
    DefaultCacheBehavior: { TargetOriginId: 'o', ViewerProtocolPolicy: 'redirect-to-https' },
    WebACLId: '',
    Logging: { Enabled: false, IncludeCookies: false, Bucket: '', Prefix: '' },
    ...fields,
  };
}

/** A healthy account: every check passes for the config of {@link write}. */
function healthy(): void {
  sts
    .on(GetCallerIdentityCommand)
    .resolves({ Account: ACCOUNT, Arn: 'arn:aws:iam::123456789012:user/ops' });
  lambda.on(GetAccountSettingsCommand).resolves({
    AccountLimit: { ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 1000 },
  });
  wafv2.on(ListIPSetsCommand).resolves({ IPSets: [{ Name: 'office' }] });
  wafv2.on(ListWebACLsCommand).resolves({ WebACLs: [] });
  wafv2.on(ListRuleGroupsCommand).resolves({ RuleGroups: [] });
  cloudfront.on(GetDistributionConfigCommand).resolves({
    DistributionConfig: distribution(),
    ETag: 'E1',
  });
  s3.on(GetBucketLocationCommand).resolves({ LocationConstraint: 'eu-west-1' });
  s3.on(GetBucketOwnershipControlsCommand).resolves({
    OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerPreferred' }] },
  });
  s3.on(GetBucketNotificationConfigurationCommand).resolves({});
  ssm.on(GetParameterCommand).resolves({ Parameter: { Value: '27' } });
}

/** Writes a cdk.json-style config file. */
function write(edgeban: Record<string, unknown>, name = 'cdk.json'): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ app: 'npx tsx bin/app.ts', context: { edgeban } }));
  return path;
}

const CONFIG = {
  logs: { bucketName: 'my-logs', prefix: 'cf/', enableOn: [DIST] },
  attach: { distributionIds: [DIST] },
};

async function doctor(
  args: string[],
): Promise<{ code: number; out: string; err: string; doc: DoctorDocument | undefined }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), tty: false };
  const code = await run(['doctor', ...args], io);
  let doc: DoctorDocument | undefined;
  if (args.includes('--json') && out !== '') doc = JSON.parse(out) as DoctorDocument;
  return { code, out, err, doc };
}

function check(doc: DoctorDocument | undefined, id: string) {
  const found = doc?.checks.find((c) => c.id === id);
  expect(found, id).toBeDefined();
  return found!;
}

beforeEach(() => {
  for (const m of [sts, lambda, wafv2, cloudfront, s3, ssm]) m.reset();
  process.env.AWS_ACCESS_KEY_ID = 'AKIAEXAMPLE';
  process.env.AWS_SECRET_ACCESS_KEY = 'secret';
  delete process.env.AWS_REGION;
  delete process.env.AWS_DEFAULT_REGION;
  delete process.env.AWS_PROFILE;
  healthy();
});
afterEach(() => {
  process.env = { ...saved };
});

describe('edgeban doctor', () => {
  it('passes a ready account, with a table of checks and exit 0', async () => {
    const r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/account 123456789012, Region eu-west-1/);
    expect(r.out).toMatch(/OK\s+lambda-concurrency\s+1000 concurrent executions in eu-west-1/);
    expect(r.out).toMatch(/OK\s+cdk-bootstrap:us-east-1\s+bootstrap version 27/);
    expect(r.out).toMatch(/Nothing would fail\./);
    // The CLOUDFRONT scope counts WAF entities in us-east-1, the pipeline's Region elsewhere.
    expect(await wafv2.commandCalls(ListIPSetsCommand)[0]?.args[0].input).toMatchObject({
      Scope: 'CLOUDFRONT',
    });
    expect(ssm.commandCalls(GetParameterCommand)[0]?.args[0].input).toEqual({
      Name: '/cdk-bootstrap/hnb659fds/version',
    });
  });

  it('prints one JSON document with --json', async () => {
    const r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(r.code).toBe(0);
    expect(r.doc).toMatchObject({ account: ACCOUNT, region: 'eu-west-1', ok: true });
    expect(r.doc?.checks.map((c) => c.id)).toEqual([
      'lambda-concurrency',
      'waf-ip-sets',
      'waf-web-acls',
      'region-waf',
      'region-logging',
      `distribution:${DIST}`,
      'log-bucket',
      'log-bucket-ownership',
      'log-bucket-notifications',
      'cdk-bootstrap:eu-west-1',
      'cdk-bootstrap:us-east-1',
    ]);
    for (const c of r.doc?.checks ?? []) expect(c).toMatchObject({ status: 'ok', fix: '' });
  });

  it('warns about a new account with a Lambda concurrency quota of 10, and fails one with none left', async () => {
    lambda.on(GetAccountSettingsCommand).resolves({
      AccountLimit: { ConcurrentExecutions: 10, UnreservedConcurrentExecutions: 10 },
    });
    let r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(r.code).toBe(0);
    expect(check(r.doc, 'lambda-concurrency')).toMatchObject({
      status: 'warn',
      fix: expect.stringMatching(/L-B99A9384.*at least 100 in eu-west-1/),
    });

    lambda.on(GetAccountSettingsCommand).resolves({
      AccountLimit: { ConcurrentExecutions: 10, UnreservedConcurrentExecutions: 4 },
    });
    r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(r.code).toBe(1);
    expect(check(r.doc, 'lambda-concurrency').status).toBe('fail');
  });

  it('fails when the IP sets the deploy adds go over the WAF quota, counting an earlier deploy as its own', async () => {
    const others = Array.from({ length: 99 }, (_, i) => ({ Name: `team-${i}` }));
    // Two pages, as WAF returns them with NextMarker.
    wafv2
      .on(ListIPSetsCommand)
      .resolvesOnce({ IPSets: others.slice(0, 50), NextMarker: 'm' })
      .resolvesOnce({ IPSets: others.slice(50) });
    let r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(r.code).toBe(1);
    expect(check(r.doc, 'waf-ip-sets')).toMatchObject({
      status: 'fail',
      detail:
        '99 IP sets in us-east-1 (CLOUDFRONT), the deploy adds 2: 101 of the default quota 100',
    });

    wafv2.on(ListIPSetsCommand).resolves({
      IPSets: [
        ...others.slice(0, 96),
        { Name: 'EdgebanWafEdgeBanWaf1A2B3C-ipv4-1' },
        { Name: 'EdgebanWafEdgeBanWaf1A2B3C-ipv6-1' },
      ],
    });
    r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(check(r.doc, 'waf-ip-sets')).toMatchObject({ status: 'warn' });
    expect(check(r.doc, 'waf-ip-sets').detail).toMatch(/the deploy adds 0: 98 of/);
  });

  it('fails a distribution holding a web ACL edgeban may not replace, naming the config field', async () => {
    cloudfront.on(GetDistributionConfigCommand).resolves({
      DistributionConfig: distribution({ WebACLId: THEIRS }),
      ETag: 'E1',
    });
    const r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      new RegExp(`FAIL\\s+distribution:${DIST}\\s+${DIST} has web ACL ${THEIRS}`),
    );
    expect(r.out).toMatch(/distribution:E2QWRUHEXAMPLE: set attach\.replaceExistingWebAcl to true/);

    const allowed = await doctor([
      '--config',
      write({ ...CONFIG, attach: { distributionIds: [DIST], replaceExistingWebAcl: true } }),
      '--region',
      'eu-west-1',
      '--json',
    ]);
    expect(allowed.code).toBe(0);
    expect(check(allowed.doc, `distribution:${DIST}`).status).toBe('warn');
  });

  it('fails a distribution that does not exist, and one with Lambda@Edge under a legacy logging rewrite', async () => {
    cloudfront.on(GetDistributionConfigCommand).rejects(
      new NoSuchDistribution({
        message: 'The specified distribution does not exist.',
        $metadata: {},
      }),
    );
    let r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(check(r.doc, `distribution:${DIST}`)).toMatchObject({
      status: 'fail',
      detail: `distribution ${DIST} does not exist in account ${ACCOUNT}`,
    });

    cloudfront.on(GetDistributionConfigCommand).resolves({
      DistributionConfig: distribution({
        DefaultCacheBehavior: {
          TargetOriginId: 'o',
          ViewerProtocolPolicy: 'redirect-to-https',
          LambdaFunctionAssociations: {
            Quantity: 1,
            Items: [
              {
                LambdaFunctionARN: 'arn:aws:lambda:us-east-1:123456789012:function:edge:3',
                EventType: 'viewer-request',
              },
            ],
          },
        },
      }),
      ETag: 'E1',
    });
    r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(r.code).toBe(1);
    expect(check(r.doc, `distribution:${DIST}`)).toMatchObject({
      status: 'fail',
      fix: 'add "lambda-edge" to logs.distributionFeatures',
    });
  });

  it('warns about a distribution it protects but whose logs it never sees', async () => {
    const r = await doctor([
      '--config',
      write({ logs: { bucketName: 'my-logs' }, attach: { distributionIds: [DIST] } }),
      '--region',
      'eu-west-1',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(check(r.doc, `distribution:${DIST}`)).toMatchObject({
      status: 'warn',
      fix: 'add it to logs.enableOn (or realtime.distributionIds)',
    });
  });

  it('fails a log bucket in another Region, a missing one, and one without ACLs for legacy logging', async () => {
    s3.on(GetBucketLocationCommand).resolves({ LocationConstraint: 'us-west-2' });
    let r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(check(r.doc, 'log-bucket')).toMatchObject({
      status: 'fail',
      fix: expect.stringMatching(/AWS_REGION=us-west-2/),
    });

    s3.on(GetBucketLocationCommand).rejects(new NoSuchBucket({ message: 'no', $metadata: {} }));
    r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(check(r.doc, 'log-bucket')).toMatchObject({
      status: 'fail',
      detail: 'bucket my-logs does not exist',
    });

    s3.on(GetBucketLocationCommand).resolves({ LocationConstraint: 'eu-west-1' });
    s3.on(GetBucketOwnershipControlsCommand).resolves({
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(r.code).toBe(1);
    expect(check(r.doc, 'log-bucket-ownership')).toMatchObject({
      status: 'fail',
      fix: expect.stringMatching(/BucketOwnerPreferred/),
    });
    // v2 delivery writes through a bucket policy: ACLs disabled are fine.
    r = await doctor([
      '--config',
      write({ ...CONFIG, logs: { ...CONFIG.logs, cloudfrontDelivery: 'v2-w3c' } }),
      '--region',
      'eu-west-1',
      '--json',
    ]);
    expect(check(r.doc, 'log-bucket-ownership').status).toBe('ok');
  });

  it('reads a bucket without ownership controls as ACLs enabled, and reports its notifications', async () => {
    s3.on(GetBucketOwnershipControlsCommand).rejects(
      new S3ServiceException({
        name: 'OwnershipControlsNotFoundError',
        $fault: 'client',
        message: 'The bucket ownership controls were not found',
        $metadata: { httpStatusCode: 404 },
      }),
    );
    s3.on(GetBucketNotificationConfigurationCommand).resolves({
      EventBridgeConfiguration: {},
      QueueConfigurations: [
        { QueueArn: 'arn:aws:sqs:eu-west-1:123456789012:q', Events: ['s3:ObjectCreated:*'] },
      ],
    });
    const r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(check(r.doc, 'log-bucket-ownership')).toMatchObject({
      status: 'ok',
      detail: 'object ownership ObjectWriter',
    });
    expect(check(r.doc, 'log-bucket-notifications').detail).toBe(
      'EventBridge notifications on; its 1 other destination(s) are kept',
    );
  });

  it('fails a Region the CDK has not bootstrapped, with the command to run', async () => {
    ssm
      .on(GetParameterCommand)
      .rejects(new ParameterNotFound({ message: 'not found', $metadata: {} }));
    const r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(r.code).toBe(1);
    expect(check(r.doc, 'cdk-bootstrap:us-east-1')).toMatchObject({
      status: 'fail',
      fix: 'npx cdk bootstrap aws://123456789012/us-east-1',
    });
  });

  it('checks the bootstrap of us-east-1 for CloudFront v2 log delivery of a REGIONAL pipeline', async () => {
    const config = {
      scope: 'REGIONAL',
      attach: { mode: 'none' },
      logs: { bucketName: 'my-logs', enableOn: [DIST], cloudfrontDelivery: 'v2-w3c' },
    };
    const r = await doctor(['--config', write(config), '--region', 'eu-west-1', '--json']);
    expect(r.doc?.checks.map((c) => c.id).filter((id) => id.startsWith('cdk-bootstrap'))).toEqual([
      'cdk-bootstrap:eu-west-1',
      'cdk-bootstrap:us-east-1',
    ]);
  });

  it('fails legacy CloudFront logging into an opt-in Region', async () => {
    s3.on(GetBucketLocationCommand).resolves({ LocationConstraint: 'af-south-1' });
    const r = await doctor(['--config', write(CONFIG), '--region', 'af-south-1', '--json']);
    expect(r.code).toBe(1);
    expect(check(r.doc, 'region-logging')).toMatchObject({
      status: 'fail',
      fix: expect.stringMatching(/logs\.cloudfrontDelivery to "v2-w3c"/),
    });
  });

  it('fails load balancers in another Region than the pipeline', async () => {
    const alb = (region: string) =>
      `arn:aws:elasticloadbalancing:${region}:123456789012:loadbalancer/app/web/0123456789abcdef`;
    const r = await doctor([
      '--config',
      write({
        scope: 'REGIONAL',
        logs: { enableOn: [alb('eu-west-1')] },
        attach: { albArns: [alb('eu-west-1'), alb('us-east-2')] },
      }),
      '--region',
      'eu-west-1',
      '--json',
    ]);
    expect(r.code).toBe(1);
    expect(check(r.doc, 'region-load-balancers')).toMatchObject({
      status: 'fail',
      detail: `1 load balancer(s) outside eu-west-1: ${alb('us-east-2')}`,
    });
    // REGIONAL scope counts WAF entities in the pipeline's Region.
    expect(wafv2.commandCalls(ListIPSetsCommand)[0]?.args[0].input).toMatchObject({
      Scope: 'REGIONAL',
    });
  });

  it('warns, naming the action, when a read is denied', async () => {
    lambda
      .on(GetAccountSettingsCommand)
      .rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));
    const r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1', '--json']);
    expect(r.code).toBe(0);
    expect(check(r.doc, 'lambda-concurrency')).toMatchObject({
      status: 'warn',
      fix: 'run doctor with credentials allowed lambda:GetAccountSettings',
    });
  });

  it('exits 2 for a missing config file or no Region, in one line', async () => {
    let r = await doctor(['--config', join(dir, 'nope.json'), '--region', 'eu-west-1']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^edgeban: config file not found: .*nope\.json.*\n$/);
    r = await doctor(['--config', write(CONFIG)]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^edgeban: no AWS Region: give --region or set AWS_REGION[^\n]*\n$/);
    r = await doctor(['--config', write({ rules: 'x' }), '--region', 'eu-west-1']);
    expect(r.code).toBe(2);
    expect(sts.calls()).toHaveLength(0);
  });

  it('exits 3 when AWS cannot be reached or refuses the credentials', async () => {
    sts
      .on(GetCallerIdentityCommand)
      .rejects(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    let r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1']);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/^edgeban: AWS is unreachable \(sts:GetCallerIdentity: [^\n]*\)\n$/);

    sts.on(GetCallerIdentityCommand).rejects(
      Object.assign(new Error('The security token included in the request is invalid.'), {
        name: 'InvalidClientTokenId',
      }),
    );
    r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1']);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/AWS refused the credentials/);

    healthy();
    wafv2
      .on(ListIPSetsCommand)
      .rejects(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    r = await doctor(['--config', write(CONFIG), '--region', 'eu-west-1']);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/^edgeban: wafv2:ListIPSets: socket hang up\n$/);
  });
});
