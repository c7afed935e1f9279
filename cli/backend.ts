/**
 * Where the operator commands act: a running `edgeban local --serve`
 * (`--local`, found through its discovery file) or a deployed stack
 * (`--stack NAME`, found through its CloudFormation outputs). Either way the
 * commands change the state table and let the pipeline's reconciler bring
 * WAF there; nothing here edits an IP set.
 */
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { WAFV2Client } from '@aws-sdk/client-wafv2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConfigError, parseConfig } from '../lambda/core/config';
import { guardFor } from '../lambda/core/guard';
import type { EdgebanConfig } from '../lambda/core/types';
import { type IpSetRef, type ReconcileResult, reconcile } from '../lambda/reconciler/reconcile';
import {
  ConfigOutputError,
  pipelineStackName,
  readConfigOutput,
} from '../lambda/shared/config-output';
import { OUTPUTS } from '../lambda/shared/contract';
import { uniqueTrigger } from '../lambda/shared/reconcile-trigger';
import { type ReconcileStatus, readReconcileStatus } from '../lambda/state/blocks';
import type { OperatorDeps } from '../lambda/state/operator';
import { localClients } from '../local/cloud';
import { DiscoveryError, discoveryPath, readDiscovery } from '../local/discovery';
import { isUnreachable, oneLine, RefusedError, UnreachableError, UsageError } from './errors';

/** `--local` or `--stack NAME`, as the user gave them. */
export interface TargetOptions {
  readonly local?: boolean;
  readonly stack?: string;
}

/** How a change reached (or will reach) WAF. */
export type ApplyOutcome =
  /** A reconcile ran here, against the local cloud. */
  | { readonly kind: 'reconciled'; readonly result: ReconcileResult }
  /** The deployed reconciler was nudged and ran after the change. */
  | { readonly kind: 'nudged'; readonly at: number }
  /** The change waits for the reconciler's next scheduled run (within a minute). */
  | { readonly kind: 'scheduled'; readonly why: string }
  /** Applying failed now; the reconciler's next run picks the change up. */
  | { readonly kind: 'failed'; readonly why: string };

/** A resolved target. */
export interface Backend {
  /** `edgeban local (pid 4242)` or `stack edgeban-prod`: for messages. */
  readonly description: string;
  readonly config: EdgebanConfig;
  readonly deps: OperatorDeps;
  /** Who acts: the OS user locally, the STS caller ARN for a stack. */
  actor(): Promise<string>;
  /**
   * Brings WAF to the state table now, through the pipeline's reconciler.
   * @param changedAt epoch ms of the change it must include
   * @param settled whether a reconcile run shows the change's effect
   *   (used where run times are too coarse to tell it ran after the change)
   */
  apply(
    changedAt: number,
    settled?: (run: ReconcileStatus) => Promise<boolean>,
  ): Promise<ApplyOutcome>;
  /** Releases the SDK clients. */
  close(): void;
}

/** Message when `--local` finds no running pipeline (DESIGN section 4: exit 3, one line). */
export const LOCAL_NOT_RUNNING = 'edgeban local --serve is not running';

function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  });
}

/**
 * Resolves `--local` / `--stack NAME` to a backend.
 * @throws UsageError (exit 2) for neither or both, a stack that does not exist or lacks outputs
 * @throws UnreachableError (exit 3) when the local pipeline is not running or AWS cannot be reached
 */
export async function openBackend(
  target: TargetOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Backend> {
  if (target.local && target.stack !== undefined) {
    throw new UsageError('give either --local or --stack NAME, not both');
  }
  if (target.local) return openLocal(env);
  if (target.stack !== undefined) return openStack(target.stack, env);
  throw new UsageError(
    'say where to act: --local (a running edgeban local --serve) or --stack NAME (a deployed stack)',
  );
}

function openLocal(env: NodeJS.ProcessEnv): Backend {
  const path = discoveryPath(env);
  let found: ReturnType<typeof readDiscovery>;
  try {
    found = readDiscovery(path);
  } catch (err) {
    if (err instanceof DiscoveryError) {
      throw new UnreachableError(`${LOCAL_NOT_RUNNING} (${err.message})`);
    }
    throw err;
  }
  if (found === null) throw new UnreachableError(LOCAL_NOT_RUNNING);
  const discovery = found;
  const config = parseConfig(discovery.config);
  const clients = localClients(discovery.endpoints, {
    region: discovery.region,
    // The reconciler retries on its own, re-reading a set before each retry.
    maxAttempts: 1,
    requestTimeoutMs: 10_000,
  });
  const ddb = documentClient(clients.dynamodb);
  const guard = guardFor(config.allowlist);
  const deps: OperatorDeps = {
    ddb,
    tableName: discovery.tableName,
    config,
    guard,
    now: Date.now,
  };
  return {
    description: `edgeban local (pid ${discovery.pid})`,
    config,
    deps,
    actor: async () => localActor(),
    apply: async () => applyLocally({ ...deps, waf: clients.wafv2, ipSets: discovery.ipSets }),
    close: () => {
      for (const c of Object.values(clients)) c.destroy();
    },
  };
}

/** How long a local command waits for the pipeline's reconcile to give the lease back. */
const LEASE_WAIT_MS = 10_000;

function localActor(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? 'unknown';
  }
}

async function applyLocally(
  deps: OperatorDeps & { waf: WAFV2Client; ipSets: readonly IpSetRef[] },
): Promise<ApplyOutcome> {
  try {
    let result = await reconcile(deps);
    // The served pipeline's own reconcile holds the lease for a moment at most.
    for (const started = Date.now(); result.busy && Date.now() - started < LEASE_WAIT_MS; ) {
      await new Promise((r) => setTimeout(r, 250));
      result = await reconcile(deps);
    }
    if (result.busy) {
      return {
        kind: 'failed',
        why: 'another reconcile kept the lease; the next scheduled run applies it',
      };
    }
    if (result.failedSets.length > 0) {
      return {
        kind: 'failed',
        why: `IP sets not updated now: ${result.failedSets.join(', ')}`,
      };
    }
    return { kind: 'reconciled', result };
  } catch (err) {
    return { kind: 'failed', why: oneLine(err) };
  }
}

function region(env: NodeJS.ProcessEnv): string {
  const r = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (r === undefined || r === '') {
    throw new UsageError('--stack needs a region: set AWS_REGION to the stack region');
  }
  return r;
}

/** SDK settings for the operator's AWS calls: quick to give up when nothing answers. */
function awsCommon(env: NodeJS.ProcessEnv) {
  return {
    region: region(env),
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 3_000, requestTimeout: 15_000 },
  };
}

async function stackOutputs(
  cfn: CloudFormationClient,
  name: string,
  where: string,
): Promise<Map<string, string>> {
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: name }));
    const stack = out.Stacks?.[0];
    if (stack === undefined) throw new UsageError(`stack ${name} not found in ${where}`);
    const outputs = new Map<string, string>();
    for (const o of stack.Outputs ?? []) {
      if (o.OutputKey !== undefined && o.OutputValue !== undefined) {
        outputs.set(o.OutputKey, o.OutputValue);
      }
    }
    return outputs;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if (isUnreachable(err)) {
      throw new UnreachableError(`cannot reach CloudFormation in ${where}: ${oneLine(err)}`);
    }
    if ((err as { name?: string }).name === 'ValidationError') {
      throw new UsageError(`stack ${name} not found in ${where}: ${oneLine(err)}`);
    }
    throw new UnreachableError(`cannot read stack ${name} in ${where}: ${oneLine(err)}`);
  }
}

/**
 * The outputs of stack `name`, or, when there is none of that name and
 * `name` could be a stage, of that stage's pipeline stack (`--stack
 * staging` finds `Edgeban-staging`).
 */
async function stagedStackOutputs(
  cfn: CloudFormationClient,
  name: string,
  where: string,
): Promise<Map<string, string>> {
  try {
    return await stackOutputs(cfn, name, where);
  } catch (err) {
    const staged = pipelineStackName(name);
    if (!(err instanceof UsageError) || !/^[a-z][a-z0-9-]*$/.test(name)) throw err;
    try {
      return await stackOutputs(cfn, staged, where);
    } catch (second) {
      if (second instanceof UsageError) {
        throw new UsageError(`${err.message} (nor ${staged}, the stack of a stage ${name})`);
      }
      throw second;
    }
  }
}

async function openStack(name: string, env: NodeJS.ProcessEnv): Promise<Backend> {
  if (name === '') throw new UsageError('--stack needs a stack name');
  const common = awsCommon(env);
  const where = common.region;
  const cfn = new CloudFormationClient(common);
  let outputs: Map<string, string>;
  try {
    outputs = await stagedStackOutputs(cfn, name, where);
  } finally {
    cfn.destroy();
  }
  const need = (key: string): string => {
    const v = outputs.get(key);
    if (v === undefined || v === '') {
      throw new UsageError(
        `stack ${name} has no output ${key}: is it an edgeban pipeline stack, deployed by this version?`,
      );
    }
    return v;
  };
  const tableName = need(OUTPUTS.tableName);
  let config: EdgebanConfig;
  try {
    config = parseConfig(readConfigOutput(need(OUTPUTS.config)));
  } catch (err) {
    if (err instanceof ConfigOutputError) {
      throw new RefusedError(`stack ${name} output ${OUTPUTS.config} ${err.message}`);
    }
    if (err instanceof ConfigError) {
      throw new UsageError(`stack ${name} output ${OUTPUTS.config}: ${err.message}`);
    }
    throw err;
  }
  const queueUrl = outputs.get(OUTPUTS.reconcilerQueueUrl);
  const dynamodb = new DynamoDBClient(common);
  const ddb = documentClient(dynamodb);
  const deps: OperatorDeps = {
    ddb,
    tableName,
    config,
    guard: guardFor(config.allowlist),
    now: Date.now,
  };
  let who: Promise<string> | undefined;
  return {
    description: `stack ${name}`,
    config,
    deps,
    actor: () => {
      who ??= callerArn(env);
      return who;
    },
    apply: (changedAt, settled) => nudge(deps, queueUrl, env, changedAt, settled),
    close: () => dynamodb.destroy(),
  };
}

async function callerArn(env: NodeJS.ProcessEnv): Promise<string> {
  const sts = new STSClient(awsCommon(env));
  try {
    const out = await sts.send(new GetCallerIdentityCommand({}));
    if (out.Arn === undefined) throw new UnreachableError('STS returned no caller ARN');
    return out.Arn;
  } catch (err) {
    if (err instanceof UnreachableError) throw err;
    throw new UnreachableError(`cannot tell who you are (STS GetCallerIdentity): ${oneLine(err)}`);
  } finally {
    sts.destroy();
  }
}

/** How long `block`/`unblock`/`pause`/`resume` wait for the deployed reconciler. */
const NUDGE_WAIT_MS = 30_000;

/**
 * The deployed reconciler is the only writer to WAF (one run at a time,
 * from one FIFO message group): rather than write from here, put a
 * wake-up in that group, and wait until a run that started after the
 * change has finished.
 */
async function nudge(
  deps: OperatorDeps,
  queueUrl: string | undefined,
  env: NodeJS.ProcessEnv,
  changedAt: number,
  settled: ((run: ReconcileStatus) => Promise<boolean>) | undefined,
): Promise<ApplyOutcome> {
  if (queueUrl === undefined) {
    return { kind: 'scheduled', why: `the stack has no ${OUTPUTS.reconcilerQueueUrl} output` };
  }
  const sqs = new SQSClient(awsCommon(env));
  try {
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        ...uniqueTrigger('cli', changedAt, randomUUID()),
      }),
    );
  } catch (err) {
    return { kind: 'scheduled', why: `could not nudge the reconciler: ${oneLine(err)}` };
  } finally {
    sqs.destroy();
  }
  const deadline = Date.now() + NUDGE_WAIT_MS;
  const changedS = Math.floor(changedAt / 1000);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1_000));
    const last = await readReconcileStatus(deps.ddb, deps.tableName).catch(() => null);
    if (last === null) continue;
    const runS = last.at / 1000;
    // Status times are whole seconds of the run's start: a run that started
    // in the change's second may have read the table just before it, so it
    // counts only when it shows the change's effect.
    if (runS > changedS) return { kind: 'nudged', at: last.at };
    if (runS === changedS && settled !== undefined && (await settled(last))) {
      return { kind: 'nudged', at: last.at };
    }
  }
  return { kind: 'scheduled', why: 'the reconciler has not run yet' };
}
