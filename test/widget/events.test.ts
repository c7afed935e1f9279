import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventLogPk } from '../../lambda/shared/schema';
import { recordEvent } from '../../lambda/state/blocks';
import { readRecentEvents } from '../../lambda/widget/events';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { newWorld, T0 } from '../reconciler/env';

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

const DAY = 86_400_000;

describe('the event log', () => {
  it('holds each recorded event in the partition of its UTC day', async () => {
    const w = await newWorld(cloud);
    await recordEvent(w.ddb, w.tableName, {
      at: T0 + 5,
      kind: 'unblock',
      key: '192.0.2.7',
      rule: null,
      by: 'alice',
      reason: 'ok',
    });
    const out = await w.ddb.send(
      new QueryCommand({
        TableName: w.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': eventLogPk(T0) },
      }),
    );
    expect(eventLogPk(T0)).toBe('EVENTS#2024-05-01');
    expect(out.Items).toEqual([
      expect.objectContaining({
        sk: `${T0 + 5}#192.0.2.7#unblock#`,
        kind: 'unblock',
        by: 'alice',
        at: T0 / 1000,
      }),
    ]);
  });

  it('reads the newest events first across days, up to the limit and the clock', async () => {
    const w = await newWorld(cloud);
    const at = [T0 - 3 * DAY, T0 - DAY - 1, T0 - DAY + 1, T0 - 60_000, T0, T0 + 60_000];
    for (const [i, t] of at.entries()) {
      await recordEvent(w.ddb, w.tableName, {
        at: t,
        kind: 'block',
        key: `192.0.2.${i}`,
        rule: 'flood',
        by: 'edgeban',
        reason: null,
      });
    }
    const all = await readRecentEvents(w.ddb, w.tableName, T0, { limit: 10 });
    expect(all.map((e) => e.key)).toEqual([
      '192.0.2.4',
      '192.0.2.3',
      '192.0.2.2',
      '192.0.2.1',
      '192.0.2.0',
    ]);
    expect(all[0]).toEqual({
      at: T0,
      kind: 'block',
      key: '192.0.2.4',
      rule: 'flood',
      by: 'edgeban',
      reason: null,
    });
    const three = await readRecentEvents(w.ddb, w.tableName, T0, { limit: 3 });
    expect(three.map((e) => e.key)).toEqual(['192.0.2.4', '192.0.2.3', '192.0.2.2']);
    const twoDays = await readRecentEvents(w.ddb, w.tableName, T0, { limit: 10, days: 2 });
    expect(twoDays.map((e) => e.key)).toEqual(['192.0.2.4', '192.0.2.3', '192.0.2.2', '192.0.2.1']);
  });
});
