/**
 * What both widget functions set up at init: the environment, the state
 * table client, the config, and the token key.
 *
 * The key is a Secrets Manager secret, read through Parameter Store's
 * reference path (`/aws/reference/secretsmanager/<name>`, GetParameter
 * with decryption), so the SSM client edgeban already carries suffices.
 * https://docs.aws.amazon.com/systems-manager/latest/userguide/integration-ps-secretsmanager.html
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ENV } from '../shared/contract';
import { configFromEnv, guardSource, requireEnv } from '../shared/runtime';
import type { OperatorDeps } from '../state/operator';
import { MIN_KEY_BYTES } from './token';

/**
 * The operator commands' dependencies from the environment, on the real
 * clock, with the guard of the ingest side and the reconciler (CloudFront's
 * current origin-facing ranges), so the widget refuses what they refuse.
 * @param onRangesError told when CloudFront's ranges could not be refreshed
 */
export function operatorFromEnv(
  onRangesError: (err: unknown) => void,
): () => Promise<OperatorDeps> {
  const tableName = requireEnv(ENV.tableName);
  const config = configFromEnv();
  const guards = guardSource(config, onRangesError);
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return async () => ({ ddb, tableName, config, guard: await guards(), now: Date.now });
}

/**
 * Reads the token key once per container (later calls share the first read).
 * @throws Error when the secret is missing or shorter than {@link MIN_KEY_BYTES}
 */
export function tokenKeyLoader(ssm: SSMClient = new SSMClient({})): () => Promise<Uint8Array> {
  const secret = requireEnv(ENV.widgetKeySecret);
  let loading: Promise<Uint8Array> | undefined;
  return () => {
    loading ??= ssm
      .send(
        new GetParameterCommand({
          Name: `/aws/reference/secretsmanager/${secret}`,
          WithDecryption: true,
        }),
      )
      .then((out) => {
        const key = Buffer.from(out.Parameter?.Value ?? '', 'utf8');
        if (key.length < MIN_KEY_BYTES) {
          throw new Error(
            `the widget key secret ${secret} holds fewer than ${MIN_KEY_BYTES} bytes`,
          );
        }
        return key;
      })
      .catch((err: unknown) => {
        loading = undefined;
        throw err;
      });
    return loading;
  };
}
