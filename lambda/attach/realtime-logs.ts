/**
 * `DistributionRealtimeLogs`: puts edgeban's real-time log config on every
 * cache behavior of a CloudFront distribution (the default one and each
 * path pattern), refusing to replace a real-time log config it did not
 * set unless told to, and puts the previous ones back on delete.
 *
 * A cache behavior names its real-time log config in `RealtimeLogConfigArn`,
 * and there is no call that sets only that field: the whole distribution
 * config is read and written back with UpdateDistribution ("Create a
 * real-time log configuration (AWS CLI)", CloudFront Developer Guide), so
 * the handler needs what a full update of that distribution needs (Lambda@Edge
 * and VPC origins: see `grantDistributionRewrite` in `lib/log-delivery.ts`).
 *
 * What was there before is kept in the physical resource id, as the web
 * ACL and logging resources do: the previous config of the default
 * behavior, and of each path pattern whose previous config differs from it.
 */
import type {
  CacheBehavior,
  CloudFrontClient,
  DistributionConfig,
} from '@aws-sdk/client-cloudfront';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { AttachError, changeDistribution, errorName, type RetryOptions } from './distribution';

/** A cache behavior holds a real-time log config that edgeban did not set. */
export class ForeignRealtimeConfigError extends AttachError {
  constructor(distributionId: string, behavior: string, arn: string) {
    super(
      `distribution ${distributionId} cache behavior ${behavior} has real-time log config ${arn} that edgeban did not set; ` +
        'set realtime.replaceExistingConfig to true to replace it',
    );
    this.name = 'ForeignRealtimeConfigError';
  }
}

/** The real-time log configs of a distribution's behaviors before edgeban: `d` default, `p` by path pattern. */
export interface PreviousRealtime {
  readonly d: string;
  readonly p: Readonly<Record<string, string>>;
}

/** CloudFormation's limit on a physical resource id (1 KB). */
export const PHYSICAL_ID_MAX = 1024;

const SEP = '|';
const DEFAULT = '(default)';

/** Every cache behavior of a config with its name: `(default)` or its path pattern. */
export function behaviors(
  config: DistributionConfig,
): { name: string; behavior: { RealtimeLogConfigArn?: string } }[] {
  const out: { name: string; behavior: { RealtimeLogConfigArn?: string } }[] = [];
  if (config.DefaultCacheBehavior !== undefined) {
    out.push({ name: DEFAULT, behavior: config.DefaultCacheBehavior });
  }
  for (const b of config.CacheBehaviors?.Items ?? ([] as CacheBehavior[])) {
    out.push({ name: b.PathPattern ?? '', behavior: b });
  }
  return out;
}

/** `<distribution>|realtime|<previous configs as URI-encoded JSON>` */
export function realtimePhysicalId(distributionId: string, previous: PreviousRealtime): string {
  const id = [distributionId, 'realtime', encodeURIComponent(JSON.stringify(previous))].join(SEP);
  if (id.length > PHYSICAL_ID_MAX) {
    throw new AttachError(
      `distribution ${distributionId}: its cache behaviors have too many different real-time log configs to remember for restoring (${id.length} of ${PHYSICAL_ID_MAX} bytes)`,
    );
  }
  return id;
}

/** The parts of a physical id written by {@link realtimePhysicalId}, or null. */
export function parseRealtimePhysicalId(
  id: string,
): { distributionId: string; previous: PreviousRealtime } | null {
  const parts = id.split(SEP);
  if (parts.length !== 3 || parts[1] !== 'realtime') return null;
  try {
    const p = JSON.parse(decodeURIComponent(parts[2] ?? '')) as Partial<PreviousRealtime>;
    const paths: Record<string, string> = {};
    for (const [k, v] of Object.entries(p.p ?? {})) if (typeof v === 'string') paths[k] = v;
    return {
      distributionId: parts[0] ?? '',
      previous: { d: typeof p.d === 'string' ? p.d : '', p: paths },
    };
  } catch {
    return null;
  }
}

function previousOf(previous: PreviousRealtime, name: string): string {
  return name === DEFAULT ? previous.d : (previous.p[name] ?? previous.d);
}

/** The deps the resource uses. */
export interface RealtimeAttachDeps extends RetryOptions {
  readonly cloudfront: CloudFrontClient;
  readonly log?: (message: string, extra?: Record<string, unknown>) => void;
}

/**
 * Handles a `DistributionRealtimeLogs` event. Properties: `DistributionId`,
 * `RealtimeLogConfigArn` (edgeban's), `ReplaceExisting` (`"true"` to take
 * behaviors that hold another real-time log config).
 */
export async function realtimeLogs(
  event: CloudFormationCustomResourceEvent,
  deps: RealtimeAttachDeps,
  props: { distributionId: string; arn: string; replace: boolean },
): Promise<{ PhysicalResourceId: string }> {
  const { distributionId, arn, replace } = props;
  if (event.RequestType === 'Delete') {
    const parsed = parseRealtimePhysicalId(event.PhysicalResourceId);
    // A create that failed before any change has no id of ours: nothing to undo.
    if (parsed === null) return { PhysicalResourceId: event.PhysicalResourceId };
    const result = await restore(deps, parsed.distributionId, arn, parsed.previous);
    deps.log?.('real-time log config restore', { distributionId: parsed.distributionId, result });
    return { PhysicalResourceId: event.PhysicalResourceId };
  }

  // An update of the same distribution keeps what was there before edgeban.
  const kept =
    event.RequestType === 'Update' ? parseRealtimePhysicalId(event.PhysicalResourceId) : null;
  const same = kept !== null && kept.distributionId === distributionId;
  const oldArn =
    event.RequestType === 'Update' && same
      ? String((event.OldResourceProperties as Record<string, unknown>).RealtimeLogConfigArn ?? '')
      : '';
  let previous: PreviousRealtime = same ? kept.previous : { d: '', p: {} };
  const result = await changeDistribution(
    deps.cloudfront,
    distributionId,
    (config) => {
      const found: Record<string, string> = {};
      let changed = false;
      for (const { name, behavior } of behaviors(config)) {
        const current = behavior.RealtimeLogConfigArn ?? '';
        found[name] = same ? previousOf(kept.previous, name) : current;
        if (current === arn) continue;
        const ours = current === '' || (oldArn !== '' && current === oldArn);
        if (!ours && !replace) throw new ForeignRealtimeConfigError(distributionId, name, current);
        behavior.RealtimeLogConfigArn = arn;
        changed = true;
      }
      if (!same) {
        const d = found[DEFAULT] ?? '';
        const p: Record<string, string> = {};
        for (const [name, a] of Object.entries(found)) if (name !== DEFAULT && a !== d) p[name] = a;
        previous = { d, p };
      }
      return changed;
    },
    deps,
  );
  deps.log?.('real-time log config attach', { distributionId, result, previous });
  return { PhysicalResourceId: realtimePhysicalId(distributionId, previous) };
}

/**
 * Puts each behavior's previous real-time log config back where the
 * behavior still holds edgeban's; leaves behaviors someone changed since.
 * A previous config that no longer exists gives way to none.
 */
async function restore(
  deps: RealtimeAttachDeps,
  distributionId: string,
  ours: string,
  previous: PreviousRealtime,
): Promise<string> {
  const put = (keepPrevious: boolean) =>
    changeDistribution(
      deps.cloudfront,
      distributionId,
      (config) => {
        let changed = false;
        for (const { name, behavior } of behaviors(config)) {
          if ((behavior.RealtimeLogConfigArn ?? '') !== ours) continue;
          const target = keepPrevious ? previousOf(previous, name) : '';
          if (target === '') delete behavior.RealtimeLogConfigArn;
          else behavior.RealtimeLogConfigArn = target;
          changed = true;
        }
        return changed;
      },
      { ...deps, ifMissing: 'ok' },
    );
  try {
    return await put(true);
  } catch (err) {
    if (errorName(err) !== 'NoSuchRealtimeLogConfig') throw err;
    deps.log?.('a previous real-time log config is gone; leaving those behaviors without one', {
      distributionId,
    });
    return await put(false);
  }
}
