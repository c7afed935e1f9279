/**
 * Names shared by the CDK app, the handlers and the CLI. Each string that
 * crosses a deployment boundary (table schema, environment variables,
 * metric names, stack outputs) is written here once and imported
 * everywhere else.
 */

/** DynamoDB single-table schema: string partition and sort keys. */
export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /**
   * Epoch seconds after which an item can no longer matter (count and
   * bound items past the live horizon). DynamoDB TTL deletes them to keep
   * storage flat; correctness never depends on when, or whether, it does.
   */
  expiresAt: 'exp',
} as const;

/** Environment variables the handlers read at init. */
export const ENV = {
  tableName: 'EDGEBAN_TABLE',
  config: 'EDGEBAN_CONFIG',
  reconcilerQueueUrl: 'EDGEBAN_RECONCILER_QUEUE_URL',
  ipSets: 'EDGEBAN_IP_SETS',
  wafScope: 'EDGEBAN_WAF_SCOPE',
  wafRegion: 'EDGEBAN_WAF_REGION',
  /** Console widget: the Secrets Manager secret holding the action-token key. */
  widgetKeySecret: 'EDGEBAN_WIDGET_KEY_SECRET',
  /** Console widget: the acting function's ARN, for the read-only function's buttons. */
  widgetActArn: 'EDGEBAN_WIDGET_ACT_ARN',
} as const;

/** CloudWatch metric namespace and names (EMF). */
export const METRICS = {
  namespace: 'edgeban',
  lines: 'Lines',
  rejected: 'RejectedLines',
  stale: 'StaleRequests',
  objects: 'Objects',
  /** Real-time records dropped as a repeat of a request id in the same batch. */
  duplicateRecords: 'DuplicateRecords',
  skippedObjects: 'SkippedObjects',
  decisions: 'Decisions',
  activeBlocks: 'ActiveBlocks',
  ipSetSize: 'IpSetSize',
  lagSeconds: 'LagSeconds',
  reconcileUpdates: 'ReconcileUpdates',
  reconcileRetries: 'ReconcileRetries',
  circuitBreakerTrips: 'CircuitBreakerTrips',
  evictions: 'Evictions',
  /** Addresses re-added after a reset (CloudFormation rewrite or a mass loss), per run. */
  resets: 'Resets',
  /** WAF calls answered with throttling (a delay, never an abort). */
  wafThrottled: 'WafThrottled',
  /** GetIPSet reads whose LockToken one of edgeban's own recent writes replaced. */
  staleReads: 'StaleReads',
  /** State writes refused because a newer reconciler's fencing token wrote the item. */
  fencedWrites: 'FencedWrites',
  /** Runs that reached their deadline with sets left to write (the next run continues). */
  partialRuns: 'PartialRuns',
  /** Runs that completed (a heartbeat for the stopped-reconciler alarm). */
  reconcileRuns: 'ReconcileRuns',
} as const;

/** CloudWatch metric dimension names. `ipSet` carries the IP set's name on `IpSetSize`. */
export const METRIC_DIMENSIONS = {
  ipSet: 'IpSet',
  /** The dimension Powertools Metrics puts on every metric: its `serviceName`. */
  service: 'service',
} as const;

/**
 * The Powertools Metrics `serviceName` of each function: the value of the
 * `service` dimension its metrics carry, which the alarms and dashboard
 * select on.
 */
export const METRIC_SERVICES = {
  ingest: 'edgeban-ingest',
  reconciler: 'edgeban-reconciler',
  realtime: 'edgeban-realtime',
} as const;

/** CloudFormation output names of the pipeline stack. */
export const OUTPUTS = {
  tableName: 'TableName',
  ipSetArns: 'IpSetArns',
  webAclArn: 'WebAclArn',
  dashboardUrl: 'DashboardUrl',
  queueUrl: 'QueueUrl',
  reconcilerQueueUrl: 'ReconcilerQueueUrl',
  ruleGroupArn: 'RuleGroupArn',
  logBucketName: 'LogBucketName',
  /** Prefix of one output per IP set: `IpSetConsoleUrlIpv41`, `IpSetConsoleUrlIpv61`, ... */
  ipSetConsoleUrl: 'IpSetConsoleUrl',
  /**
   * The `edgeban` config the stack was deployed with, as JSON (what
   * `parseConfig` takes): the operator CLI's `--stack` reads its rules,
   * allowlist and limits from here.
   */
  config: 'Config',
  /** The console widget's read-only function (whoever may invoke it may look). */
  widgetViewFunctionArn: 'WidgetViewFunctionArn',
  /** The console widget's acting function (whoever may invoke it may unblock and block). */
  widgetActFunctionArn: 'WidgetActFunctionArn',
} as const;
