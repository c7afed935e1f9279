/**
 * Fixtures of the console widget tests: widget events shaped as the
 * CloudWatch console sends them, a token key, and a state with rule blocks
 * (one of a /24), manual blocks, a reset and an unblock in the event log,
 * reconciled into the WAF emulator.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { reconcile } from '../../lambda/reconciler/reconcile';
import { eventLogKey } from '../../lambda/shared/schema';
import { putActiveBlock, recordEvent } from '../../lambda/state/blocks';
import { manualBlock } from '../../lambda/state/operator';
import type { ActDeps } from '../../lambda/widget/act';
import type { ViewDeps } from '../../lambda/widget/view';
import { appliedSentence } from '../../local/widget-server';
import { HOUR, ruleBlock, type World } from '../reconciler/env';

/** The token key of the tests (32 bytes). */
export const KEY = Buffer.from('0123456789abcdef0123456789abcdef', 'utf8');

export const VIEW_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:edgeban-widget-view';
export const ACT_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:edgeban-widget-act';
export const DASHBOARD = 'edgeban-prod';
export const WIDGET = 'widget-7';

/** Options of {@link widgetEvent}. */
export interface EventOptions {
  readonly theme?: 'light' | 'dark';
  readonly offsetISO?: string;
  readonly forms?: Record<string, string>;
  readonly dashboard?: string;
  readonly params?: Record<string, unknown>;
  readonly describe?: boolean;
}

/**
 * A custom widget event as the console sends it: `widgetContext` as the
 * CloudWatch user guide documents it, and a call's JSON as top-level fields.
 */
export function widgetEvent(o: EventOptions = {}): Record<string, unknown> {
  const offsetISO = o.offsetISO ?? '+00:00';
  return {
    ...(o.describe === undefined ? {} : { describe: o.describe }),
    ...o.params,
    widgetContext: {
      dashboardName: o.dashboard ?? DASHBOARD,
      widgetId: WIDGET,
      accountId: '123456789012',
      locale: 'en',
      timezone: {
        label: offsetISO === '+00:00' ? 'UTC' : 'Local',
        offsetISO,
        offsetInMinutes: 0,
      },
      period: 300,
      isAutoPeriod: true,
      timeRange: {
        mode: 'relative',
        start: 1714550400000,
        end: 1714557600000,
        relativeStart: 7200000,
      },
      theme: o.theme ?? 'light',
      linkCharts: true,
      title: 'edgeban: blocks',
      forms: { all: o.forms ?? {} },
      params: {},
      width: 1600,
      height: 900,
    },
  };
}

/** The read-only function's dependencies over a world. */
export function viewDeps(world: World): ViewDeps {
  return {
    operator: world.operatorDeps(),
    tokenKey: KEY,
    viewEndpoint: VIEW_ARN,
    actEndpoint: ACT_ARN,
  };
}

/** The acting function's dependencies over a world: the change is reconciled at once, as locally. */
export function actDeps(world: World): ActDeps {
  return {
    operator: world.operatorDeps(),
    tokenKey: KEY,
    apply: async () => appliedSentence(await reconcile(world.reconcileDeps())),
  };
}

/**
 * Rule blocks (192.0.2.7 by flood and login, the /24 203.0.113.0/24 by
 * flood, an IPv6 /64), manual blocks (198.51.100.23 by alice,
 * 198.51.100.0/28 by bob), an unblock and a reset in the event log;
 * then a reconcile, so WAF holds them and the status is written.
 */
export async function seedState(world: World): Promise<void> {
  const t = Math.floor(world.clock / 1000);
  const blocks = [
    ruleBlock(world, '192.0.2.7', { peak: 2301, offences: 2, until: t + 8 * HOUR }),
    ruleBlock(world, '192.0.2.7', {
      rule: 'login',
      peak: 37,
      window: 1,
      offences: 1,
      reason: '37 requests in 1m over threshold 10',
    }),
    ruleBlock(world, '203.0.113.0/24', { peak: 412, firstExceeded: t - 600 }),
    ruleBlock(world, '2001:db8:bad:1::/64', { peak: 150, until: t + 2 * HOUR }),
  ];
  for (const b of blocks) {
    await putActiveBlock(world.ddb, world.tableName, b);
    await recordEvent(world.ddb, world.tableName, {
      at: b.start * 1000,
      kind: 'block',
      key: b.key,
      rule: b.rule,
      by: 'edgeban',
      reason: b.reason,
    });
  }
  const ops = world.operatorDeps();
  await manualBlock(ops, '198.51.100.23', { by: 'alice', reason: 'credential stuffing' });
  await manualBlock(ops, '198.51.100.0/28', { by: 'bob', reason: 'scanner', forSeconds: 3600 });
  // An unblock an hour ago, and a reset of 192.0.2.99 (written as the reconciler writes one).
  await recordEvent(world.ddb, world.tableName, {
    at: world.clock - 3_600_000,
    kind: 'unblock',
    key: '192.0.2.44',
    rule: 'flood',
    by: 'carol',
    reason: 'our monitoring',
  });
  const resetAt = world.clock - 1_800_000;
  await world.ddb.send(
    new PutCommand({
      TableName: world.tableName,
      Item: {
        ...eventLogKey(resetAt, '192.0.2.99', 'reset', null),
        at: Math.floor(resetAt / 1000),
        kind: 'reset',
        key: '192.0.2.99',
        rule: null,
        by: 'edgeban',
        reason: 'IP set rewritten by a deployment; re-added',
      },
    }),
  );
  const r = await reconcile(world.reconcileDeps());
  if (r.failedSets.length > 0) throw new Error(`seed reconcile failed: ${r.failedSets.join(', ')}`);
}
