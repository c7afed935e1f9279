/**
 * Reconciler Lambda: invoked by the ingest's SQS message and by an
 * EventBridge schedule every minute; both just run {@link reconcile}, one at
 * a time by its lease. Clients are built and the environment is checked
 * once, at init.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parseConfig } from '../core/config';
import { Guard } from '../core/guard';
import type { Scope } from '../core/types';
import { ENV, METRICS } from '../shared/contract';
import { CloudFrontRanges } from '../state/ranges';
import { RUN_BUDGET_MS } from './lease';
import { parseIpSetRefs, type ReconcileMetrics, reconcile } from './reconcile';

/** Time kept after the run's WAF work for its last state writes and metrics. */
const FINISH_MS = 20_000;

const logger = new Logger({ serviceName: 'edgeban-reconciler' });
const metrics = new Metrics({ namespace: METRICS.namespace, serviceName: 'edgeban-reconciler' });

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '')
    throw new Error(`environment variable ${name} is not set`);
  return value;
}

function fromEnv<T>(name: string, parse: (text: string) => T): T {
  try {
    return parse(env(name));
  } catch (err) {
    throw new Error(
      `environment variable ${name}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

const tableName = env(ENV.tableName);
const config = fromEnv(ENV.config, (text) => parseConfig(text));
const scope = fromEnv(ENV.wafScope, (text): Scope => {
  if (text !== 'CLOUDFRONT' && text !== 'REGIONAL')
    throw new Error(`must be CLOUDFRONT or REGIONAL, got ${text}`);
  return text;
});
const ipSets = fromEnv(ENV.ipSets, (text) => parseIpSetRefs(text, scope));
const wafRegion = env(ENV.wafRegion);

const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
// One attempt per SDK call: reconcile retries itself, re-reading the set before each retry.
const waf = new WAFV2Client({ region: wafRegion, maxAttempts: 1 });
const ranges = new CloudFrontRanges({
  onError: (err) =>
    logger.warn('CloudFront ranges not refreshed; using the cached or shipped ones', {
      error: String(err),
    }),
});

const sink: ReconcileMetrics = {
  add(name, value, dimensions) {
    if (dimensions === undefined) {
      metrics.addMetric(name, MetricUnit.Count, value);
      return;
    }
    const single = metrics.singleMetric();
    for (const [k, v] of Object.entries(dimensions)) single.addDimension(k, v);
    single.addMetric(name, MetricUnit.Count, value);
  },
};

/**
 * Runs one reconcile for any event (SQS batch or schedule). Throws when a set
 * could not be updated, so the failure shows in the error metric and an SQS
 * message is delivered again. A partial run (its deadline reached with sets
 * left, under throttling) is no failure: the next run continues.
 */
export async function handler(
  _event?: unknown,
  context?: { getRemainingTimeInMillis?: () => number },
): Promise<void> {
  const remaining = context?.getRemainingTimeInMillis?.();
  const budgetMs =
    remaining === undefined
      ? RUN_BUDGET_MS
      : Math.max(0, Math.min(RUN_BUDGET_MS, remaining - FINISH_MS));
  try {
    const guard = new Guard({
      allowlist: config.allowlist,
      cloudfrontRanges: (await ranges.get()).ranges,
    });
    const result = await reconcile({
      ddb,
      tableName,
      waf,
      ipSets,
      config,
      guard,
      now: Date.now,
      budgetMs,
      logger,
      metrics: sink,
    });
    if (result.failedSets.length > 0) {
      throw new Error(`IP sets not updated in this run: ${result.failedSets.join(', ')}`);
    }
  } finally {
    metrics.publishStoredMetrics();
  }
}
