/**
 * The operator commands against `--stack NAME`: CloudFormation, STS and
 * SQS are mocked (no AWS account here); the state table is dynalite,
 * reached through `AWS_ENDPOINT_URL_DYNAMODB`; the "deployed reconciler" is
 * `reconcile()` against the WAF emulator, run when the CLI's SQS nudge
 * arrives, as the Lambda would be.
 */
import { randomUUID } from 'node:crypto';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Io, run } from '../../cli/main';
import { parseConfig } from '../../lambda/core/config';
import { guardFor } from '../../lambda/core/guard';
import { type IpSetRef, reconcile } from '../../lambda/reconciler/reconcile';
import { CONFIG_OUTPUT_SCHEMA, configOutput } from '../../lambda/shared/config-output';
import { OUTPUTS } from '../../lambda/shared/contract';
import { RECONCILE_TRIGGER } from '../../lambda/shared/reconcile-trigger';
import { ensureTable } from '../../lambda/state/table';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';

const ARN = 'arn:aws:sts::123456789012:assumed-role/oncall/alice';
const QUEUE = 'https://sqs.us-east-1.amazonaws.com/123456789012/edgeban-reconciler';
const RAW_CONFIG = { rules: [{ name: 'flood', threshold: 100, window: '5m' }] };

const cfn = mockClient(CloudFormationClient);
const sts = mockClient(STSClient);
const sqs = mockClient(SQSClient);
let cloud: LocalCloud;
const saved = { ...process.env };

interface Stack {
  readonly tableName: string;
  readonly ipSets: IpSetRef[];
  /** Bodies of the messages the CLI sent the reconciler queue. */
  readonly nudges: string[];
  /** Each nudge's FIFO message group and deduplication id. */
  readonly nudgeIds: { group?: string; deduplication?: string }[];
}

/** A deployed stack as the CLI sees it: outputs, a table, IP sets and a reconciler behind a queue. */
async function deploy(outputs: { queue?: boolean; config?: boolean } = {}): Promise<Stack> {
  cloud.waf.reset();
  const { dynamodb, wafv2 } = cloud.clients({ maxAttempts: 1 });
  const tableName = `edgeban-${randomUUID()}`;
  await ensureTable(dynamodb, tableName);
  const ipSets: IpSetRef[] = (['IPV4', 'IPV6'] as const).map((version) => {
    const s = cloud.waf.createIpSet({
      name: `edgeban-${version.toLowerCase()}-1`,
      scope: 'CLOUDFRONT',
      ipAddressVersion: version,
    });
    return { name: s.name, id: s.id, arn: s.arn, version, scope: 'CLOUDFRONT' };
  });
  const list: { OutputKey: string; OutputValue: string }[] = [
    { OutputKey: OUTPUTS.tableName, OutputValue: tableName },
  ];
  if (outputs.config !== false) {
    list.push({ OutputKey: OUTPUTS.config, OutputValue: JSON.stringify(RAW_CONFIG) });
  }
  if (outputs.queue !== false) {
    list.push({ OutputKey: OUTPUTS.reconcilerQueueUrl, OutputValue: QUEUE });
  }
  cfn
    .on(DescribeStacksCommand)
    .rejects(
      Object.assign(new Error('Stack with id nope does not exist'), { name: 'ValidationError' }),
    );
  cfn.on(DescribeStacksCommand, { StackName: 'edgeban' }).resolves({
    Stacks: [
      {
        StackName: 'edgeban',
        CreationTime: new Date(),
        StackStatus: 'UPDATE_COMPLETE',
        Outputs: list,
      },
    ],
  });
  const config = parseConfig(RAW_CONFIG);
  const ddb = DynamoDBDocumentClient.from(dynamodb, {
    marshallOptions: { removeUndefinedValues: true },
  });
  const nudges: string[] = [];
  const nudgeIds: { group?: string; deduplication?: string }[] = [];
  sqs.on(SendMessageCommand, { QueueUrl: QUEUE }).callsFake(async (input) => {
    nudges.push(String(input.MessageBody));
    nudgeIds.push({ group: input.MessageGroupId, deduplication: input.MessageDeduplicationId });
    // The Lambda picks the message up a moment later.
    setTimeout(() => {
      void reconcile({
        ddb,
        tableName,
        waf: wafv2,
        ipSets,
        config,
        guard: guardFor(config.allowlist),
        now: Date.now,
      });
    }, 100);
    return { MessageId: randomUUID() };
  });
  return { tableName, ipSets, nudges, nudgeIds };
}

function wafAddresses(s: Stack): string[] {
  return s.ipSets.flatMap((ref) => [...cloud.waf.ipSet({ id: ref.id }).addresses]).sort();
}

async function edgeban(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), tty: false };
  const code = await run(args, io);
  return { code, out, err };
}

beforeAll(async () => {
  cloud = await startLocalCloud();
});

beforeEach(() => {
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
  process.env.AWS_SECRET_ACCESS_KEY = 'secret';
  process.env.AWS_ENDPOINT_URL_DYNAMODB = cloud.endpoints.dynamodb;
  sts.on(GetCallerIdentityCommand).resolves({ Arn: ARN, Account: '123456789012' });
});

afterEach(() => {
  cfn.reset();
  sts.reset();
  sqs.reset();
  process.env = { ...saved };
});

afterAll(async () => {
  cfn.restore();
  sts.restore();
  sqs.restore();
  await cloud?.stop();
});

describe('edgeban operator commands --stack', () => {
  it('blocks as the STS caller, nudges the reconciler, and waits until WAF holds it', async () => {
    const stack = await deploy();
    const r = await edgeban(['block', '198.51.100.7', '--reason', 'INC-1', '--stack', 'edgeban']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      new RegExp(`^Blocked 198\\.51\\.100\\.7 for 4h, until \\S+Z, by ${ARN} \\("INC-1"\\)\\.\\n`),
    );
    expect(r.out).toMatch(/The reconciler ran at \S+Z: 198\.51\.100\.7\/32 is in WAF now\.\n$/);
    expect(wafAddresses(stack)).toEqual(['198.51.100.7/32']);
    expect(stack.nudges).toHaveLength(1);
    expect(JSON.parse(stack.nudges[0]!)).toMatchObject({ source: 'cli' });
    // The reconciler's one FIFO group, never deduplicated against ingest's wake-ups.
    expect(stack.nudgeIds[0]).toEqual({
      group: RECONCILE_TRIGGER.groupId,
      deduplication: expect.stringMatching(/^cli-[0-9a-f-]{36}$/),
    });

    const list = await edgeban(['list', '--json', '--stack', 'edgeban']);
    expect(JSON.parse(list.out).blocks).toMatchObject([
      { key: '198.51.100.7', source: 'manual', by: ARN, reason: 'INC-1', inWaf: true },
    ]);

    const lifted = await edgeban(['unblock', '198.51.100.7', '--json', '--stack', 'edgeban']);
    expect(lifted.code).toBe(0);
    expect(JSON.parse(lifted.out)).toMatchObject({ key: '198.51.100.7', by: ARN });
    expect(wafAddresses(stack)).toEqual([]);
    const history = JSON.parse(
      (await edgeban(['history', '198.51.100.7', '--json', '--stack', 'edgeban'])).out,
    );
    expect(history.events.map((e: { kind: string; by: string }) => [e.kind, e.by])).toEqual([
      ['block', ARN],
      ['unblock', ARN],
    ]);
  });

  it('says the next scheduled run applies the change when the stack has no queue output', async () => {
    const stack = await deploy({ queue: false });
    const r = await edgeban(['block', '198.51.100.8', '--stack', 'edgeban']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      'The reconciler applies this on its next run, within a minute (the stack has no ReconcilerQueueUrl output).',
    );
    expect(stack.nudges).toEqual([]);
    expect(wafAddresses(stack)).toEqual([]);
  });

  it('exits 2 for a stack that does not exist, or one without the Config output', async () => {
    await deploy({ config: false });
    const missing = await edgeban(['list', '--stack', 'nope']);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^edgeban: stack nope not found in us-east-1: [^\n]+\n$/);
    const old = await edgeban(['list', '--stack', 'edgeban']);
    expect(old.code).toBe(2);
    expect(old.err).toBe(
      'edgeban: stack edgeban has no output Config: is it an edgeban pipeline stack, deployed by this version?\n',
    );
  });
});

describe('edgeban --stack and stages', () => {
  /** A stack named `name` whose Config output is `config`. */
  function stackWith(name: string, config: string, tableName = 'edgeban-staged'): void {
    cfn
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('Stack does not exist'), { name: 'ValidationError' }));
    cfn.on(DescribeStacksCommand, { StackName: name }).resolves({
      Stacks: [
        {
          StackName: name,
          CreationTime: new Date(),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: [
            { OutputKey: OUTPUTS.tableName, OutputValue: tableName },
            { OutputKey: OUTPUTS.config, OutputValue: config },
          ],
        },
      ],
    });
  }

  it('finds the pipeline stack of a stage by the stage name', async () => {
    const { dynamodb } = cloud.clients({ maxAttempts: 1 });
    await ensureTable(dynamodb, 'edgeban-staged');
    stackWith('Edgeban-staging', configOutput({ ...RAW_CONFIG, stage: 'staging' }));
    const r = await edgeban(['list', '--json', '--stack', 'staging']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ blocks: [] });
  });

  it('reads the Config output of a stack deployed before it carried a schema version', async () => {
    const { dynamodb } = cloud.clients({ maxAttempts: 1 });
    await ensureTable(dynamodb, 'edgeban-staged');
    stackWith('Edgeban', JSON.stringify(RAW_CONFIG));
    const r = await edgeban(['list', '--json', '--stack', 'Edgeban']);
    expect(r.code).toBe(0);
  });

  it('refuses, in one line, a Config output of a schema version it does not know', async () => {
    stackWith('Edgeban', JSON.stringify({ schemaVersion: 2, config: RAW_CONFIG, more: {} }));
    const r = await edgeban(['list', '--stack', 'Edgeban']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `edgeban: stack Edgeban output Config has schema version 2, and this edgeban reads version ${CONFIG_OUTPUT_SCHEMA}: use the edgeban version that deployed the stack\n`,
    );
  });

  it('names both stacks it looked for when neither exists', async () => {
    stackWith('Edgeban', configOutput(RAW_CONFIG));
    const r = await edgeban(['list', '--stack', 'prod']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /^edgeban: stack prod not found in us-east-1: .* \(nor Edgeban-prod, the stack of a stage prod\)\n$/,
    );
  });
});
