/**
 * edgeban's CDK constructs: `EdgeBan` (the pipeline, reusable from another
 * CDK app with its own bucket and web ACL), `EdgeBanWaf` (IP sets, web ACL
 * or rule group), and the stacks `bin/app.ts` builds.
 */
export { ASYNC_INVOKE, BoundedAsyncInvoke } from './async-invoke';
export { AttachProvider, RESOURCE_TYPES } from './attach-provider';
export {
  DEPLOY_RECORD_RESOURCE_TYPE,
  DeployRecord,
  type DeployRecordProps,
  ipSetsHash,
} from './deploy-record';
export {
  configObject,
  EdgeBan,
  type EdgeBanProps,
  type EdgebanConfigSource,
  INGEST_BATCH_SIZE,
  LAMBDA_ENVIRONMENT_BYTES,
  MAX_RECEIVE_COUNT,
  RECONCILER_BATCH_SIZE,
  RECONCILER_VISIBILITY_TIMEOUTS,
  SIZING,
  VISIBILITY_TIMEOUTS,
} from './edge-ban';
export {
  EdgeBanMonitoring,
  type EdgeBanMonitoringProps,
  HEARTBEAT_MINUTES,
  IP_SET_FILL_ALARM_PERCENT,
  silencePeriods,
} from './edge-ban-monitoring';
export {
  BLOCKLIST_RULE_NAME,
  CLOUDFRONT_WAF_REGION,
  EdgeBanWaf,
  type EdgeBanWafProps,
  type IpSetRef,
  RULE_GROUP_CAPACITY,
} from './edge-ban-waf';
export { EdgebanFunction, type EdgebanFunctionProps } from './edgeban-function';
export {
  buildEdgeban,
  type EdgebanApp,
  type EdgebanAppProps,
  EdgebanStack,
  type EdgebanStackProps,
  EdgebanWafStack,
  type EdgebanWafStackProps,
  ipSetConsoleUrl,
  STACK_IDS,
  stackIds,
} from './edgeban-stacks';
export { EdgeBanError } from './errors';
export {
  REALTIME_SIZING,
  RealtimeSource,
  type RealtimeSourceProps,
  STREAM_RETENTION,
} from './realtime-source';
export { TABLE_ACTIONS } from './table-actions';
