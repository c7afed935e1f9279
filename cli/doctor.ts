/**
 * `edgeban doctor`: before a first deploy, checks the account (with the
 * caller's AWS credentials, read-only) against a config and says, one line
 * each, what would make the deploy or its first hour fail and how to fix
 * it. Exit codes (DESIGN.md section 4): 0 nothing would fail (warnings
 * allowed), 1 something would fail, 2 bad usage or config, 3 AWS
 * unreachable or the credentials refused.
 */
import { existsSync } from 'node:fs';
import { loadConfigFile } from '../lambda/core/config';
import type { EdgebanConfig } from '../lambda/core/types';
import {
  type Check,
  checkBootstrap,
  checkLambdaConcurrency,
  checkRegion,
  checkWafQuotas,
  type DoctorClients,
  type DoctorContext,
} from './doctor-checks';
import { checkDistributions, checkLogBucket } from './doctor-resources';
import { isUnreachable, oneLine, UnreachableError, UsageError } from './errors';
import type { Io } from './main';
import { table } from './text';

/** Options of `edgeban doctor`. */
export interface DoctorOptions {
  config?: string;
  region?: string;
  json?: boolean;
}

/** The `doctor --json` document. */
export interface DoctorDocument {
  readonly account: string;
  readonly region: string;
  /** True when no check failed (warnings allowed). */
  readonly ok: boolean;
  readonly checks: readonly Check[];
}

function loadConfig(path: string | undefined): EdgebanConfig {
  const file = path ?? 'cdk.json';
  if (!existsSync(file)) {
    throw new UsageError(`config file not found: ${file} (give --config FILE)`);
  }
  return loadConfigFile(file);
}

function regionOf(opts: DoctorOptions): string {
  const region = opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (region === undefined || region === '') {
    throw new UsageError(
      "no AWS Region: give --region or set AWS_REGION to the Region the pipeline deploys in (the log bucket's)",
    );
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
    throw new UsageError(`--region must be an AWS Region such as eu-west-1, got ${region}`);
  }
  return region;
}

/** The SDK clients, loaded on use: `edgeban --help` starts without them. */
async function clients(region: string, scope: EdgebanConfig['scope']): Promise<DoctorClients> {
  const [{ LambdaClient }, { WAFV2Client }, { CloudFrontClient }, { S3Client }, { SSMClient }] =
    await Promise.all([
      import('@aws-sdk/client-lambda'),
      import('@aws-sdk/client-wafv2'),
      import('@aws-sdk/client-cloudfront'),
      import('@aws-sdk/client-s3'),
      import('@aws-sdk/client-ssm'),
    ]);
  const ssm = new Map<string, InstanceType<typeof SSMClient>>();
  return {
    lambda: new LambdaClient({ region }),
    // CloudFront's web ACLs and IP sets (scope CLOUDFRONT) live in us-east-1.
    wafv2: new WAFV2Client({ region: scope === 'CLOUDFRONT' ? 'us-east-1' : region }),
    // CloudFront's API is global; its endpoint signs in us-east-1.
    cloudfront: new CloudFrontClient({ region: 'us-east-1' }),
    s3: new S3Client({ region, followRegionRedirects: true }),
    ssm: (r) => {
      let client = ssm.get(r);
      if (client === undefined) {
        client = new SSMClient({ region: r });
        ssm.set(r, client);
      }
      return client;
    },
  };
}

/** The caller's account, which also proves the credentials work. */
async function callerAccount(region: string): Promise<string> {
  const { STSClient, GetCallerIdentityCommand } = await import('@aws-sdk/client-sts');
  try {
    const who = await new STSClient({ region }).send(new GetCallerIdentityCommand({}));
    if (who.Account === undefined) throw new Error('GetCallerIdentity returned no account');
    return who.Account;
  } catch (err) {
    const why = isUnreachable(err) ? 'AWS is unreachable' : 'AWS refused the credentials';
    throw new UnreachableError(`${why} (sts:GetCallerIdentity: ${oneLine(err)})`);
  }
}

/** aws-cdk-lib's region facts say which Regions are opt-in. */
async function isOptInRegion(region: string): Promise<boolean> {
  const { RegionInfo } = await import('aws-cdk-lib/region-info');
  return RegionInfo.get(region).isOptInRegion === true;
}

/** Runs every check; an unreachable AWS ends the run (thrown). */
export async function runChecks(c: DoctorClients, ctx: DoctorContext): Promise<Check[]> {
  return [
    await checkLambdaConcurrency(c, ctx),
    ...(await checkWafQuotas(c, ctx)),
    ...checkRegion(ctx),
    ...(await checkDistributions(c, ctx)),
    ...(await checkLogBucket(c, ctx)),
    ...(await checkBootstrap(c, ctx)),
  ];
}

function renderText(doc: DoctorDocument): string {
  const rows = doc.checks.map((c) => [c.status.toUpperCase(), c.id, c.detail]);
  const lines = [
    `edgeban doctor: account ${doc.account}, Region ${doc.region}`,
    table(['STATUS', 'CHECK', 'FOUND'], rows),
  ];
  const fixes = doc.checks.filter((c) => c.status !== 'ok');
  if (fixes.length > 0) {
    lines.push('', 'To fix:');
    for (const c of fixes) lines.push(`  ${c.id}: ${c.fix}`);
  }
  const failed = doc.checks.filter((c) => c.status === 'fail').length;
  const warned = doc.checks.filter((c) => c.status === 'warn').length;
  lines.push(
    '',
    failed > 0
      ? `${failed} check(s) would make the deploy or its first hour fail.`
      : `Nothing would fail${warned > 0 ? ` (${warned} warning(s))` : ''}.`,
  );
  return `${lines.join('\n')}\n`;
}

/**
 * Runs `doctor`; returns the exit code (usage and reachability errors are
 * thrown as {@link UsageError} and {@link UnreachableError}).
 */
export async function doctorCommand(opts: DoctorOptions, io: Io): Promise<number> {
  const config = loadConfig(opts.config);
  const region = regionOf(opts);
  const account = await callerAccount(region);
  const ctx: DoctorContext = {
    config,
    account,
    region,
    optInRegion: await isOptInRegion(region),
  };
  const checks = await runChecks(await clients(region, config.scope), ctx);
  const doc: DoctorDocument = {
    account,
    region,
    ok: checks.every((c) => c.status !== 'fail'),
    checks,
  };
  io.out(opts.json === true ? `${JSON.stringify(doc, null, 2)}\n` : renderText(doc));
  return doc.ok ? 0 : 1;
}
