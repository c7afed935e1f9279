/**
 * What the counting Lambdas (ingest, real-time) set up at init: their
 * environment checked once, failing fast with the variable's name, and the
 * guarded-address predicate kept current with CloudFront's published
 * origin-facing ranges.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { parseConfig } from '../core/config';
import { Guard } from '../core/guard';
import type { EdgebanConfig } from '../core/types';
import { type CloudFrontRangeSet, CloudFrontRanges } from '../state/ranges';
import { ENV } from './contract';
import { coalescedTrigger, type ReconcileTriggerSource } from './reconcile-trigger';

/** The value of an environment variable. @throws Error naming it when unset or empty */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

/** The config of the handler's environment. @throws Error naming the variable and the field */
export function configFromEnv(): EdgebanConfig {
  try {
    return parseConfig(requireEnv(ENV.config));
  } catch (err) {
    throw new Error(`environment variable ${ENV.config}: ${(err as Error).message}`);
  }
}

/**
 * The guard for `config`, rebuilt when CloudFront's ranges change.
 * @param onRangesError told when the ranges could not be refreshed (the cached or shipped ones stay)
 */
export function guardSource(
  config: EdgebanConfig,
  onRangesError: (err: unknown) => void,
): () => Promise<Guard> {
  const ranges = new CloudFrontRanges({ onError: onRangesError });
  let current: { set: CloudFrontRangeSet; guard: Guard } | null = null;
  return async () => {
    const set = await ranges.get();
    if (current === null || current.set !== set) {
      current = {
        set,
        guard: new Guard({ allowlist: config.allowlist, cloudfrontRanges: set.ranges }),
      };
    }
    return current.guard;
  };
}

/**
 * Wakes the reconciler: one message in its FIFO queue's one group,
 * coalesced per time bucket (reconcile-trigger.ts). Never throws: the
 * reconciler also runs every minute, so a lost message only delays it.
 * @param source who asks (`ingest`, `realtime`), for the reconciler's log
 */
export async function wakeReconciler(
  sqs: SQSClient,
  queueUrl: string,
  source: ReconcileTriggerSource,
  onError: (err: unknown) => void,
): Promise<void> {
  try {
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queueUrl, ...coalescedTrigger(source, Date.now()) }),
    );
  } catch (err) {
    onError(err);
  }
}
