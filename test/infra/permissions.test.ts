/**
 * Every role of an edgeban function, action by action: each list pinned
 * exactly, and its DynamoDB actions equal to the calls its handler makes,
 * found in the bundled, tree-shaken handler (so a new call without its
 * grant, or a grant no call needs, fails here).
 */

import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { EdgebanFunction } from '../../lib';
import { actions, resources, type Synthesized, synth } from './app';

const DIST = 'E2QWRUHEXAMPLE';
const LAMBDA_DIR = fileURLToPath(new URL('../../lambda/', import.meta.url));

/** The document client's (and the low-level client's) commands, as IAM actions. */
const DYNAMODB_ACTIONS: Record<string, string> = {
  Get: 'GetItem',
  GetItem: 'GetItem',
  Put: 'PutItem',
  PutItem: 'PutItem',
  Update: 'UpdateItem',
  UpdateItem: 'UpdateItem',
  Delete: 'DeleteItem',
  DeleteItem: 'DeleteItem',
  Query: 'Query',
  Scan: 'Scan',
  BatchGet: 'BatchGetItem',
  BatchGetItem: 'BatchGetItem',
  BatchWrite: 'BatchWriteItem',
  BatchWriteItem: 'BatchWriteItem',
  TransactWrite: 'TransactWriteItems',
  TransactWriteItems: 'TransactWriteItems',
  TransactGet: 'TransactGetItems',
  TransactGetItems: 'TransactGetItems',
  DescribeTable: 'DescribeTable',
  CreateTable: 'CreateTable',
};

/** The DynamoDB actions the handler at `entry` (under `lambda/`) can reach. */
function handlerTableActions(entry: string): string[] {
  const out = buildSync({
    entryPoints: [`${LAMBDA_DIR}${entry}`],
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    treeShaking: true,
    minify: false,
    external: ['@aws-sdk/*', '@aws-lambda-powertools/*', '@smithy/*'],
    logLevel: 'silent',
  }).outputFiles[0]!.text;
  const found = new Set<string>();
  // esbuild may suffix a renamed import: `new GetCommand2(`.
  for (const m of out.matchAll(/new ([A-Za-z]+)Command\d*\(/g)) {
    const action = DYNAMODB_ACTIONS[m[1]!];
    if (action !== undefined) found.add(`dynamodb:${action}`);
  }
  for (const m of out.matchAll(/\bpaginate(Query|Scan)\d*\(/g)) found.add(`dynamodb:${m[1]}`);
  return [...found].sort();
}

/** Every statement granted to the function's role (one stack: the app is in us-east-1). */
function roleStatements(s: Synthesized, fn: EdgebanFunction): Record<string, unknown>[] {
  const roleId = fn.function.stack.getLogicalId(fn.role.node.defaultChild as never);
  return Object.values(s.pipeline.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Record<string, unknown>[]);
}

/** Every action granted to the function's role, sorted, once each. */
function roleActions(s: Synthesized, fn: EdgebanFunction): string[] {
  return [...new Set(roleStatements(s, fn).flatMap(actions))].sort();
}

/** The pinned action list of each function's role, by handler entry. */
const PINNED: Record<string, string[]> = {
  'ingest/handler.ts': [
    'dynamodb:BatchGetItem',
    'dynamodb:BatchWriteItem',
    'dynamodb:DeleteItem',
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:Query',
    'dynamodb:UpdateItem',
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    's3:GetObject',
    's3:ListBucket',
    'sqs:ChangeMessageVisibility',
    'sqs:DeleteMessage',
    'sqs:GetQueueAttributes',
    'sqs:GetQueueUrl',
    'sqs:ReceiveMessage',
    'sqs:SendMessage',
    'xray:PutTelemetryRecords',
    'xray:PutTraceSegments',
  ],
  'reconciler/handler.ts': [
    'dynamodb:DeleteItem',
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:Query',
    'dynamodb:UpdateItem',
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'sqs:ChangeMessageVisibility',
    'sqs:DeleteMessage',
    'sqs:GetQueueAttributes',
    'sqs:GetQueueUrl',
    'sqs:ReceiveMessage',
    'wafv2:GetIPSet',
    'wafv2:UpdateIPSet',
    'xray:PutTelemetryRecords',
    'xray:PutTraceSegments',
  ],
};

let s: Synthesized;
let functions: EdgebanFunction[];

beforeAll(() => {
  s = synth({
    attach: { distributionIds: [DIST] },
    realtime: { distributionIds: [DIST] },
  });
  functions = s.app.node
    .findAll()
    .filter((c): c is EdgebanFunction => c instanceof EdgebanFunction);
});

describe('function roles', () => {
  it('cover every edgeban function of the app', () => {
    expect(functions.map((f) => f.entry).sort()).toEqual(
      expect.arrayContaining(['ingest/handler.ts', 'reconciler/handler.ts', 'realtime/handler.ts']),
    );
  });

  it('grant exactly the DynamoDB calls each handler makes, on the state table only', () => {
    const table = Object.keys(s.pipeline.findResources('AWS::DynamoDB::Table'))[0]!;
    for (const fn of functions) {
      const granted = roleActions(s, fn).filter((a) => a.startsWith('dynamodb:'));
      expect(granted, fn.entry).toEqual(handlerTableActions(fn.entry));
      expect(granted, fn.entry).not.toContain('dynamodb:Scan');
      for (const st of roleStatements(s, fn)) {
        if (!actions(st).some((a) => a.startsWith('dynamodb:'))) continue;
        expect(JSON.stringify(resources(st)), fn.entry).toContain(`"${table}"`);
      }
    }
  });

  it.each(Object.keys(PINNED))('pin the whole action list of %s', (entry) => {
    const fn = functions.find((f) => f.entry === entry)!;
    expect(roleActions(s, fn)).toEqual(PINNED[entry]);
  });

  it('let ingest list the log bucket without a prefix condition, so a missing key is NoSuchKey', () => {
    const ingest = functions.find((f) => f.entry === 'ingest/handler.ts')!;
    const bucket = Object.keys(s.pipeline.findResources('AWS::S3::Bucket'))[0]!;
    const list = roleStatements(s, ingest).filter((st) => actions(st).includes('s3:ListBucket'));
    expect(list).toEqual([
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: { 'Fn::GetAtt': [bucket, 'Arn'] } },
    ]);
  });
});
