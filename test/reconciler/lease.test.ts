import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLease, LEASE_MS, releaseLease } from '../../lambda/reconciler/lease';
import { reconcile } from '../../lambda/reconciler/reconcile';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { addressesOf, newWorld, putBlocks, ruleBlock } from './env';

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud();
});

afterAll(async () => {
  await cloud?.stop();
});

describe('reconciler lease', () => {
  it('lets one holder in at a time until it releases or its lease expires', async () => {
    const w = await newWorld(cloud);
    const t = 1_000_000;
    expect(await acquireLease(w.ddb, w.tableName, 'a', t)).toMatchObject({ fence: 1 });
    expect(await acquireLease(w.ddb, w.tableName, 'b', t + 1)).toBeNull();
    await releaseLease(w.ddb, w.tableName, 'b');
    expect(await acquireLease(w.ddb, w.tableName, 'b', t + 2)).toBeNull();
    expect(await acquireLease(w.ddb, w.tableName, 'b', t + LEASE_MS + 1)).toMatchObject({
      fence: 2,
    });
    await releaseLease(w.ddb, w.tableName, 'b');
    expect(await acquireLease(w.ddb, w.tableName, 'c', t + LEASE_MS + 2)).toMatchObject({
      fence: 3,
    });
  });

  it('makes a reconcile that finds the lease taken do nothing', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [ruleBlock(w, '192.0.2.7')]);
    expect(await acquireLease(w.ddb, w.tableName, 'someone-else')).not.toBeNull();
    const before = cloud.waf.calls().length;
    const busy = await reconcile(w.reconcileDeps());
    expect(busy).toMatchObject({ busy: true, updates: 0 });
    expect(cloud.waf.calls().length).toBe(before);
    await releaseLease(w.ddb, w.tableName, 'someone-else');
    const done = await reconcile(w.reconcileDeps());
    expect(done.busy).toBeUndefined();
    expect(addressesOf(w, 0)).toEqual(['192.0.2.7/32']);
  });

  it('lets only one of two concurrent reconciles write WAF', async () => {
    const w = await newWorld(cloud);
    await putBlocks(w, [ruleBlock(w, '192.0.2.7'), ruleBlock(w, '2001:db8::/64')]);
    const results = await Promise.all([reconcile(w.reconcileDeps()), reconcile(w.reconcileDeps())]);
    expect(results.filter((r) => r.busy === true)).toHaveLength(1);
    expect(results.reduce((n, r) => n + r.updates, 0)).toBe(2);
    // The lease is free again once the writer is done.
    expect((await reconcile(w.reconcileDeps())).busy).toBeUndefined();
  });
});

describe('reconciler lease under retries', () => {
  it('lets its holder take it again, as an SDK retry after a lost reply does', async () => {
    const w = await newWorld(cloud);
    expect(await acquireLease(w.ddb, w.tableName, 'a', 5)).not.toBeNull();
    expect(await acquireLease(w.ddb, w.tableName, 'a', 6)).not.toBeNull();
    expect(await acquireLease(w.ddb, w.tableName, 'b', 7)).toBeNull();
  });
});
