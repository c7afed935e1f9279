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
import { parseConfig } from '../core/config';
import { guardFor } from '../core/guard';
import { ENV } from '../shared/contract';
import type { OperatorDeps } from '../state/operator';
import { MIN_KEY_BYTES } from './token';

/** A variable of the environment, checked. */
export function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

/** The operator commands' dependencies, from the environment, on the real clock. */
export function operatorFromEnv(): OperatorDeps {
  const tableName = env(ENV.tableName);
  let config: ReturnType<typeof parseConfig>;
  try {
    config = parseConfig(env(ENV.config));
  } catch (err) {
    throw new Error(
      `environment variable ${ENV.config}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return { ddb, tableName, config, guard: guardFor(config.allowlist), now: Date.now };
}

/**
 * Reads the token key once per container (later calls share the first read).
 * @throws Error when the secret is missing or shorter than {@link MIN_KEY_BYTES}
 */
export function tokenKeyLoader(ssm: SSMClient = new SSMClient({})): () => Promise<Uint8Array> {
  const secret = env(ENV.widgetKeySecret);
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
